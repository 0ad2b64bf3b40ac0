package voltsim_test

import (
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/tools/voltsim"
)

// loadSite is plantSite with a metered building: channel 4 measures the site's
// consumption, so no unmetered site load is added by default.
var loadSite = func() map[string]string {
	files := map[string]string{}
	for k, v := range plantSite {
		files[k] = v
	}
	files["comsrv/channels.yaml"] = plantSite["comsrv/channels.yaml"] +
		"  - {id: 4, name: building, protocol: modbus_tcp, parameters: {host: 127.0.0.1, port: 502}}\n"
	files["comsrv/4/telemetry.csv"] = "point_id,signal_name,unit\n1,load_power,kW\n2,energy_consumption,kWh\n3,consumption,kW\n4,load_factor,\n5,负荷,kW\n"
	files["comsrv/4/mapping/telemetry_mapping.csv"] = mappingHeader +
		"1,1,3,0,float32,ABCD,\n2,1,3,2,float32,ABCD,\n3,1,3,4,float32,ABCD,\n4,1,3,6,float32,ABCD,\n5,1,3,8,float32,ABCD,\n"
	return files
}()

// loadShape is the daily load curve without noise, in share of the peak.
func loadShape(hour float64) float64 {
	d := (hour - 13) / 4.5
	return 0.4 + 0.6*math.Exp(-d*d)
}

func TestLoadPointsAreGuessedAndFollowTheDay(t *testing.T) {
	sim := startSim(t, writeSite(t, loadSite), voltsim.Options{Start: midnight})
	for id, kind := range map[point.ID]voltsim.ProfileKind{
		1: voltsim.ProfileLoad,  // load_power
		2: voltsim.ProfileFixed, // an energy counter, not a power
		3: voltsim.ProfileLoad,  // consumption in kW
		4: voltsim.ProfileFixed, // a factor
		5: voltsim.ProfileLoad,  // 负荷 in kW
	} {
		if ps, err := sim.Point(4, point.Telemetry, id); err != nil || ps.Profile != kind {
			t.Errorf("channel 4 T%d: profile %q (%v), want %q", id, ps.Profile, err, kind)
		}
	}
	for _, c := range []struct {
		step time.Duration
		hour float64
	}{{3 * time.Hour, 3}, {9 * time.Hour, 12}, {time.Hour, 13}, {4*time.Hour + 30*time.Minute, 17.5}, {5 * time.Hour, 22.5}} {
		sim.Step(c.step)
		want := 50 * loadShape(c.hour) // a load point peaks at 50 kW by default
		checkRange(t, sim, 4, 1, want*0.98, want*1.02)
		if c.hour == 13 {
			checkRange(t, sim, 4, 1, 49, 51) // the peak is the rated power
		}
		if c.hour == 3 {
			checkRange(t, sim, 4, 1, 19.5, 20.5) // 40 % at night
		}
	}
}

// The meter reads load − PV − battery discharge: positive is import.
func TestGridMeterSeesLoadPVAndBattery(t *testing.T) {
	sim := startSim(t, writeSite(t, loadSite), voltsim.Options{Start: midnight.Add(12 * time.Hour)})
	bess := client(t, sim.Addr(1), 1, time.Second)
	check := func(what string, wantSign float64) {
		t.Helper()
		sim.Step(time.Second)
		var load float64
		for _, id := range []point.ID{1, 3, 5} {
			v, _ := sim.Value(4, point.Telemetry, id)
			load += v
		}
		pv, _ := sim.Value(2, point.Telemetry, 1)
		bat, _ := sim.Value(1, point.Telemetry, 2)
		meter, _ := sim.Value(3, point.Telemetry, 1)
		net := load - pv - bat
		if !near(meter, net, 0.01*math.Abs(net)+0.1) {
			t.Errorf("%s: meter %v, want load %v − PV %v − battery %v = %v ± 1 %%", what, meter, load, pv, bat, net)
		}
		if meter*wantSign <= 0 {
			t.Errorf("%s: meter %v has the wrong sign (want %+.0f)", what, meter, wantSign)
		}
	}
	// Noon: three load points of 50 kW peak (~146 kW) against 100 kW of PV: import.
	check("noon, battery idle", +1)
	// Discharging 80 kW turns it into an export.
	must(t, bess.WriteFloat32(100, 80))
	check("noon, discharging 80 kW", -1)
	// Charging 80 kW imports more.
	must(t, bess.WriteFloat32(100, -80))
	check("noon, charging 80 kW", +1)
	if m, _ := sim.Value(3, point.Telemetry, 1); m < 100 {
		t.Errorf("charging at noon: import %v, want above 100 kW", m)
	}
}

