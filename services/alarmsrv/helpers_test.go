package alarmsrv_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/services/alarmsrv"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/shared/webhook"
)

// baseSite is a site with one virtual channel (telemetry 1-3, signal 1) and a
// PV inverter instance routed to it. "{{REDIS}}" is replaced by the Redis URL.
var baseSite = map[string]string{
	"site.yaml":                                "site: {id: test-site, name: Test}\nredis: {url: \"{{REDIS}}\"}\n",
	"comsrv/channels.yaml":                     "channels:\n  - {id: 1, name: dev, protocol: virtual}\n",
	"comsrv/1/telemetry.csv":                   "point_id,signal_name,scale,offset,unit,reverse,data_type\n1,temp,1,0,degC,0,float\n2,power,1,0,kW,0,float\n3,volt,1,0,V,0,float\n",
	"comsrv/1/signal.csv":                      "point_id,signal_name,scale,offset,unit,reverse,data_type\n1,fault,1,0,,0,bool\n",
	"modsrv/instances.yaml":                    "instances:\n  - {id: 1, name: pv1, product: pv_inverter, properties: {rated_power: 100}}\n",
	"modsrv/instances/pv1/channel_routing.csv": "channel_id,channel_type,channel_point_id,instance_type,instance_point_id\n1,T,2,M,active_power\n",
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func writeSite(t testing.TB, fs map[string]string, redisURL, rules string) string {
	t.Helper()
	dir := t.TempDir()
	all := map[string]string{"alarmsrv/alarms.yaml": rules}
	for k, v := range fs {
		all[k] = v
	}
	for name, content := range all {
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

// receiver is a webhook endpoint that can be down (503) and records what it got.
type receiver struct {
	srv *httptest.Server

	mu         sync.Mutex
	down       bool
	attempts   int
	deliveries []delivered
}

type delivered struct {
	id   string
	n    alarmsrv.Notification
	sigs error
}

const webhookSecret = "test-secret"

func newReceiver(t testing.TB) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.attempts++
		if r.down {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		var n alarmsrv.Notification
		_ = json.Unmarshal(body, &n)
		r.deliveries = append(r.deliveries, delivered{id: req.Header.Get(webhook.HeaderDelivery), n: n,
			sigs: webhook.Verify([]byte(webhookSecret), req.Header.Get(webhook.HeaderTimestamp), req.Header.Get(webhook.HeaderSignature), body, time.Now(), time.Minute)})
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setDown(d bool) {
	r.mu.Lock()
	r.down = d
	r.mu.Unlock()
}

func (r *receiver) got() ([]delivered, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivered(nil), r.deliveries...), r.attempts
}

// count is how many deliveries of the event type for key arrived.
func (r *receiver) count(event, key string) int {
	ds, _ := r.got()
	n := 0
	for _, d := range ds {
		if d.n.Event == event && (d.n.Alarm == nil && key == "" || d.n.Alarm != nil && d.n.Alarm.Key == key) {
			n++
		}
	}
	return n
}

// stack is redis-server plus alarmsrv in this process.
type stack struct {
	t     *testing.T
	redis *testharness.Redis
	rdb   *redis.Client
	store *statestore.Writer
	dir   string
	url   string

	cancel context.CancelFunc
	done   chan error
}

func newStack(t *testing.T, rules string) *stack {
	t.Helper()
	s := &stack{t: t}
	s.redis = testharness.StartRedis(t)
	s.rdb = s.redis.Client(t)
	s.store = statestore.NewWriter(s.rdb, 0)
	s.dir = writeSite(t, baseSite, s.redis.URL(), rules)
	return s
}

func (s *stack) start() {
	s.t.Helper()
	cfg, err := config.Load(s.dir)
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	bound := make(chan net.Addr, 1)
	s.cancel, s.done = cancel, make(chan error, 1)
	go func() {
		s.done <- alarmsrv.Run(ctx, alarmsrv.Config{Site: cfg, ConfigDir: s.dir, HTTPAddr: "127.0.0.1:0", Log: testLogger(s.t),
			Bound: func(a net.Addr) { bound <- a }})
	}()
	select {
	case a := <-bound:
		s.url = "http://" + a.String()
	case err := <-s.done:
		s.t.Fatalf("alarmsrv ended: %v", err)
	case <-time.After(20 * time.Second):
		s.t.Fatal("alarmsrv did not listen within 20 s")
	}
	s.t.Cleanup(s.stop)
	s.waitReady()
}

func (s *stack) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Errorf("alarmsrv: %v", err)
		}
	case <-time.After(10 * time.Second):
		s.t.Error("alarmsrv did not stop within 10 s")
	}
}

