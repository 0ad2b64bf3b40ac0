package voltsim_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/tools/voltsim"
)

// plantSite is a small site whose signal names pick the profiles: a battery with a
// power setpoint, a PV inverter with a power limit and a grid meter. Telemetry is
// float32 ABCD in holding registers, two registers per point from address 0; the
// setpoint and the limit are float32 at holding register 100.
var plantSite = func() map[string]string {
	files := map[string]string{
		"site.yaml": "site: {id: plant}\n",
		"comsrv/channels.yaml": `channels:
  - {id: 1, name: bess1, protocol: modbus_tcp, parameters: {host: 127.0.0.1, port: 502}}
  - {id: 2, name: pv_inverter, protocol: modbus_tcp, parameters: {host: 127.0.0.1, port: 502}}
  - {id: 3, name: grid_meter, protocol: modbus_tcp, parameters: {host: 127.0.0.1, port: 502}}
`,
		"comsrv/1/adjustment.csv":                 "point_id,signal_name,unit\n1,power_setpoint,kW\n",
		"comsrv/1/mapping/adjustment_mapping.csv": mappingHeader + "1,1,16,100,float32,,\n",
		"comsrv/2/adjustment.csv":                 "point_id,signal_name,unit\n1,pv_power_limit,%\n2,reactive_power_limit,kvar\n",
		"comsrv/2/mapping/adjustment_mapping.csv": mappingHeader + "1,1,16,100,float32,,\n2,1,16,102,float32,,\n",
	}
	tables := map[string][]string{
		"1": {"soc", "battery_power", "cell_temperature", "status_word"},
		"2": {"active_power"},
		"3": {"active_power", "voltage_a", "line_voltage_ab", "frequency", "power_factor", "reactive_power"},
	}
	for ch, names := range tables {
		var pts, maps strings.Builder
		pts.WriteString("point_id,signal_name\n")
		maps.WriteString(mappingHeader)
		for i, n := range names {
			pts.WriteString(strconv.Itoa(i+1) + "," + n + "\n")
			maps.WriteString(strconv.Itoa(i+1) + ",1,3," + strconv.Itoa(2*i) + ",float32,ABCD,\n")
		}
		files["comsrv/"+ch+"/telemetry.csv"] = pts.String()
		files["comsrv/"+ch+"/mapping/telemetry_mapping.csv"] = maps.String()
	}
	return files
}()

var midnight = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func TestProfilesAreGuessedFromSignalNames(t *testing.T) {
	sim := startSim(t, writeSite(t, plantSite), voltsim.Options{Start: midnight})
	want := map[[3]uint32]voltsim.ProfileKind{
		{1, 'T', 1}: voltsim.ProfileSOC,
		{1, 'T', 2}: voltsim.ProfileBatteryPower,
		{1, 'T', 3}: voltsim.ProfileTemperature,
		{1, 'T', 4}: voltsim.ProfileFixed,
		{1, 'A', 1}: voltsim.ProfileBatterySetpoint,
		{2, 'T', 1}: voltsim.ProfilePV,
		{2, 'A', 1}: voltsim.ProfilePVLimit,
		{2, 'A', 2}: voltsim.ProfileFixed,
		{3, 'T', 1}: voltsim.ProfileMeterPower,
		{3, 'T', 2}: voltsim.ProfileVoltage,
		{3, 'T', 3}: voltsim.ProfileVoltage,
		{3, 'T', 4}: voltsim.ProfileFrequency,
		{3, 'T', 5}: voltsim.ProfileFixed,
		{3, 'T', 6}: voltsim.ProfileFixed,
	}
	for k, kind := range want {
		ps, err := sim.Point(k[0], point.Type(k[1]), k[2])
		if err != nil || ps.Profile != kind {
			t.Errorf("channel %d %c%d: profile %q (%v), want %q", k[0], k[1], k[2], ps.Profile, err, kind)
		}
	}
	for range 20 {
		sim.Step(time.Minute)
		checkRange(t, sim, 3, 2, 230-1.15, 230+1.15)
		checkRange(t, sim, 3, 3, 400-2, 400+2)
		checkRange(t, sim, 3, 4, 49.98, 50.02)
		checkRange(t, sim, 3, 5, 0.98, 0.98)
		checkRange(t, sim, 1, 3, 25-5.1, 25+5.1)
	}
}

