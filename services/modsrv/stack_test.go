package modsrv_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/tools/voltsim"
)

// A value read from a device reaches the routed instance measurement with the
// device sample's timestamp and quality, and the station total follows.
func TestDeviceValueReachesInstance(t *testing.T) {
	s := newStack(t, deviceSite)
	s.StartDevices()
	s.startModsrv()

	if err := s.Sim.SetValue(1, point.Telemetry, 1, 42.5); err != nil {
		t.Fatal(err)
	}
	if err := s.Sim.SetValue(1, point.Telemetry, 3, 7.5); err != nil {
		t.Fatal(err)
	}
	s.WaitValue(keyspace.InstanceMeasurements(pv1), mActive, "42.5")
	s.WaitValue(keyspace.InstanceMeasurements(pv2), mActive, "7.5")
	testharness.Eventually(t, 20*time.Second, func() error {
		// The instance timestamp is the device sample's, as comsrv stored it.
		chTS := s.HGet(keyspace.ChannelTimestamps(1, point.Telemetry), "1")
		instTS := s.HGet(keyspace.InstanceMeasurementTimestamps(pv1), mActive)
		if chTS == "" || chTS != instTS {
			return fmt.Errorf("channel ts %q, instance ts %q", chTS, instTS)
		}
		return nil
	})
	if q := s.HGet(keyspace.InstanceMeasurementQuality(pv1), mActive); q != "" {
		t.Fatalf("quality of a good value is %q, want no entry", q)
	}
	s.WaitValue(keyspace.InstanceMeasurements(station), mPVPower, "50")

	// The device stops answering: comsrv marks its points comm_lost, and that
	// quality travels to the instance and to the calculation reading it.
	if err := s.Sim.SetFault(1, voltsim.Fault{Mode: voltsim.FaultDrop}); err != nil {
		t.Fatal(err)
	}
	s.WaitValue(keyspace.InstanceMeasurementQuality(pv1), mActive, "comm_lost")
	s.WaitField(keyspace.InstanceMeasurementQuality(station), mPVPower, func(v string) bool { return v != "" }, "a quality that is not good")
	if v := s.HGet(keyspace.InstanceMeasurements(station), mPVPower); v != "50" {
		t.Fatalf("station pv_power during the outage = %q, want the last value 50 flagged", v)
	}
}

// An instance action becomes a command on the routed channel point and reaches
// the device; limits of the product are checked first.
func TestActionReachesDevice(t *testing.T) {
	s := newStack(t, deviceSite)
	s.StartDevices()
	s.startModsrv()

	var res command.Result
	code, body := s.call("POST", "/instances/pv1/actions/power_limit", `{"value": 55, "user": "alice"}`, &res)
	if code != http.StatusOK || res.Status != command.OK {
		t.Fatalf("POST action: %d %s", code, body)
	}
	found := false
	for _, w := range s.Sim.Writes(1) {
		if w.Type == point.Adjustment && w.PointID == 1 && w.Value == 55 {
			found = true
		}
	}
	if !found {
		t.Fatalf("the device did not receive limit 55: writes %+v", s.Sim.Writes(1))
	}
	if v := s.HGet(keyspace.InstanceActions(pv1), "1"); v != "55" {
		t.Fatalf("inst:%d:A power_limit = %q, want 55", pv1, v)
	}

	// A bool action through the producer API, by id, waited on like any command.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id, err := command.SubmitAction(ctx, s.RDB, command.Action{Instance: pv1, Action: "2", Value: 1, Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := command.Wait(ctx, s.RDB, id); err != nil || r.Status != command.OK || r.Channel != 1 || r.Type != "C" {
		t.Fatalf("enable: %+v, %v", r, err)
	}

	// Out of the product's range: rejected by modsrv, never sent.
	code, body = s.call("POST", "/instances/pv1/actions/power_limit", `{"value": 150}`, nil)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "above the maximum 100") {
		t.Fatalf("limit 150: %d %s", code, body)
	}
	code, body = s.call("POST", "/instances/pv1/actions/power_limit", `{"value": 55.55}`, nil)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "not a multiple of the step 0.1") {
		t.Fatalf("limit 55.55: %d %s", code, body)
	}
	code, body = s.call("POST", "/instances/pv1/actions/enable", `{"value": 2}`, nil)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "takes 0 or 1") {
		t.Fatalf("enable 2: %d %s", code, body)
	}
	code, body = s.call("POST", "/instances/pv1/actions/fly", `{"value": 1}`, nil)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, `has no action \"fly\"`) {
		t.Fatalf("unknown action: %d %s", code, body)
	}
	code, body = s.call("POST", "/instances/pv2/actions/power_limit", `{"value": 10}`, nil)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "not routed") {
		t.Fatalf("unrouted action: %d %s", code, body)
	}
	for _, bad := range []string{`{}`, `{"value": "x"}`, `not json`, `{"value": 1, "colour": 2}`} {
		if code, body := s.call("POST", "/instances/pv1/actions/power_limit", bad, nil); code != http.StatusBadRequest {
			t.Errorf("body %s: %d %s, want 400", bad, code, body)
		}
	}
	if code, _ := s.call("POST", "/instances/pv9/actions/power_limit", `{"value": 1}`, nil); code != http.StatusNotFound {
		t.Errorf("unknown instance: %d, want 404", code)
	}
	for _, w := range s.Sim.Writes(1) {
		if w.Type == point.Adjustment && w.Value == 150 {
			t.Fatal("a rejected action reached the device")
		}
	}
}

