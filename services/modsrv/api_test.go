package modsrv_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/testharness"
)

func TestHTTPAPI(t *testing.T) {
	s := newStack(t, virtualSite)
	s.WriteChannel(1, point.Telemetry, time.Now().UnixMilli(), point.Sample{ID: 1, Value: 12}, point.Sample{ID: 3, Value: 3})
	s.startModsrv()
	s.WaitValue(keyspace.InstanceMeasurements(station), mPVPower, "15")

	var products []struct {
		ID      string `json:"id"`
		BuiltIn bool   `json:"built_in"`
	}
	if code, body := s.get("/products", &products); code != http.StatusOK || len(products) != 10 {
		t.Fatalf("/products: %d %s", code, body)
	}
	var product struct {
		Measurements []struct{ Name string } `json:"measurements"`
	}
	if code, body := s.get("/products/pv_inverter", &product); code != http.StatusOK || product.Measurements[0].Name != "active_power" {
		t.Fatalf("/products/pv_inverter: %d %s", code, body)
	}
	if code, body := s.get("/products/rocket", nil); code != http.StatusNotFound || !strings.Contains(body, "no product") {
		t.Fatalf("/products/rocket: %d %s", code, body)
	}

	type pv struct {
		Name    string   `json:"name"`
		Value   *float64 `json:"value"`
		Quality string   `json:"quality"`
		Source  string   `json:"source"`
	}
	var inst struct {
		Name         string         `json:"name"`
		Parent       string         `json:"parent"`
		Properties   map[string]any `json:"properties"`
		Measurements []pv           `json:"measurements"`
	}
	if code, body := s.get("/instances/pv1", &inst); code != http.StatusOK || inst.Parent != "station" || inst.Properties["rated_power"] != 100.0 {
		t.Fatalf("/instances/pv1: %d %s", code, body)
	}
	m := inst.Measurements[0]
	if m.Name != "active_power" || m.Value == nil || *m.Value != 12 || m.Quality != "good" || m.Source != "route" {
		t.Fatalf("pv1 active_power: %+v", m)
	}
	var byID struct{ Name string }
	if code, _ := s.get("/instances/1", &byID); code != http.StatusOK || byID.Name != "station" {
		t.Fatalf("/instances/1: %d %+v", code, byID)
	}
	if code, _ := s.get("/instances/nobody", nil); code != http.StatusNotFound {
		t.Fatalf("/instances/nobody: %d", code)
	}
	var all []struct{ Name string }
	if code, _ := s.get("/instances", &all); code != http.StatusOK || len(all) != 3 {
		t.Fatalf("/instances: %d %+v", code, all)
	}

	var routes []struct {
		Instance string `json:"instance"`
		Kind     string `json:"instance_type"`
		Source   string `json:"source"`
	}
	if code, body := s.get("/routing", &routes); code != http.StatusOK || len(routes) != 6 || routes[0].Kind != "M" || !strings.Contains(routes[0].Source, "channel_routing.csv:2") {
		t.Fatalf("/routing: %d %s", code, body)
	}

	var report struct {
		Orphans  []struct{ Channel, Point uint32 } `json:"orphans"`
		Unrouted []struct{ Instance, Name string } `json:"unrouted_measurements"`
		Warnings []string                          `json:"warnings"`
	}
	if code, body := s.get("/validation", &report); code != http.StatusOK || len(report.Unrouted) == 0 || len(report.Warnings) != 1 ||
		!strings.Contains(report.Warnings[0], "pv1.temperature, which is neither routed nor calculated") {
		t.Fatalf("/validation: %d %s", code, body)
	}

	var graph struct {
		Nodes []struct {
			Name     string   `json:"name"`
			Inputs   []string `json:"inputs"`
			Stateful bool     `json:"stateful"`
		} `json:"nodes"`
		Edges []struct{ From, To string } `json:"edges"`
		Order []string                    `json:"order"`
	}
	if code, body := s.get("/calculations", &graph); code != http.StatusOK || len(graph.Nodes) != 5 || len(graph.Order) != 5 {
		t.Fatalf("/calculations: %d %s", code, body)
	}
	pos := map[string]int{}
	for i, n := range graph.Order {
		pos[n] = i
	}
	if pos["total_pv"] > pos["pv_energy"] {
		t.Fatalf("order %v: pv_energy before the total it integrates", graph.Order)
	}
	if code, body := s.get("/functions", nil); code != http.StatusOK || !strings.Contains(body, "integrate") {
		t.Fatalf("/functions: %d %s", code, body)
	}
	if code, body := s.get("/metrics", nil); code != http.StatusOK || !strings.Contains(body, "modsrv_routed_points_total") {
		t.Fatalf("/metrics: %d", code)
	}
}

// A reload applies a valid change and refuses an invalid one, keeping the model.
func TestReload(t *testing.T) {
	s := newStack(t, virtualSite)
	s.startModsrv()
	calcs := filepath.Join(s.Dir, "modsrv", "calculations.yaml")
	good, _ := os.ReadFile(calcs)

	bad := "calculations:\n  - {name: a, instance: station, measurement: soc, expression: 'station.soc + 1'}\n"
	if err := os.WriteFile(calcs, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	code, body := s.call("POST", "/reload", "", nil)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "calculations form a cycle: a → a") {
		t.Fatalf("reload of a cycle: %d %s", code, body)
	}
	var graph struct{ Order []string }
	if s.get("/calculations", &graph); len(graph.Order) != 5 {
		t.Fatalf("after a refused reload: %v", graph.Order)
	}

	changed := strings.Replace(string(good), "pv1.active_power / pv1.rated_power * 100", "pv1.active_power * 2", 1)
	if err := os.WriteFile(calcs, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := s.call("POST", "/reload", "", nil); code != http.StatusOK {
		t.Fatalf("reload: %d %s", code, body)
	}
	s.WriteChannel(1, point.Telemetry, time.Now().UnixMilli(), point.Sample{ID: 1, Value: 21})
	s.WaitValue(keyspace.InstanceMeasurements(pv1), mLoadFactor, "42")
}

// Redis going away does not stop modsrv; it resyncs and resumes when it is back.
func TestRedisOutage(t *testing.T) {
	s := newStack(t, virtualSite)
	s.startModsrv()
	s.WriteChannel(1, point.Telemetry, time.Now().UnixMilli(), point.Sample{ID: 1, Value: 1}, point.Sample{ID: 3, Value: 1})
	s.WaitValue(keyspace.InstanceMeasurements(station), mPVPower, "2")

	s.Redis.Stop(t)
	testharness.Eventually(t, 20*time.Second, func() error {
		if code, _ := s.get("/readyz", nil); code == http.StatusOK {
			return errorf("readyz still ok while Redis is down")
		}
		return nil
	})
	s.Redis.Restart(t) // empty: no persistence
	s.WriteChannel(1, point.Telemetry, time.Now().UnixMilli(), point.Sample{ID: 1, Value: 5}, point.Sample{ID: 3, Value: 4})
	s.WaitValue(keyspace.InstanceMeasurements(station), mPVPower, "9")
	if code, body := s.get("/healthz", nil); code != http.StatusOK {
		t.Fatalf("healthz %d %s", code, body)
	}
}