func checkRange(t *testing.T, sim *voltsim.Sim, ch uint32, id point.ID, lo, hi float64) {
	t.Helper()
	v, err := sim.Value(ch, point.Telemetry, id)
	if err != nil || v < lo || v > hi {
		t.Errorf("channel %d T%d = %v (%v), want within [%v, %v]", ch, id, v, err, lo, hi)
	}
}

func TestPVFollowsTheDay(t *testing.T) {
	sim := startSim(t, writeSite(t, plantSite), voltsim.Options{Start: midnight})
	pv := client(t, sim.Addr(2), 1, time.Second)
	for _, c := range []struct {
		step time.Duration
		hour int
		want float64 // without noise
	}{
		{0, 0, 0},
		{6 * time.Hour, 6, 0},
		{3 * time.Hour, 9, 100 * math.Sin(math.Pi/4)},
		{3 * time.Hour, 12, 100},
		{4 * time.Hour, 16, 100 * math.Sin(math.Pi*10/12)},
		{3 * time.Hour, 19, 0},
	} {
		sim.Step(c.step)
		if h := sim.Now().Hour(); h != c.hour {
			t.Fatalf("clock at %d h, want %d h", h, c.hour)
		}
		v, _ := sim.Value(2, point.Telemetry, 1)
		if !near(v, c.want, 0.02*c.want) {
			t.Errorf("PV at %02d:00 = %v, want %v ± 2 %%", c.hour, v, c.want)
		}
		// The wire carries the same value.
		wire, err := pv.ReadFloat32(0, modbus.HOLDING_REGISTER)
		must(t, err)
		if float64(wire) != float64(float32(v)) {
			t.Errorf("PV at %02d:00 on the wire %v, simulated %v", c.hour, wire, v)
		}
	}
}

func TestBatteryFollowsWrittenSetpoint(t *testing.T) {
	// No site load: the meter sees the battery alone (at night, no PV either).
	sim := startSim(t, writeSite(t, plantSite), voltsim.Options{Start: midnight, SiteLoad: -1})
	bess := client(t, sim.Addr(1), 1, time.Second)
	soc := func() float64 {
		t.Helper()
		v, err := bess.ReadFloat32(0, modbus.HOLDING_REGISTER) // read as comsrv would
		must(t, err)
		return float64(v)
	}
	if s := soc(); s != 50 {
		t.Fatalf("initial SOC %v, want 50", s)
	}
	sim.Step(time.Hour)
	if s := soc(); s != 50 {
		t.Errorf("SOC moved to %v without a setpoint", s)
	}

	// Charge at 50 kW (setpoint -50, positive = discharge; the command arrives
	// over Modbus, FC 16): 200 kWh fill by 25 %/h.
	must(t, bess.WriteFloat32(100, -50))
	sim.Step(30 * time.Minute)
	if s := soc(); !near(s, 62.5, 1e-4) {
		t.Errorf("SOC after 30 min charging at 50 kW = %v, want 62.5", s)
	}
	p, _ := sim.Value(1, point.Telemetry, 2)
	meter, _ := sim.Value(3, point.Telemetry, 1)
	if p != -50 || !near(meter, 50, 0.6) { // night: no PV, the site imports what charges the battery
		t.Errorf("battery power %v (want -50), meter %v (want +50 import ± noise)", p, meter)
	}
	sim.Step(2 * time.Hour)
	if s := soc(); s != 100 {
		t.Errorf("SOC after overcharging = %v, want 100 (clamped)", s)
	}
	sim.Step(time.Minute)
	if p, _ := sim.Value(1, point.Telemetry, 2); p != 0 {
		t.Errorf("full battery still charges at %v", p)
	}

	// Discharge at 100 kW: the SOC falls, the site exports.
	must(t, bess.WriteFloat32(100, 100))
	sim.Step(15 * time.Minute)
	if s := soc(); !near(s, 87.5, 1e-4) {
		t.Errorf("SOC after 15 min discharging at 100 kW = %v, want 87.5", s)
	}
	p, _ = sim.Value(1, point.Telemetry, 2)
	meter, _ = sim.Value(3, point.Telemetry, 1)
	if p != 100 || !near(meter, -100, 1.1) {
		t.Errorf("battery power %v (want 100), meter %v (want -100 export ± noise)", p, meter)
	}
	// Until empty, then no more.
	sim.Step(2 * time.Hour)
	if s := soc(); s != 0 {
		t.Errorf("SOC after overdischarging = %v, want 0 (clamped)", s)
	}
	sim.Step(time.Minute)
	if p, _ := sim.Value(1, point.Telemetry, 2); p != 0 {
		t.Errorf("empty battery still discharges at %v", p)
	}
	if m, _ := sim.Value(3, point.Telemetry, 1); !near(m, 0, 0.1) {
		t.Errorf("meter %v with an empty battery and no load, want 0 ± noise", m)
	}
	if w := sim.Writes(1); len(w) != 2 || w[0].Value != -50 || w[1].Value != 100 {
		t.Errorf("writes %+v", w)
	}
}

