package modsrv_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/services/comsrv"
	"github.com/voltageems/voltage/services/modsrv"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/tools/voltsim"
)

// files is a site folder as relative path → content. "{{PORT}}" is replaced by a
// free loopback port, "{{REDIS}}" by the test's Redis URL.
type files map[string]string

func merge(base files, changes files) files {
	out := files{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range changes {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func writeSite(t testing.TB, fs files, redisURL string) string {
	t.Helper()
	dir := t.TempDir()
	port := 0
	for name, content := range fs {
		if strings.Contains(content, "{{PORT}}") {
			if port == 0 {
				port = testharness.FreePort(t)
			}
			content = strings.ReplaceAll(content, "{{PORT}}", strconv.Itoa(port))
		}
		content = strings.ReplaceAll(content, "{{REDIS}}", redisURL)
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// stack is a test's running system: redis-server, optionally voltsim and comsrv,
// and modsrv, all on real sockets.
type stack struct {
	t     *testing.T
	dir   string
	redis *testharness.Redis
	rdb   *redis.Client
	cfg   *config.Config
	sim   *voltsim.Sim
	store *statestore.Writer

	claimAge   time.Duration // modsrv.Config.ActionClaimAge (0: the default)
	modsrvURL  string
	stopModsrv context.CancelFunc
	modsrvDone chan error
}

func newStack(t *testing.T, fs files) *stack {
	t.Helper()
	s := &stack{t: t}
	s.redis = testharness.StartRedis(t)
	s.rdb = s.redis.Client(t)
	s.store = statestore.NewWriter(s.rdb, 0)
	s.dir = writeSite(t, fs, s.redis.URL())
	cfg, err := config.Load(s.dir)
	if err != nil {
		t.Fatalf("test site: %v", err)
	}
	s.cfg = cfg
	return s
}

// startDevices runs voltsim (manual clock: values change only when the test sets
// them) and comsrv in this process.
func (s *stack) startDevices() {
	s.t.Helper()
	sim, err := voltsim.New(s.cfg, voltsim.Options{Logger: testLogger(s.t), Seed: 1, ManualClock: true})
	if err != nil {
		s.t.Fatalf("voltsim: %v", err)
	}
	s.sim = sim
	runService(s.t, "voltsim", func(ctx context.Context) error { return sim.Run(ctx) })
	bound := make(chan net.Addr, 1)
	runService(s.t, "comsrv", func(ctx context.Context) error {
		return comsrv.Run(ctx, comsrv.Config{Site: s.cfg, ConfigDir: s.dir, HTTPAddr: "127.0.0.1:0", Log: testLogger(s.t),
			ConsumerName: "comsrv-test", Bound: func(a net.Addr) { bound <- a }})
	})
	select {
	case <-bound:
	case <-time.After(15 * time.Second):
		s.t.Fatal("comsrv did not start within 15 s")
	}
}

// runService runs f until the test ends, then stops it and checks it returned nil.
func runService(t *testing.T, name string, f func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s stopped with: %v", name, err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("%s did not stop within 15 s", name)
		}
	})
}

// startModsrv runs modsrv in this process and waits until it is ready.
func (s *stack) startModsrv() {
	s.t.Helper()
	bound := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	s.stopModsrv, s.modsrvDone = cancel, make(chan error, 1)
	go func() {
		s.modsrvDone <- modsrv.Run(ctx, modsrv.Config{Site: s.cfg, ConfigDir: s.dir, HTTPAddr: "127.0.0.1:0",
			Log: testLogger(s.t), ConsumerName: "modsrv-test", ActionTimeout: 20 * time.Second, ActionClaimAge: s.claimAge,
			Bound: func(a net.Addr) { bound <- a }})
	}()
	select {
	case a := <-bound:
		s.modsrvURL = "http://" + a.String()
	case err := <-s.modsrvDone:
		s.t.Fatalf("modsrv stopped at start: %v", err)
	case <-time.After(15 * time.Second):
		s.t.Fatal("modsrv did not open its HTTP port within 15 s")
	}
	s.t.Cleanup(s.stop)
	testharness.Eventually(s.t, 20*time.Second, func() error {
		code, body := s.get("/readyz", nil)
		if code != http.StatusOK {
			return fmt.Errorf("readyz %d: %s", code, body)
		}
		return nil
	})
}

// stop stops modsrv as SIGTERM would.
func (s *stack) stop() {
	if s.stopModsrv == nil {
		return
	}
	s.stopModsrv()
	select {
	case err := <-s.modsrvDone:
		if err != nil {
			s.t.Errorf("modsrv stopped with: %v", err)
		}
	case <-time.After(15 * time.Second):
		s.t.Error("modsrv did not stop within 15 s")
	}
	s.stopModsrv = nil
}

// writeChannel writes channel samples as comsrv would (hashes, pub/sub, stream).
func (s *stack) writeChannel(ch uint32, t point.Type, ts int64, samples ...point.Sample) {
	s.t.Helper()
	if err := s.store.Write(context.Background(), statestore.ChannelBatch(ch, t, ts, samples)); err != nil {
		s.t.Fatal(err)
	}
}

func (s *stack) hget(key, field string) string {
	v, _ := s.rdb.HGet(context.Background(), key, field).Result()
	return v
}

// waitField waits until hash key's field satisfies ok.
func (s *stack) waitField(key, field string, ok func(string) bool, what string) string {
	s.t.Helper()
	var got string
	testharness.Eventually(s.t, 20*time.Second, func() error {
		got = s.hget(key, field)
		if !ok(got) {
			return fmt.Errorf("%s %s = %q, want %s", key, field, got, what)
		}
		return nil
	})
	return got
}

func (s *stack) waitValue(key, field, want string) {
	s.t.Helper()
	s.waitField(key, field, func(v string) bool { return v == want }, strconv.Quote(want))
}

func (s *stack) get(path string, out any) (int, string) {
	return s.call("GET", path, "", out)
}

func (s *stack) call(method, path, body string, out any) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.modsrvURL+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	if resp.StatusCode >= 400 && resp.StatusCode != http.StatusServiceUnavailable {
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			s.t.Errorf("%s %s: error %d with Content-Type %q, want application/problem+json", method, path, resp.StatusCode, ct)
		}
	}
	return resp.StatusCode, string(b)
}

func errorf(format string, a ...any) error { return fmt.Errorf(format, a...) }
