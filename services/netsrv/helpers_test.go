package netsrv_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/services/netsrv"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
)

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() && os.Getenv("NETSRV_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// site is a test's site folder and its Redis.
type site struct {
	t     testing.TB
	dir   string
	redis *testharness.Redis
	rdb   *redis.Client
	store *statestore.Writer
	spool string
}

func newSite(t testing.TB) *site {
	t.Helper()
	s := &site{t: t, dir: t.TempDir(), spool: t.TempDir()}
	s.redis = testharness.StartRedis(t)
	s.rdb = s.redis.Client(t)
	s.store = statestore.NewWriter(s.rdb, 0)
	s.write("site.yaml", "site: {id: test-site, name: Test}\nredis: {url: "+s.redis.URL()+"}\n")
	return s
}

func (s *site) write(name, content string) {
	s.t.Helper()
	p := filepath.Join(s.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// links writes netsrv.yaml with the test's spool folder.
func (s *site) links(yaml string) {
	s.t.Helper()
	s.write("netsrv/netsrv.yaml", "spool_dir: "+s.spool+"\n"+yaml)
}

// netsrv is a running in-process netsrv.
type running struct {
	url  string
	stop func()
}

func (s *site) start() *running {
	s.t.Helper()
	return s.startWith(nil)
}

// startWith runs netsrv in this process after edit changed its Config.
func (s *site) startWith(edit func(*netsrv.Config)) *running {
	s.t.Helper()
	cfg, err := config.Load(s.dir)
	if err != nil {
		s.t.Fatalf("load site: %v", err)
	}
	bound := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	nc := netsrv.Config{Site: cfg, ConfigDir: s.dir, HTTPAddr: "127.0.0.1:0", Log: testLogger(s.t), Bound: func(a net.Addr) { bound <- a }}
	if edit != nil {
		edit(&nc)
	}
	go func() { done <- netsrv.Run(ctx, nc) }()
	r := &running{}
	select {
	case a := <-bound:
		r.url = "http://" + a.String()
	case err := <-done:
		cancel()
		s.t.Fatalf("netsrv stopped at start: %v", err)
	case <-time.After(15 * time.Second):
		cancel()
		s.t.Fatal("netsrv did not open its HTTP port within 15 s")
	}
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					s.t.Errorf("netsrv stopped with error: %v", err)
				}
			case <-time.After(15 * time.Second):
				s.t.Error("netsrv did not stop within 15 s")
			}
		})
	}
	s.t.Cleanup(r.stop)
	return r
}

// change writes one telemetry change of one point, as comsrv would.
func (s *site) change(ch uint32, t point.Type, id point.ID, v float64) {
	s.t.Helper()
	ts := time.Now().UnixMilli()
	b := statestore.ChannelBatch(ch, t, ts, []point.Sample{{ID: id, Value: v, Raw: v, TS: ts}})
	if err := s.store.Write(context.Background(), b); err != nil {
		s.t.Fatalf("write change: %v", err)
	}
}

// changes writes n changes of point 1 of channel ch's telemetry with the values
// from, from+1, ... — every value is unique, so a subscriber can count each.
func (s *site) changes(ch uint32, from, n int) {
	s.t.Helper()
	for i := range n {
		s.change(ch, point.Telemetry, 1, float64(from+i))
	}
}

func (r *running) linkStatus(t testing.TB, name string) netsrv.LinkStatus {
	t.Helper()
	resp, err := http.Get(r.url + "/links/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ls netsrv.LinkStatus
	if err := json.NewDecoder(resp.Body).Decode(&ls); err != nil {
		t.Fatalf("decode /links/%s: %v", name, err)
	}
	return ls
}

// sub is a mosquitto_sub process: an MQTT client we did not write.
type sub struct {
	t    testing.TB
	mu   sync.Mutex
	msgs []subMsg
	cmd  *exec.Cmd
}

type subMsg struct {
	Topic   string
	Payload string
}

// subscribe starts mosquitto_sub on topic with a persistent QoS 1 session (so a
// broker restart with persistence loses nothing for it). args are extra flags
// (TLS, credentials).
func subscribe(t testing.TB, addr, topic string, args ...string) *sub {
	t.Helper()
	bin := testharness.Binary(t, "mosquitto_sub", "mosquitto-clients")
	host, port, _ := net.SplitHostPort(addr)
	id := fmt.Sprintf("sub-%d", time.Now().UnixNano())
	a := append([]string{"-h", host, "-p", port, "-t", topic, "-q", "1", "-c", "-i", id, "-F", "%t\t%p"}, args...)
	cmd := exec.Command(bin, a...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto_sub: %v", err)
	}
	s := &sub{t: t, cmd: cmd}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<22)
		for sc.Scan() {
			topic, payload, _ := strings.Cut(sc.Text(), "\t")
			s.mu.Lock()
			s.msgs = append(s.msgs, subMsg{topic, payload})
			s.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("mosquitto_sub stderr: %s", stderr.String())
		}
	})
	return s
}

