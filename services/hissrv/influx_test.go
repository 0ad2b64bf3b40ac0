package hissrv_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/voltageems/voltage/services/hissrv/sample"
	"github.com/voltageems/voltage/shared/testharness"
)

func influxYAML(vmURL, extra string) string {
	return fmt.Sprintf(`embedded: {enabled: true}
influx:
  - name: main
    url: %s
    org: test-org
    bucket: history
    token: secret
    batch_size: 700
    max_backoff: 1s
%s`, vmURL, extra)
}

// exported reads every voltage_point_value sample VictoriaMetrics holds, by point.
func exported(t *testing.T, vm *testharness.VictoriaMetrics) (written, error) {
	t.Helper()
	vm.Flush(t)
	u := vm.URL() + "/api/v1/export?" + url.Values{"match[]": {`{__name__="voltage_point_value"}`}}.Encode()
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := written{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var line struct {
			Metric     map[string]string `json:"metric"`
			Values     []float64         `json:"values"`
			Timestamps []int64           `json:"timestamps"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return nil, fmt.Errorf("export line %q: %w", sc.Text(), err)
		}
		m := line.Metric
		if m["site"] != "test-site" {
			return nil, fmt.Errorf("series without the site tag: %v", m)
		}
		id, kind := m["channel"], "comsrv"
		if m["instance"] != "" {
			id, kind = m["instance"], "inst"
		}
		p, err := sample.ParsePoint(kind + ":" + id + ":" + m["type"] + ":" + m["point"])
		if err != nil {
			return nil, err
		}
		for i, ts := range line.Timestamps {
			if _, dup := out[p.String()][ts]; dup {
				return nil, fmt.Errorf("%s at %d exported twice", p, ts)
			}
			out.add(p.String(), ts, line.Values[i])
		}
	}
	return out, sc.Err()
}

// sameHistory reports the first difference between what was written and what arrived.
func sameHistory(want, got written) error {
	for name, w := range want {
		g := got[name]
		if len(g) != len(w) {
			return fmt.Errorf("%s: %d samples arrived, %d written", name, len(g), len(w))
		}
		for ts, v := range w {
			// VictoriaMetrics keeps about 15 significant digits.
			if gv, ok := g[ts]; !ok || math.Abs(gv-v) > 1e-12*math.Max(1, math.Abs(v)) {
				return fmt.Errorf("%s at %d: arrived %g (%v), written %g", name, ts, gv, ok, v)
			}
		}
	}
	if len(got) != len(want) {
		return fmt.Errorf("%d points arrived, %d written", len(got), len(want))
	}
	return nil
}

func metricValue(t *testing.T, base, name, backend string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(name) + `\{backend="` + regexp.QuoteMeta(backend) + `"\} (\S+)$`)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			return v
		}
	}
	return -1 // not exported (yet)
}

// TestInfluxBackendCatchesUpAfterAnOutage writes to VictoriaMetrics through
// /api/v2/write, stops it while changes keep coming, starts it again, and finds
// every sample there exactly once — while the embedded store, with its own
// consumer group, never stopped.
func TestInfluxBackendCatchesUpAfterAnOutage(t *testing.T) {
	vm := testharness.StartVictoriaMetrics(t)
	s := newSite(t, influxYAML(vm.URL(), ""), 0)
	h := s.run()
	ctx := context.Background()
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Minute).UnixMilli()
	p := newProducer(s.rdb, 0, start)
	const nT = 10
	step := 0
	write := func(n int) {
		for range n {
			if err := p.writeStep(ctx, step, nT); err != nil {
				t.Fatal(err)
			}
			step++
		}
	}
	write(200)
	s.caughtUp("influx-main", 60*time.Second)
	vm.Stop(t)
	write(500)
	testharness.WaitFor(t, 30*time.Second, "hissrv to notice the outage", func() bool {
		return metricValue(t, h.url, "hissrv_backend_up", "influx-main") == 0
	})
	s.caughtUp("embedded", 60*time.Second) // the other backend goes on
	write(300)
	vm.Start(t)
	s.caughtUp("influx-main", 90*time.Second)
	testharness.Eventually(t, 30*time.Second, func() error {
		got, err := exported(t, vm)
		if err != nil {
			return err
		}
		return sameHistory(p.got, got)
	})
	if up := metricValue(t, h.url, "hissrv_backend_up", "influx-main"); up != 1 {
		t.Errorf("hissrv_backend_up = %g after catching up", up)
	}
	t.Logf("%d samples arrived after the outage", p.got.total())
}

// TestSpoolTakesTheBacklogBeforeTheStreamCapWouldDropIt keeps VictoriaMetrics
// down while more changes arrive than voltage:changes may hold: hissrv moves the
// backlog to its spool, and everything arrives, in order, once the server is up.
func TestSpoolTakesTheBacklogBeforeTheStreamCapWouldDropIt(t *testing.T) {
	vm := testharness.StartVictoriaMetrics(t)
	vm.Stop(t)
	const maxLen = 3000
	s := newSite(t, influxYAML(vm.URL(), "spool: {threshold: 0.2}\n"), maxLen)
	h := s.run()
	ctx := context.Background()
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Minute).UnixMilli()
	p := newProducer(s.rdb, maxLen, start)
	const steps = 2500 // 7,500 entries: more than twice the stream's cap
	tick := time.NewTicker(3 * time.Millisecond)
	defer tick.Stop()
	for i := range steps {
		<-tick.C // a steady rate, as devices produce
		if err := p.writeStep(ctx, i, 5); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.rdb.XLen(ctx, "voltage:changes").Result()
	if err != nil || n >= steps*3 {
		t.Fatalf("the stream holds %d entries (%v): it was not capped, the test proves nothing", n, err)
	}
	testharness.WaitFor(t, 30*time.Second, "entries in the spool", func() bool {
		return metricValue(t, h.url, "hissrv_spool_records", "influx-main") > 0
	})
	vm.Start(t)
	s.caughtUp("influx-main", 90*time.Second)
	testharness.WaitFor(t, 60*time.Second, "the spool drained", func() bool {
		return metricValue(t, h.url, "hissrv_spool_records", "influx-main") == 0
	})
	testharness.Eventually(t, 30*time.Second, func() error {
		got, err := exported(t, vm)
		if err != nil {
			return err
		}
		return sameHistory(p.got, got)
	})
	spilled := metricValue(t, h.url, "hissrv_spilled_entries_total", "influx-main")
	if spilled == 0 {
		t.Error("nothing went through the spool")
	}
	if d := metricValue(t, h.url, "hissrv_spool_dropped_records", "influx-main"); d != 0 {
		t.Errorf("the spool dropped %g records", d)
	}
	t.Logf("%d samples arrived; %g entries went through the spool; the stream held %d of %d entries", p.got.total(), spilled, n, steps*3)
}
