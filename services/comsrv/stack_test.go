package comsrv_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/services/comsrv"
	"github.com/voltageems/voltage/services/comsrv/commands"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/tools/voltsim"
)

// files is a site folder as relative path → content. "{{PORT1}}".."{{PORT9}}" in
// any file are replaced by free loopback ports, "{{REDIS}}" by the test's Redis URL.
type files map[string]string

// stack is a test's running system: a real redis-server, voltsim serving the site's
// devices over TCP, and comsrv.
type stack struct {
	t       *testing.T
	dir     string
	redis   *testharness.Redis
	rdb     *redis.Client
	cfg     *config.Config
	sim     *voltsim.Sim
	ports   map[string]int
	httpURL string

	stopSim    context.CancelFunc
	simDone    chan error
	stopComsrv context.CancelFunc
	comsrvDone chan error
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(nilWriter{}, nil))
}

type nilWriter struct{}

func (nilWriter) Write(p []byte) (int, error) { return len(p), nil }

// writeSite writes fs into a new folder, filling in ports and the Redis URL.
func writeSite(t *testing.T, fs files, redisURL string, ports map[string]int) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range fs {
		for i := 1; i <= 9; i++ {
			ph := fmt.Sprintf("{{PORT%d}}", i)
			if strings.Contains(content, ph) {
				if _, ok := ports[ph]; !ok {
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
	if _, ok := fs["site.yaml"]; !ok {
		site := "site: {id: test-site, name: Test}\nredis: {url: " + redisURL + "}\n"
		if err := os.WriteFile(filepath.Join(dir, "site.yaml"), []byte(site), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// startStack starts Redis, voltsim and comsrv for the site fs.
func startStack(t *testing.T, fs files) *stack {
	return startStackWith(t, fs, commands.Hooks{})
}

func startStackWith(t *testing.T, fs files, hooks commands.Hooks) *stack {
	t.Helper()
	s := startSite(t, fs)
	s.startComsrv(hooks)
	return s
}

// startSite starts Redis and, when the site has devices, voltsim — everything but
// comsrv, for tests that run comsrv themselves (in-process or as the binary).
func startSite(t *testing.T, fs files) *stack {
	t.Helper()
	s := &stack{t: t, ports: map[string]int{}}
	s.redis = testharness.StartRedis(t)
	s.rdb = s.redis.Client(t)
	s.dir = writeSite(t, fs, s.redis.URL(), s.ports)
	cfg, err := config.Load(s.dir)
	if err != nil {
		t.Fatalf("load test site: %v", err)
	}
	s.cfg = cfg
	for _, ch := range cfg.Channels {
		if ch.Enabled && ch.Protocol != config.ProtocolVirtual { // a device to simulate
			s.startSim()
			break
		}
	}
	return s
}

// comsrvProcess starts the comsrv binary on the stack's site, its stderr to w
// (nil: discarded), and kills it at the end of the test if it is still running.
func (s *stack) comsrvProcess(bin string, w io.Writer) *exec.Cmd {
	s.t.Helper()
	cmd := exec.Command(bin, "--config", s.dir, "--log-level", "warn")
	cmd.Env = append(os.Environ(), "VOLTAGE_HTTP_ADDR=127.0.0.1:0")
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd
}

func (s *stack) startSim() {
	s.t.Helper()
	sim, err := voltsim.New(s.cfg, voltsim.Options{Logger: testLogger(s.t), Seed: 1})
	if err != nil {
		s.t.Fatalf("voltsim: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.sim, s.stopSim, s.simDone = sim, cancel, make(chan error, 1)
	go func() { s.simDone <- sim.Run(ctx) }()
	s.t.Cleanup(s.stopSimulator)
}

func (s *stack) stopSimulator() {
	if s.stopSim == nil {
		return
	}
	s.stopSim()
	select {
	case <-s.simDone:
	case <-time.After(5 * time.Second):
		s.t.Error("voltsim did not stop within 5 s")
	}
	s.stopSim = nil
}

// startComsrv runs comsrv in this process, as the edge appliance does.
func (s *stack) startComsrv(hooks commands.Hooks) {
	s.t.Helper()
	bound := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	s.stopComsrv, s.comsrvDone = cancel, make(chan error, 1)
	go func() {
		s.comsrvDone <- comsrv.Run(ctx, comsrv.Config{
			Site: s.cfg, ConfigDir: s.dir, HTTPAddr: "127.0.0.1:0", Log: testLogger(s.t),
			ConsumerName: "comsrv-test", Hooks: hooks,
			Bound: func(a net.Addr) { bound <- a },
		})
	}()
	select {
	case a := <-bound:
		s.httpURL = "http://" + a.String()
	case err := <-s.comsrvDone:
		s.t.Fatalf("comsrv stopped at start: %v", err)
	case <-time.After(10 * time.Second):
		s.t.Fatal("comsrv did not open its HTTP port within 10 s")
	}
	s.t.Cleanup(func() { s.stopComsrvNow() })
}

// stopComsrvNow stops comsrv and waits for it, as SIGTERM would.
func (s *stack) stopComsrvNow() {
	if s.stopComsrv == nil {
		return
	}
	s.stopComsrv()
	select {
	case err := <-s.comsrvDone:
		if err != nil {
			s.t.Errorf("comsrv stopped with error: %v", err)
		}
	case <-time.After(10 * time.Second):
		s.t.Error("comsrv did not stop within 10 s")
	}
	s.stopComsrv = nil
}

func (s *stack) hget(key, field string) string {
	v, err := s.rdb.HGet(context.Background(), key, field).Result()
	if err != nil {
		return ""
	}
	return v
}

// waitField waits until hash key's field equals want.
func (s *stack) waitField(key, field, want string) {
	s.t.Helper()
	testharness.Eventually(s.t, 10*time.Second, func() error {
		if got := s.hget(key, field); got != want {
			return fmt.Errorf("%s %s = %q, want %q", key, field, got, want)
		}
		return nil
	})
}