// ready waits until the subscription is in place: a probe published on probeTopic
// arrives. Called again later, it also settles the subscriber: everything the
// broker sent it before the probe has been acknowledged by then, so a broker
// stopped afterwards does not deliver those messages again from its session.
func (s *sub) ready(addr, probeTopic string, args ...string) {
	s.t.Helper()
	bin := testharness.Binary(s.t, "mosquitto_pub", "mosquitto-clients")
	host, port, _ := net.SplitHostPort(addr)
	probe := fmt.Sprintf("probe-%d", time.Now().UnixNano())
	testharness.Eventually(s.t, 15*time.Second, func() error {
		a := append([]string{"-h", host, "-p", port, "-t", probeTopic, "-m", probe, "-q", "1"}, args...)
		if out, err := exec.Command(bin, a...).CombinedOutput(); err != nil {
			return fmt.Errorf("mosquitto_pub: %v: %s", err, out)
		}
		for _, m := range s.all() {
			if m.Topic == probeTopic && m.Payload == probe {
				return nil
			}
		}
		return fmt.Errorf("probe on %s not received yet", probeTopic)
	})
}

func (s *sub) all() []subMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]subMsg(nil), s.msgs...)
}

// on returns the messages received on topics with the given prefix.
func (s *sub) on(prefix string) []subMsg {
	var out []subMsg
	for _, m := range s.all() {
		if strings.HasPrefix(m.Topic, prefix) && !strings.HasSuffix(m.Topic, "/probe") {
			out = append(out, m)
		}
	}
	return out
}

// jsonPayload is netsrv's json format as a receiver decodes it.
type jsonPayload struct {
	Site   string `json:"site"`
	Link   string `json:"link"`
	ID     string `json:"id"`
	TS     int64  `json:"ts"`
	Points []struct {
		Name    string  `json:"name"`
		Kind    string  `json:"kind"`
		Source  uint32  `json:"source"`
		Type    string  `json:"type"`
		Point   uint32  `json:"point"`
		V       float64 `json:"v"`
		TS      int64   `json:"ts"`
		Quality string  `json:"q"`
	} `json:"points"`
}

// valueCounts decodes json-format messages and counts how often each value of
// the named point arrived.
func valueCounts(t testing.TB, msgs []subMsg, name string) map[float64]int {
	t.Helper()
	counts := map[float64]int{}
	for _, m := range msgs {
		var p jsonPayload
		if err := json.Unmarshal([]byte(m.Payload), &p); err != nil {
			t.Fatalf("payload on %s is not the json format: %v: %s", m.Topic, err, m.Payload)
		}
		for _, pt := range p.Points {
			if pt.Name == name {
				counts[pt.V]++
			}
		}
	}
	return counts
}

// checkExactlyOnce fails unless every value from..from+n-1 arrived exactly once.
func checkExactlyOnce(t testing.TB, counts map[float64]int, from, n int) {
	t.Helper()
	var missing, dup []int
	for i := from; i < from+n; i++ {
		switch c := counts[float64(i)]; {
		case c == 0:
			missing = append(missing, i)
		case c > 1:
			dup = append(dup, i)
		}
	}
	if len(missing) > 0 || len(dup) > 0 {
		t.Errorf("of %d values: %d missing %v, %d duplicated %v", n, len(missing), head(missing), len(dup), head(dup))
	}
}

func head(s []int) []int {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}

// waitValues waits until every value from..from+n-1 of name was received.
func waitValues(t testing.TB, s *sub, prefix, name string, from, n int, timeout time.Duration) {
	t.Helper()
	testharness.Eventually(t, timeout, func() error {
		counts := valueCounts(t, s.on(prefix), name)
		got := 0
		for i := from; i < from+n; i++ {
			if counts[float64(i)] > 0 {
				got++
			}
		}
		if got < n {
			return fmt.Errorf("%d of %d values received", got, n)
		}
		return nil
	})
}