func (s *stack) waitReady() {
	s.t.Helper()
	testharness.Eventually(s.t, 30*time.Second, func() error {
		resp, err := http.Get(s.url + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz %d %s", resp.StatusCode, b)
		}
		return nil
	})
}

// write writes samples of channel 1 as comsrv does.
func (s *stack) write(t point.Type, samples ...point.Sample) {
	s.t.Helper()
	if err := s.store.Write(context.Background(), statestore.ChannelBatch(1, t, time.Now().UnixMilli(), samples)); err != nil {
		s.t.Fatal(err)
	}
}

func (s *stack) temp(v float64) { s.write(point.Telemetry, point.Sample{ID: 1, Value: v}) }

func (s *stack) events() []alarmsrv.Event {
	s.t.Helper()
	evs, err := alarmsrv.History(context.Background(), s.rdb, alarmsrv.HistoryQuery{})
	if err != nil {
		s.t.Fatal(err)
	}
	return evs
}

// waitEvents waits until alarm:events holds n events of the type for key.
func (s *stack) waitEvents(typ, key string, n int) alarmsrv.Event {
	s.t.Helper()
	var last alarmsrv.Event
	testharness.WaitFor(s.t, 20*time.Second, fmt.Sprintf("%d %s events of %s", n, typ, key), func() bool {
		c := 0
		for _, ev := range s.events() {
			if ev.Type == typ && ev.Key == key {
				c++
				last = ev
			}
		}
		return c >= n
	})
	return last
}

func (s *stack) countEvents(typ, key string) int {
	c := 0
	for _, ev := range s.events() {
		if ev.Type == typ && ev.Key == key {
			c++
		}
	}
	return c
}

// do sends a request as user and decodes a JSON answer into out (when not nil).
func (s *stack) do(method, path, user string, body any, out any) (int, http.Header, string) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.url+path, rd)
	if user != "" {
		req.Header.Set(alarmsrv.HeaderUser, user)
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
	return resp.StatusCode, resp.Header, string(b)
}

func (s *stack) active() map[string]alarmsrv.Alarm {
	s.t.Helper()
	m, err := s.rdb.HGetAll(context.Background(), keyspace.AlarmActive).Result()
	if err != nil {
		s.t.Fatal(err)
	}
	out := map[string]alarmsrv.Alarm{}
	for k, v := range m {
		var a alarmsrv.Alarm
		if err := json.Unmarshal([]byte(v), &a); err != nil {
			s.t.Fatal(err)
		}
		out[k] = a
	}
	return out
}

func webhookChannel(url string) string {
	return fmt.Sprintf("notifications:\n  - {name: hook, type: webhook, url: %q, secret: %s, events: [raised, cleared, escalated, flapping, request]}\n", url, webhookSecret)
}

const tempRule = `  - id: temp
    kind: limit
    channel: 1
    type: T
    point: 1
    limits: {h: {value: 90, severity: major}}
    deadband: 5
    message: "{source} at {value}{unit} over {limit}{unit}"
`

func pointSample(id uint32, v float64) point.Sample { return point.Sample{ID: id, Value: v} }