// A calculated total follows its inputs, an integrator continues after a
// restart, and runtime errors make outputs invalid without stopping anything.
func TestCalculationsFollowInputsAndSurviveRestart(t *testing.T) {
	s := newStack(t, virtualSite)
	t0 := time.Now().Add(-10 * time.Minute).UnixMilli()
	minute := int64(60_000)
	s.WriteChannel(1, point.Telemetry, t0, point.Sample{ID: 1, Value: 40}, point.Sample{ID: 3, Value: 20})
	s.startModsrv()

	s.WaitValue(keyspace.InstanceMeasurements(station), mPVPower, "60")
	s.WriteChannel(1, point.Telemetry, t0+minute, point.Sample{ID: 3, Value: 20})
	s.WriteChannel(1, point.Telemetry, t0+minute, point.Sample{ID: 1, Value: 40})
	s.WaitValue(keyspace.InstanceMeasurements(station), mPVEnergy, "1") // 60 kW for a minute
	s.WriteChannel(1, point.Telemetry, t0+2*minute, point.Sample{ID: 1, Value: 100})
	s.WaitValue(keyspace.InstanceMeasurements(station), mPVPower, "120")
	// (60+120)/2 kW for a minute = 1.5 kWh more.
	s.WaitValue(keyspace.InstanceMeasurements(station), mPVEnergy, "2.5")

	// Runtime errors: pv2's rated power is 0 (division by zero) and station
	// grid_power reads a measurement nothing writes. Both are invalid, not zero.
	s.WaitValue(keyspace.InstanceMeasurementQuality(pv2), mLoadFactor, "invalid")
	s.WaitValue(keyspace.InstanceMeasurementQuality(station), mGridPower, "invalid")
	s.WaitValue(keyspace.InstanceMeasurements(pv1), mLoadFactor, "100")
	var graph struct {
		Nodes []struct {
			Name      string `json:"name"`
			LastError string `json:"last_error"`
		} `json:"nodes"`
	}
	if code, body := s.get("/calculations", &graph); code != http.StatusOK {
		t.Fatalf("/calculations: %d %s", code, body)
	}
	for _, n := range graph.Nodes {
		if n.Name == "pv2_load" && !strings.Contains(n.LastError, "not a finite number") {
			t.Fatalf("pv2_load last error %q", n.LastError)
		}
	}

	// Restart while the inverter's link is down: the counter keeps its value,
	// flagged, rather than restarting from 0.
	s.stop()
	s.WriteChannel(1, point.Telemetry, t0+3*minute, point.Sample{ID: 1, Value: 100, Quality: point.CommLost})
	s.startModsrv()
	s.WaitValue(keyspace.InstanceMeasurementQuality(station), mPVEnergy, "comm_lost")
	if v := s.HGet(keyspace.InstanceMeasurements(station), mPVEnergy); v != "2.5" {
		t.Fatalf("energy after a restart with its input down = %q, want 2.5 (flagged)", v)
	}
	// The link is back: the integrator continues from its restored state,
	// 120 kW for the two minutes since its last good sample = 4 kWh more.
	s.WriteChannel(1, point.Telemetry, t0+4*minute, point.Sample{ID: 1, Value: 100})
	s.WaitValue(keyspace.InstanceMeasurements(station), mPVEnergy, "6.5")
	if q := s.HGet(keyspace.InstanceMeasurementQuality(station), mPVEnergy); q != "" {
		t.Fatalf("energy quality %q once its input is good", q)
	}
	// Still running and still computing after the errors.
	s.WriteChannel(1, point.Telemetry, t0+5*minute, point.Sample{ID: 3, Value: 0})
	s.WaitValue(keyspace.InstanceMeasurements(station), mPVPower, "100")
	if code, _ := s.get("/healthz", nil); code != http.StatusOK {
		t.Fatalf("healthz %d", code)
	}
}

