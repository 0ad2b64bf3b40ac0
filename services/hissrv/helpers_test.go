package hissrv_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/services/hissrv"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
)

// site is one test's Redis and site folder.
type site struct {
	t     *testing.T
	redis *testharness.Redis
	rdb   *redis.Client
	dir   string // the site folder (config)
	data  string // hissrv's data folder
	cfg   *config.Config
}

func newSite(t *testing.T, hissrvYAML string, changesMaxLen int64) *site {
	t.Helper()
	r := testharness.StartRedis(t)
	dir := t.TempDir()
	siteYAML := fmt.Sprintf("site: {id: test-site, name: Test}\nredis: {url: %s", r.URL())
	if changesMaxLen > 0 {
		siteYAML += fmt.Sprintf(", changes_maxlen: %d", changesMaxLen)
	}
	siteYAML += "}\n"
	writeFile(t, dir, "site.yaml", siteYAML)
	if hissrvYAML != "" {
		writeFile(t, dir, hissrv.ConfigFile, hissrvYAML)
	}
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &site{t: t, redis: r, rdb: r.Client(t), dir: dir, data: t.TempDir(), cfg: cfg}
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// running is hissrv run in-process by a test.
type running struct {
	url    string
	cancel context.CancelFunc
	done   chan error
}

// run starts hissrv.Run on the site and stops it when the test ends.
func (s *site) run() *running {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	r := &running{cancel: cancel, done: make(chan error, 1)}
	var logOut io.Writer = io.Discard
	if testing.Verbose() {
		logOut = os.Stderr
	}
	go func() {
		r.done <- hissrv.Run(ctx, hissrv.Config{
			Site: s.cfg, ConfigDir: s.dir, HTTPAddr: "127.0.0.1:0", DataDir: s.data,
			Log:   slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelInfo})),
			Bound: func(a net.Addr) { addr <- a },
		})
	}()
	select {
	case a := <-addr:
		r.url = "http://" + a.String()
	case err := <-r.done:
		cancel()
		s.t.Fatalf("hissrv ended at start: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		s.t.Fatal("hissrv did not start listening within 60 s")
	}
	s.t.Cleanup(func() { r.stop(s.t) })
	return r
}

func (r *running) stop(t *testing.T) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("hissrv.Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Error("hissrv did not stop within 20 s of its context ending")
	}
}

// written is what a test wrote: point name → time → value.
type written map[string]map[int64]float64

func (w written) add(name string, ts int64, v float64) {
	m := w[name]
	if m == nil {
		m = map[int64]float64{}
		w[name] = m
	}
	m[ts] = v
}

func (w written) total() int {
	n := 0
	for _, m := range w {
		n += len(m)
	}
	return n
}

// producer writes change batches with the statestore writer, as comsrv does.
type producer struct {
	w     *statestore.Writer
	start int64
	got   written
}

func newProducer(rdb redis.UniversalClient, maxLen int64, start int64) *producer {
	return &producer{w: statestore.NewWriter(rdb, maxLen), start: start, got: written{}}
}

// value is the deterministic value of point p at step i.
func value(p, i int) float64 { return float64(i%1000)*0.1 + float64(p) }

// writeStep writes step i: channel 1 telemetry points 1..nT (point 1's own time 7 ms
// before the batch's), channel 2 signals every 10th step, and instance 5's
// measurements. Every step is one transaction with up to three stream entries.
func (p *producer) writeStep(ctx context.Context, i, nT int) error {
	ts := p.start + int64(i)*1000
	var tSamples []point.Sample
	for id := 1; id <= nT; id++ {
		s := point.Sample{ID: point.ID(id), Value: value(id, i), Raw: value(id, i), TS: ts}
		if id == 1 {
			s.TS = ts - 7
		}
		if id == 2 && i%50 == 49 {
			s.Quality = point.Stale
		}
		tSamples = append(tSamples, s)
	}
	batches := []statestore.Batch{statestore.ChannelBatch(1, point.Telemetry, ts, tSamples)}
	if i%10 == 0 {
		batches = append(batches, statestore.ChannelBatch(2, point.Signal, ts, []point.Sample{{ID: 1, Value: float64(i / 10 % 2), TS: ts}}))
	}
	batches = append(batches, statestore.Batch{
		Key: keyspace.InstanceMeasurements(5), TSKey: keyspace.InstanceMeasurementTimestamps(5), TS: ts,
		Samples: []point.Sample{{ID: 12, Value: value(12, i), TS: ts}},
	})
	if err := p.w.Write(ctx, batches...); err != nil {
		return err
	}
	for _, b := range batches {
		for _, s := range b.Samples {
			p.got.add(b.Key+":"+strconv.Itoa(int(s.ID)), s.TS, s.Value)
		}
	}
	return nil
}

// caughtUp waits until hissrv's group for backend has read and acknowledged everything.
func (s *site) caughtUp(backend string, timeout time.Duration) {
	s.t.Helper()
	testharness.Eventually(s.t, timeout, func() error {
		groups, err := s.rdb.XInfoGroups(context.Background(), keyspace.Changes).Result()
		if err != nil {
			return err
		}
		for _, g := range groups {
			if g.Name == hissrv.GroupPrefix+backend {
				if g.Lag != 0 || g.Pending != 0 {
					return fmt.Errorf("group %s: lag %d, pending %d", g.Name, g.Lag, g.Pending)
				}
				return nil
			}
		}
		return fmt.Errorf("no group %s%s yet", hissrv.GroupPrefix, backend)
	})
}

func getJSON(t *testing.T, u string, dst any) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if dst != nil {
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatalf("GET %s: %d %s: %v", u, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

func query(base, path string, kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return base + path + "?" + v.Encode()
}
