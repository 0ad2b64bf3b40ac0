// Package sitetest runs a whole edge site for the tests of the services: a real
// redis-server on a random port, a site folder written from a map of files,
// voltsim serving the site's devices over their real protocols, and comsrv in
// process — the same pieces DESIGN §8 describes, in the arrangement every
// service's integration tests need. Each service adds itself on top with Run.
//
// It is a normal package (not a _test file) so the tests of modsrv, rulesrv,
// alarmsrv, hissrv and netsrv share one copy; nothing outside tests imports it.
package sitetest

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
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/services/comsrv"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/tools/voltsim"
)

// StartTimeout bounds how long a service may take to bind its port, and
// StopTimeout how long it may take to return after its context is cancelled.
const (
	StartTimeout = 20 * time.Second
	StopTimeout  = 15 * time.Second
)

// Files is a site folder as relative path → content. In any file, "{{PORT}}" and
// "{{PORT1}}".."{{PORT9}}" become free loopback ports (the same number wherever
// the same placeholder appears) and "{{REDIS}}" the test's Redis URL.
type Files map[string]string

// Merge returns base with changes applied; an empty content deletes the file.
func Merge(base, changes Files) Files {
	out := Files{}
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

// Logger is the services' logger in tests: debug output with -v, silence otherwise.
func Logger(testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

var portPlaceholder = regexp.MustCompile(`\{\{PORT[1-9]?\}\}`)

// Write writes fs into a new temporary folder, filling in the placeholders, and
// returns the folder and the ports it chose, by placeholder.
func Write(t testing.TB, fs Files, redisURL string) (dir string, ports map[string]int) {
	t.Helper()
	dir = t.TempDir()
	ports = map[string]int{}
	for name, content := range fs {
		content = portPlaceholder.ReplaceAllStringFunc(content, func(ph string) string {
			if _, ok := ports[ph]; !ok {
				ports[ph] = testharness.FreePort(t)
			}
			return strconv.Itoa(ports[ph])
		})
		content = strings.ReplaceAll(content, "{{REDIS}}", redisURL)
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, ports
}

// Site is one test's site: its folder, its Redis and, once started, its devices.
type Site struct {
	T      *testing.T
	Dir    string
	Ports  map[string]int // placeholder → port
	Redis  *testharness.Redis
	RDB    *redis.Client // for the test's own reads and writes
	Config *config.Config
	Store  *statestore.Writer // writes channel samples as comsrv does
	Sim    *voltsim.Sim       // set by StartDevices
}

// New starts a redis-server, writes the site folder and loads it.
func New(t *testing.T, fs Files) *Site {
	t.Helper()
	s := &Site{T: t, Redis: testharness.StartRedis(t)}
	s.RDB = s.Redis.Client(t)
	s.Store = statestore.NewWriter(s.RDB, 0)
	s.Dir, s.Ports = Write(t, fs, s.Redis.URL())
	cfg, err := config.Load(s.Dir)
	if err != nil {
		t.Fatalf("test site: %v", err)
	}
	s.Config = cfg
	return s
}

// StartDevices runs voltsim — with a manual clock, so values change only when the
// test sets them — and comsrv in this process until the test ends.
func (s *Site) StartDevices() {
	s.T.Helper()
	s.StartDevicesWith(voltsim.Options{Seed: 1, ManualClock: true})
}

// StartDevicesWith is StartDevices with the simulator's options (its clock,
// profiles, seed); the logger is the test's.
func (s *Site) StartDevicesWith(opts voltsim.Options) {
	s.T.Helper()
	opts.Logger = Logger(s.T)
	sim, err := voltsim.New(s.Config, opts)
	if err != nil {
		s.T.Fatalf("voltsim: %v", err)
	}
	s.Sim = sim
	Go(s.T, "voltsim", sim.Run)
	Run(s.T, "comsrv", "", func(ctx context.Context, bound func(net.Addr)) error {
		return comsrv.Run(ctx, comsrv.Config{Site: s.Config, ConfigDir: s.Dir, HTTPAddr: "127.0.0.1:0",
			Log: Logger(s.T), ConsumerName: "comsrv-test", Bound: bound})
	})
}

// WriteChannel writes channel samples as comsrv would (hashes, pub/sub, stream).
func (s *Site) WriteChannel(ch uint32, t point.Type, ts int64, samples ...point.Sample) {
	s.T.Helper()
	if err := s.Store.Write(context.Background(), statestore.ChannelBatch(ch, t, ts, samples)); err != nil {
		s.T.Fatal(err)
	}
}

// HGet reads one field, "" when it is missing.
func (s *Site) HGet(key, field string) string {
	v, _ := s.RDB.HGet(context.Background(), key, field).Result()
	return v
}

// WaitField waits until field of hash key satisfies ok and returns its value;
// what describes the expectation for the failure message.
func (s *Site) WaitField(key, field string, ok func(string) bool, what string) string {
	s.T.Helper()
	var got string
	testharness.Eventually(s.T, StartTimeout, func() error {
		got = s.HGet(key, field)
		if !ok(got) {
			return fmt.Errorf("%s %s = %q, want %s", key, field, got, what)
		}
		return nil
	})
	return got
}

// WaitValue waits until field of hash key is want.
func (s *Site) WaitValue(key, field, want string) {
	s.T.Helper()
	s.WaitField(key, field, func(v string) bool { return v == want }, strconv.Quote(want))
}

// Service is a service started by Run.
type Service struct {
	Name string
	URL  string // http://host:port of its HTTP listener; "" for one without
	t    *testing.T
	stop context.CancelFunc
	done chan error
}

// Go runs a part without an HTTP listener (voltsim, a worker) until the test ends
// (or Stop), then cancels its context and fails the test if it does not return
// nil within StopTimeout.
func Go(t *testing.T, name string, run func(ctx context.Context) error) *Service {
	ctx, cancel := context.WithCancel(context.Background())
	svc := &Service{Name: name, t: t, stop: cancel, done: make(chan error, 1)}
	go func() { svc.done <- run(ctx) }()
	t.Cleanup(svc.Stop)
	return svc
}

// Run runs a service as Go does and waits until it reports its HTTP listener
// through bound (every service's Config.Bound). With ready set (e.g. "/readyz"),
// it also waits until GET ready answers 200.
func Run(t *testing.T, name string, ready string, run func(ctx context.Context, bound func(net.Addr)) error) *Service {
	t.Helper()
	boundc := make(chan net.Addr, 1)
	svc := Go(t, name, func(ctx context.Context) error {
		return run(ctx, func(a net.Addr) {
			select {
			case boundc <- a:
			default:
			}
		})
	})
	select {
	case a := <-boundc:
		svc.URL = "http://" + a.String()
	case err := <-svc.done:
		svc.stop = nil
		t.Fatalf("%s stopped at start: %v", name, err)
	case <-time.After(StartTimeout):
		t.Fatalf("%s did not open its HTTP port within %s", name, StartTimeout)
	}
	if ready != "" {
		testharness.Eventually(t, StartTimeout, func() error {
			code, body := svc.Call(http.MethodGet, ready, "", nil)
			if code != http.StatusOK {
				return fmt.Errorf("%s %s: %d %s", name, ready, code, body)
			}
			return nil
		})
	}
	return svc
}

// Stop cancels the service and waits for it, as SIGTERM would. It is idempotent.
func (s *Service) Stop() {
	if s.stop == nil {
		return
	}
	s.stop()
	s.stop = nil
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Errorf("%s stopped with: %v", s.Name, err)
		}
	case <-time.After(StopTimeout):
		s.t.Errorf("%s did not stop within %s", s.Name, StopTimeout)
	}
}

// Call sends a request with body (JSON text, "" for none) to the service and
// returns the status and body; a 2xx body is decoded into out when out is not
// nil. Every error answer (except 503 from /readyz) must be problem+json.
func (s *Service) Call(method, path, body string, out any) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
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
