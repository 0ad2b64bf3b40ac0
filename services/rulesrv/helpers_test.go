package rulesrv_test

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
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/services/rulesrv"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
)

// files is a site folder as relative path → content. "{{REDIS}}" is replaced by
// the test's Redis URL, "{{PORTn}}" by a free port (the same for the same n).
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
	ports := map[string]int{}
	for name, content := range fs {
		for i := 1; i <= 9; i++ {
			ph := "{{PORT" + strconv.Itoa(i) + "}}"
			if strings.Contains(content, ph) {
				if ports[ph] == 0 {
					ports[ph] = testharness.FreePort(t)
				}
				content = strings.ReplaceAll(content, ph, strconv.Itoa(ports[ph]))
			}
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

// stack is a test's running system: redis-server and rulesrv, optionally more.
type stack struct {
	t     *testing.T
	dir   string
	redis *testharness.Redis
	rdb   *redis.Client
	cfg   *config.Config
	store *statestore.Writer

	now    func() time.Time
	url    string
	stopRS context.CancelFunc
	rsDone chan error
	probe  atomic.Int64
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
		case <-time.After(20 * time.Second):
			t.Errorf("%s did not stop within 20 s", name)
		}
	})
}

// startRulesrv runs rulesrv in this process and waits until it is ready.
func (s *stack) startRulesrv() {
	s.t.Helper()
	bound := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	s.stopRS, s.rsDone = cancel, make(chan error, 1)
	go func() {
		s.rsDone <- rulesrv.Run(ctx, rulesrv.Config{Site: s.cfg, ConfigDir: s.dir, HTTPAddr: "127.0.0.1:0",
			Log: testLogger(s.t), Now: s.now, Bound: func(a net.Addr) { bound <- a }})
	}()
	select {
	case a := <-bound:
		s.url = "http://" + a.String()
	case err := <-s.rsDone:
		s.t.Fatalf("rulesrv stopped at start: %v", err)
	case <-time.After(20 * time.Second):
		s.t.Fatal("rulesrv did not open its HTTP port within 20 s")
	}
	s.t.Cleanup(s.stop)
	testharness.Eventually(s.t, 30*time.Second, func() error {
		code, body := s.call("GET", "/readyz", "", nil)
		if code != http.StatusOK {
			return fmt.Errorf("readyz %d: %s", code, body)
		}
		return nil
	})
}

func (s *stack) stop() {
	if s.stopRS == nil {
		return
	}
	s.stopRS()
	select {
	case err := <-s.rsDone:
		if err != nil {
			s.t.Errorf("rulesrv stopped with: %v", err)
		}
	case <-time.After(20 * time.Second):
		s.t.Error("rulesrv did not stop within 20 s")
	}
	s.stopRS = nil
}

// setInst writes instance measurements as modsrv would (hashes, pub/sub, stream).
func (s *stack) setInst(inst uint32, q point.Quality, kv ...float64) {
	s.t.Helper()
	b := statestore.Batch{Key: keyspace.InstanceMeasurements(inst), TSKey: keyspace.InstanceMeasurementTimestamps(inst),
		QualityKey: keyspace.InstanceMeasurementQuality(inst), TS: time.Now().UnixMilli()}
	for i := 0; i+1 < len(kv); i += 2 {
		b.Samples = append(b.Samples, point.Sample{ID: point.ID(kv[i]), Value: kv[i+1], Quality: q})
	}
	if err := s.store.Write(context.Background(), b); err != nil {
		s.t.Fatal(err)
	}
}

// setChannel writes channel samples as comsrv would.
func (s *stack) setChannel(ch uint32, typ point.Type, id point.ID, v float64) {
	s.t.Helper()
	if err := s.store.Write(context.Background(), statestore.ChannelBatch(ch, typ, time.Now().UnixMilli(),
		[]point.Sample{{ID: id, Value: v}})); err != nil {
		s.t.Fatal(err)
	}
}

// sync waits until rulesrv has evaluated every change written before it: the
// probe rule (level, on ch9.T1) records each value it sees, and changes are
// evaluated in order.
func (s *stack) sync() {
	s.t.Helper()
	n := float64(s.probe.Add(1))
	s.setChannel(9, point.Telemetry, 1, n)
	want := strconv.FormatFloat(n, 'g', -1, 64)
	testharness.Eventually(s.t, 20*time.Second, func() error {
		vars := s.hget(keyspace.RuleExecution("probe"), "variables")
		if !strings.Contains(vars, `"value":`+want+`,`) {
			return fmt.Errorf("probe saw %s, want %s", vars, want)
		}
		return nil
	})
}

func (s *stack) hget(key, field string) string {
	v, _ := s.rdb.HGet(context.Background(), key, field).Result()
	return v
}

func (s *stack) exec(id string) map[string]string {
	h, _ := s.rdb.HGetAll(context.Background(), keyspace.RuleExecution(id)).Result()
	return h
}

// commands lists the values of the commands in a channel's stream, oldest first.
func (s *stack) commands(ch uint32) []string {
	msgs, err := s.rdb.XRange(context.Background(), keyspace.ChannelCommands(ch), "-", "+").Result()
	if err != nil && err != redis.Nil {
		s.t.Fatal(err)
	}
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, fmt.Sprint(m.Values["point"], "=", m.Values["value"]))
	}
	return out
}

func (s *stack) waitCommands(ch uint32, n int) []string {
	s.t.Helper()
	var got []string
	testharness.Eventually(s.t, 20*time.Second, func() error {
		got = s.commands(ch)
		if len(got) < n {
			return fmt.Errorf("channel %d has %d commands %v, want %d", ch, len(got), got, n)
		}
		return nil
	})
	return got
}

// events lists rule:events entries of one rule with the kind.
func (s *stack) events(rule, kind string) []map[string]any {
	msgs, _ := s.rdb.XRange(context.Background(), keyspace.RuleEvents, "-", "+").Result()
	var out []map[string]any
	for _, m := range msgs {
		if m.Values["rule"] == rule && (kind == "" || m.Values["kind"] == kind) {
			out = append(out, m.Values)
		}
	}
	return out
}

func (s *stack) call(method, path, body string, out any) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
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