func TestProfileOverrides(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	must(t, os.WriteFile(good, []byte(`points:
  - {channel: 2, type: T, point: 1, profile: pv, rated: 250}
  - {channel: 1, type: YC, point: 1, profile: soc, capacity: 100, value: 0}
  - {channel: 3, type: telemetry, point: 1, profile: fixed, value: 42}
`), 0o644))
	ov, err := voltsim.LoadProfiles(good)
	must(t, err)
	sim := startSim(t, writeSite(t, plantSite), voltsim.Options{Start: midnight, Profiles: ov})
	sim.Step(12 * time.Hour)
	checkRange(t, sim, 2, 1, 245, 255)
	checkRange(t, sim, 1, 1, 0, 0) // starts empty
	checkRange(t, sim, 3, 1, 42, 42)
	must(t, sim.SetValue(1, point.Adjustment, 1, -10))
	sim.Step(time.Hour)
	checkRange(t, sim, 1, 1, 10, 10) // charging 10 kW for 1 h into 100 kWh

	for name, content := range map[string]string{
		"unknown key":     "points:\n  - {channel: 2, type: T, point: 1, profile: pv, peak: 3}\n",
		"not a list":      "points: 3\n",
		"unknown profile": "points:\n  - {channel: 2, type: T, point: 1, profile: wind}\n",
		"unknown point":   "points:\n  - {channel: 2, type: T, point: 9, profile: pv}\n",
		"unknown type":    "points:\n  - {channel: 2, type: X, point: 1, profile: pv}\n",
	} {
		path := filepath.Join(dir, "bad.yaml")
		must(t, os.WriteFile(path, []byte(content), 0o644))
		ov, err := voltsim.LoadProfiles(path)
		if err == nil {
			var s *voltsim.Sim
			s, err = voltsim.New(writeSite(t, plantSite), voltsim.Options{ListenOverride: "127.0.0.1", Profiles: ov})
			if s != nil {
				_ = s.Close()
			}
		}
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestClockAdvancesByItself(t *testing.T) {
	sim, err := voltsim.New(writeSite(t, plantSite), voltsim.Options{
		ListenOverride: "127.0.0.1", Start: midnight.Add(12 * time.Hour), Tick: 5 * time.Millisecond, Logger: testLogger(t),
	})
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			must(t, err)
		case <-time.After(2 * time.Second):
			t.Error("Run did not return within 2 s of cancel")
		}
	}()
	testharness.WaitFor(t, 2*time.Second, "the clock to advance 5 ticks", func() bool {
		return sim.Now().Sub(midnight.Add(12*time.Hour)) >= 25*time.Millisecond
	})
	// PV noise is recomputed on every tick, so the value on the wire moves too.
	first, _ := sim.Value(2, point.Telemetry, 1)
	testharness.WaitFor(t, 2*time.Second, "the PV value to change", func() bool {
		v, _ := sim.Value(2, point.Telemetry, 1)
		return v != first
	})
}