// Change messages carry each point's quality into the instance.
func TestQualityTravelsWithTheValue(t *testing.T) {
	s := newStack(t, virtualSite)
	s.startModsrv()
	now := time.Now().UnixMilli()
	s.WriteChannel(1, point.Telemetry, now, point.Sample{ID: 1, Value: 10}, point.Sample{ID: 3, Value: 5, Quality: point.Stale})
	s.WaitValue(keyspace.InstanceMeasurementQuality(pv2), mActive, "stale")
	s.WaitValue(keyspace.InstanceMeasurementQuality(station), mPVPower, "stale")
	s.WriteChannel(1, point.Telemetry, now+1, point.Sample{ID: 3, Value: 6})
	s.WaitValue(keyspace.InstanceMeasurements(station), mPVPower, "16")
	if q := s.HGet(keyspace.InstanceMeasurementQuality(station), mPVPower); q != "" {
		t.Fatalf("quality after a good value: %q", q)
	}
	// The change message on inst:{id}:M and voltage:changes.
	entries, err := s.RDB.XRange(context.Background(), keyspace.Changes, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		if e.Values["key"] == keyspace.InstanceMeasurements(station) {
			m, err := statestore.DecodeMessage([]byte(e.Values["m"].(string)))
			if err == nil && m.V[mPVPower] == 16 {
				found = true
			}
		}
	}
	if !found {
		t.Fatal("no voltage:changes entry for the station's pv_power 16")
	}
}

// Actions written while modsrv was away, and one a crashed modsrv had read
// without acknowledging, are handled when it starts.
func TestPendingActionsAreHandledAtStart(t *testing.T) {
	s := newStack(t, virtualSite)
	ctx := context.Background()
	early, err := command.SubmitAction(ctx, s.RDB, command.Action{Instance: pv1, Action: "power_limit", Value: 30, Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RDB.XGroupCreateMkStream(ctx, keyspace.InstanceActionStream, keyspace.ActionGroup, "0").Err(); err != nil {
		t.Fatal(err)
	}
	// The crashed modsrv read it (same consumer name) and died.
	if err := s.RDB.XReadGroup(ctx, &redis.XReadGroupArgs{Group: keyspace.ActionGroup, Consumer: "modsrv-test",
		Streams: []string{keyspace.InstanceActionStream, ">"}, Count: 10, Block: -1}).Err(); err != nil {
		t.Fatal(err)
	}
	// Another modsrv (another consumer name) read one and died too.
	other, err := command.SubmitAction(ctx, s.RDB, command.Action{Instance: pv1, Action: "enable", Value: 1, Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RDB.XReadGroup(ctx, &redis.XReadGroupArgs{Group: keyspace.ActionGroup, Consumer: "modsrv-other",
		Streams: []string{keyspace.InstanceActionStream, ">"}, Count: 10, Block: -1}).Err(); err != nil {
		t.Fatal(err)
	}
	late, err := command.SubmitAction(ctx, s.RDB, command.Action{Instance: pv1, Action: "power_limit", Value: 500, Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	s.claimAge = time.Millisecond
	s.startModsrv()
	testharness.Eventually(t, 20*time.Second, func() error {
		r, err := command.Get(ctx, s.RDB, early)
		if err != nil || r.Channel != 1 || r.Type != "A" {
			return fmt.Errorf("early action: %+v %v", r, err)
		}
		r, err = command.Get(ctx, s.RDB, other)
		if err != nil || r.Channel != 1 || r.Type != "C" {
			return fmt.Errorf("claimed action: %+v %v", r, err)
		}
		r, err = command.Get(ctx, s.RDB, late)
		if err != nil || r.Status != command.Rejected {
			return fmt.Errorf("late action: %+v %v", r, err)
		}
		return nil
	})
	// Nothing stays pending, and the early action was submitted exactly once.
	testharness.Eventually(t, 20*time.Second, func() error {
		p, err := s.RDB.XPending(ctx, keyspace.InstanceActionStream, keyspace.ActionGroup).Result()
		if err != nil || p.Count != 0 {
			return fmt.Errorf("pending actions: %+v %v", p, err)
		}
		return nil
	})
	n, err := s.RDB.XLen(ctx, keyspace.ChannelCommands(1)).Result()
	if err != nil || n != 2 {
		t.Fatalf("channel 1 command stream has %d entries (%v), want 2", n, err)
	}
	if v := s.HGet(keyspace.InstanceActions(pv1), "1"); v != "30" {
		t.Fatalf("inst:%d:A power_limit = %q, want 30", pv1, v)
	}
	audit, _ := s.RDB.XLen(ctx, keyspace.Audit).Result()
	if audit == 0 {
		t.Fatal("the rejected action is not in audit:log")
	}
}
