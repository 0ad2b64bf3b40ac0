package comsrv_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
)

func itoa(id point.ID) string { return strconv.FormatUint(uint64(id), 10) }

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func xadd(stream string, fields map[string]any) *redis.XAddArgs {
	return &redis.XAddArgs{Stream: stream, Values: fields}
}

func xread(stream, consumer string) *redis.XReadGroupArgs {
	return &redis.XReadGroupArgs{Group: keyspace.CommandGroup, Consumer: consumer, Streams: []string{stream, ">"}, Count: 10, Block: -1}
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func postReload(t *testing.T, s *stack) (int, string) {
	t.Helper()
	resp, err := http.Post(s.httpURL+"/reload", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