// Without a load point the site has an unmetered load: 80 kW at its peak by
// default, Options.SiteLoad otherwise, none when negative.
func TestSiteLoad(t *testing.T) {
	night := midnight.Add(3 * time.Hour) // no PV
	for _, c := range []struct {
		name string
		opt  float64
		peak float64
	}{{"default", 0, 80}, {"set", 200, 200}, {"none", -1, 0}} {
		t.Run(c.name, func(t *testing.T) {
			sim := startSim(t, writeSite(t, plantSite), voltsim.Options{Start: night, SiteLoad: c.opt})
			for range 10 {
				sim.Step(time.Minute)
				want := c.peak * loadShape(3+float64(sim.Now().Sub(night))/float64(time.Hour))
				checkRange(t, sim, 3, 1, want*0.97-0.1, want*1.03+0.1) // ±2 % load, ±1 % meter
			}
		})
	}
	// A load point turns the default off; an explicit SiteLoad adds to it.
	sim := startSim(t, writeSite(t, loadSite), voltsim.Options{Start: night, SiteLoad: 100})
	sim.Step(time.Minute)
	var load float64
	for _, id := range []point.ID{1, 3, 5} {
		v, _ := sim.Value(4, point.Telemetry, id)
		load += v
	}
	want := load + 100*loadShape(3+1.0/60)
	checkRange(t, sim, 3, 1, want-0.03*want, want+0.03*want)
	sim = startSim(t, writeSite(t, loadSite), voltsim.Options{Start: night})
	sim.Step(time.Minute)
	load = 0
	for _, id := range []point.ID{1, 3, 5} {
		v, _ := sim.Value(4, point.Telemetry, id)
		load += v
	}
	checkRange(t, sim, 3, 1, load-0.011*load-0.1, load+0.011*load+0.1)
}

// The PV power limit (% of rated) clamps the inverter's output; it starts at 100.
func TestPVCurtailment(t *testing.T) {
	sim := startSim(t, writeSite(t, plantSite), voltsim.Options{Start: midnight.Add(12 * time.Hour), SiteLoad: -1})
	pv := client(t, sim.Addr(2), 1, time.Second)
	limit, err := pv.ReadFloat32(100, modbus.HOLDING_REGISTER)
	must(t, err)
	if limit != 100 {
		t.Fatalf("initial PV limit %v, want 100 %% (not curtailed)", limit)
	}
	checkRange(t, sim, 2, 1, 98, 102)

	must(t, pv.WriteFloat32(100, 40)) // as comsrv would
	sim.Step(time.Second)
	checkRange(t, sim, 2, 1, 40, 40)
	checkRange(t, sim, 3, 1, -40.5, -39.5) // the meter sees the curtailed PV
	wire, err := pv.ReadFloat32(0, modbus.HOLDING_REGISTER)
	must(t, err)
	if wire != 40 {
		t.Errorf("curtailed PV on the wire %v, want 40", wire)
	}

	// Below the limit the sun decides: at 07:00 it gives ~26 kW.
	sim.Step(19 * time.Hour)
	want := 100 * math.Sin(math.Pi/12)
	checkRange(t, sim, 2, 1, want*0.98, want*1.02)

	// A pinned limit is still the limit; out of range clamps to 0–100 %.
	must(t, sim.SetValue(2, point.Adjustment, 1, 10))
	sim.Step(time.Second)
	checkRange(t, sim, 2, 1, 10, 10)
	must(t, sim.SetValue(2, point.Adjustment, 1, -5))
	sim.Step(time.Second)
	checkRange(t, sim, 2, 1, 0, 0)
	must(t, sim.SetValue(2, point.Adjustment, 1, 150))
	sim.Step(5 * time.Hour) // noon
	checkRange(t, sim, 2, 1, 98, 102)
}

