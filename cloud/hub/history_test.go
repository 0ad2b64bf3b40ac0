package hub_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/voltageems/voltage/cloud/hub"
	"github.com/voltageems/voltage/shared/testharness"
)

// vmSamples counts the voltage_point_value samples VictoriaMetrics holds per
// site label.
func vmSamples(t *testing.T, vm *testharness.VictoriaMetrics) (map[string]int, error) {
	t.Helper()
	vm.Flush(t)
	resp, err := http.Get(vm.URL() + "/api/v1/export?" + url.Values{"match[]": {`{__name__="voltage_point_value"}`}}.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var line struct {
			Metric     map[string]string `json:"metric"`
			Timestamps []int64           `json:"timestamps"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return nil, err
		}
		out[line.Metric["site"]] += len(line.Timestamps)
	}
	return out, sc.Err()
}

// TestInfluxHistoryAcknowledgesOnlyWrites: with the influx backend every sourced
// change is written with the site as its tag; while the server is down the history
// consumer keeps its batch unacknowledged, and once it is back every sample
// arrives.
func TestInfluxHistoryAcknowledgesOnlyWrites(t *testing.T) {
	vm := testharness.StartVictoriaMetrics(t)
	t.Setenv("VOLTAGE_INFLUX_TOKEN", "unused-by-victoria-metrics")
	cfg := freeConfig(t)
	cfg.History = hub.History{Backend: hub.HistoryInflux, Influx: hub.Influx{URL: vm.URL(), Org: "o", Bucket: "b"}}
	cfg.Sites = []hub.Site{{ID: "p"}, {ID: "q"}}
	h := startHub(t, cfg)
	ep := startEdge(t, "p", edgeLeaf{url: h.LeafURL})
	eq := startEdge(t, "q", edgeLeaf{url: h.LeafURL})
	start := time.Now().Add(-time.Hour).UnixMilli()
	for i := range 20 {
		ep.changeAt(1, i, start+int64(i)*1000, `"1":1,"2":2`)
		eq.changeAt(1, i, start+int64(i)*1000, `"1":1`)
	}
	testharness.Eventually(t, 30*time.Second, func() error {
		got, err := vmSamples(t, vm)
		if err != nil {
			return err
		}
		if got["p"] != 40 || got["q"] != 20 || len(got) != 2 {
			return fmt.Errorf("samples per site = %v, want p 40, q 20", got)
		}
		return nil
	})

	vm.Stop(t)
	for i := 20; i < 50; i++ {
		ep.changeAt(1, i, start+int64(i)*1000, `"1":1,"2":2`)
	}
	waitCount(t, h.ClientURL, "p", 50, 30*time.Second)
	testharness.Eventually(t, 30*time.Second, func() error {
		if n := metric(t, h, `voltage_cloud_history_write_errors_total{site="p"}`); n < 1 {
			return fmt.Errorf("no failed write counted yet (%v)", n)
		}
		return nil
	})
	vm.Start(t)
	testharness.Eventually(t, 60*time.Second, func() error {
		got, err := vmSamples(t, vm)
		if err != nil {
			return err
		}
		if got["p"] != 100 {
			return fmt.Errorf("site p has %d samples, want 100", got["p"])
		}
		return nil
	})
}

// TestHistoryResumesUnacknowledgedAtOnceAfterRestart: a hub that stops while its
// history consumer holds a batch it could not write (the backend is away) leaves
// those messages taken and unacknowledged. The next hub resumes right after the
// last acknowledgement: the batch is written as soon as the backend is back, not
// a minute later when the old delivery's AckWait runs out.
func TestHistoryResumesUnacknowledgedAtOnceAfterRestart(t *testing.T) {
	vm := testharness.StartVictoriaMetrics(t)
	t.Setenv("VOLTAGE_INFLUX_TOKEN", "unused-by-victoria-metrics")
	cfg := freeConfig(t)
	cfg.History = hub.History{Backend: hub.HistoryInflux, Influx: hub.Influx{URL: vm.URL(), Org: "o", Bucket: "b"}}
	cfg.Sites = []hub.Site{{ID: "p"}}
	h := startHub(t, cfg)
	px := startProxy(t, leafHost(t, h.LeafURL))
	e := startEdge(t, "p", edgeLeaf{url: px.url("nats-leaf")})
	start := time.Now().Add(-time.Hour).UnixMilli()
	for i := range 10 {
		e.changeAt(1, i, start+int64(i)*1000, `"1":1`)
	}
	testharness.Eventually(t, 30*time.Second, func() error {
		got, err := vmSamples(t, vm)
		if err != nil {
			return err
		}
		if got["p"] != 10 {
			return fmt.Errorf("site p has %d samples, want 10", got["p"])
		}
		return nil
	})
	vm.Stop(t)
	for i := 10; i < 30; i++ {
		e.changeAt(1, i, start+int64(i)*1000, `"1":1`)
	}
	waitCount(t, h.ClientURL, "p", 30, 30*time.Second)
	testharness.Eventually(t, 30*time.Second, func() error {
		if n := metric(t, h, `voltage_cloud_history_write_errors_total{site="p"}`); n < 1 {
			return fmt.Errorf("the held batch has not failed to write yet (%v)", n)
		}
		return nil
	})
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	vm.Start(t)
	restarted := time.Now()
	h2 := startHub(t, cfg) // same store: the consumer still holds the batch of the first hub
	px.setTarget(leafHost(t, h2.LeafURL))
	testharness.Eventually(t, 20*time.Second, func() error { // well inside the 1 min AckWait
		got, err := vmSamples(t, vm)
		if err != nil {
			return err
		}
		if got["p"] != 30 {
			return fmt.Errorf("site p has %d samples, want 30", got["p"])
		}
		return nil
	})
	t.Logf("the held batch was written %s after the restart", time.Since(restarted).Round(time.Millisecond))
}