// Overrides pick the load and the limit for points whose names say nothing.
func TestLoadAndLimitOverrides(t *testing.T) {
	files := map[string]string{}
	for k, v := range loadSite {
		files[k] = v
	}
	files["comsrv/1/telemetry.csv"] = "point_id,signal_name\n1,soc\n2,battery_power\n3,x1\n4,x2\n"
	sim := startSim(t, writeSite(t, files), voltsim.Options{
		Start: midnight.Add(13 * time.Hour),
		Profiles: []voltsim.ProfileOverride{
			{Channel: 1, Type: "T", Point: 3, Profile: "load", Rated: 30},
			{Channel: 2, Type: "A", Point: 2, Profile: "pv_limit", Value: ptr(25.0)},
			{Channel: 4, Type: "T", Point: 1, Profile: "fixed", Value: ptr(0.0)},
		},
	})
	if ps, _ := sim.Point(1, point.Telemetry, 3); ps.Profile != voltsim.ProfileLoad {
		t.Errorf("override: T3 profile %q, want load", ps.Profile)
	}
	checkRange(t, sim, 1, 3, 29.4, 30.6)
	// Two limit points on the PV channel: the first one (A1, 100 %) is the limit.
	checkRange(t, sim, 2, 1, 0.98*100*math.Sin(math.Pi*7/12), 1.02*100*math.Sin(math.Pi*7/12))
	files["comsrv/2/adjustment.csv"] = "point_id,signal_name,unit\n1,setpoint_x,%\n2,reactive_power_limit,kvar\n"
	sim = startSim(t, writeSite(t, files), voltsim.Options{
		Start:    midnight.Add(12 * time.Hour),
		Profiles: []voltsim.ProfileOverride{{Channel: 2, Type: "A", Point: 2, Profile: "pv_limit", Value: ptr(25.0)}},
	})
	checkRange(t, sim, 2, 1, 25, 25)
}

func ptr[T any](v T) *T { return &v }

// The demo site of the repository (config/, what `task dev` runs) at noon: PV
// near its 100 kW rating and not curtailed, the default site load a bit below it,
// the battery idle, so the grid meter shows a small export.
func TestDemoSiteAtNoon(t *testing.T) {
	cfg, err := config.Load(filepath.Join("..", "..", "config"))
	must(t, err)
	var keep []config.Channel
	for _, ch := range cfg.Channels {
		if ch.ID <= 3 { // pv1, ess1, grid_meter: Modbus TCP
			keep = append(keep, ch)
		}
	}
	cfg.Channels = keep
	sim := startSim(t, cfg, voltsim.Options{Start: midnight.Add(12 * time.Hour), Seed: 1})
	for _, c := range []struct {
		ch   uint32
		typ  point.Type
		id   point.ID
		kind voltsim.ProfileKind
		lo   float64
		hi   float64
	}{
		{1, point.Telemetry, 1, voltsim.ProfilePV, 98, 102},            // pv_active_power
		{1, point.Adjustment, 1, voltsim.ProfilePVLimit, 100, 100},     // pv_power_limit: not curtailed
		{2, point.Adjustment, 1, voltsim.ProfileBatterySetpoint, 0, 0}, // idle
		{2, point.Telemetry, 1, voltsim.ProfileBatteryPower, 0, 0},
		{2, point.Telemetry, 101, voltsim.ProfileSOC, 50, 50},
		{3, point.Telemetry, 5, voltsim.ProfileMeterPower, -28, -16}, // ~78 kW load − ~100 kW PV
	} {
		ps, err := sim.Point(c.ch, c.typ, c.id)
		if err != nil || ps.Profile != c.kind || ps.Value < c.lo || ps.Value > c.hi {
			t.Errorf("channel %d %s%d: %+v (%v), want profile %q within [%v, %v]", c.ch, c.typ, c.id, ps, err, c.kind, c.lo, c.hi)
		}
	}
}

// On a hybrid inverter (a battery and PV on one channel) a limit named for PV is
// the PV limit, the power setpoint stays the battery's.
func TestHybridChannelGuesses(t *testing.T) {
	files := map[string]string{}
	for k, v := range plantSite {
		files[k] = v
	}
	files["comsrv/1/adjustment.csv"] = "point_id,signal_name,unit\n1,power_setpoint,kW\n2,pv_power_limit,%\n3,export_limit,kW\n"
	files["comsrv/1/mapping/adjustment_mapping.csv"] = mappingHeader + "1,1,16,100,float32,,\n2,1,16,102,float32,,\n3,1,16,104,float32,,\n"
	sim := startSim(t, writeSite(t, files), voltsim.Options{Start: midnight})
	for id, kind := range map[point.ID]voltsim.ProfileKind{
		1: voltsim.ProfileBatterySetpoint,
		2: voltsim.ProfilePVLimit,
		3: voltsim.ProfileFixed, // a limit not named for PV on a battery's channel
	} {
		if ps, err := sim.Point(1, point.Adjustment, id); err != nil || ps.Profile != kind {
			t.Errorf("channel 1 A%d: profile %q (%v), want %q", id, ps.Profile, err, kind)
		}
	}
}
