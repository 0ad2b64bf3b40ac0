package hub

import (
	"math"
	"testing"
	"time"
)

func near(a *float64, want float64) bool { return a != nil && math.Abs(*a-want) < 1e-9 }

// TestEnergyIntegratesHeldPower: each power value holds until the next, the sum
// restarts at local midnight (with the value held across it counted from
// midnight), and a gap longer than MaxPowerHold adds at most MaxPowerHold.
func TestEnergyIntegratesHeldPower(t *testing.T) {
	loc := time.FixedZone("UTC+2", 2*3600)
	tr := newFigureTracker(KeyFigures{Power: "inst:1:M:4", SOC: "inst:1:M:6", Energy: KeyFigureOff})
	tr.loc = loc
	midnight := time.Date(2026, 3, 10, 0, 0, 0, 0, loc)
	at := func(d time.Duration) int64 { return midnight.Add(d).UnixMilli() }
	p := func(d time.Duration, kw float64) { tr.observe("inst:1:M", "4", PointValue{Value: kw, TS: at(d)}) }

	p(-30*time.Minute, 100) // yesterday: 100 kW from 23:30
	p(30*time.Minute, 50)   // 00:30: today got 100 kW × 0.5 h = 50 kWh
	p(90*time.Minute, 0)    // 01:30: + 50 kW × 1 h = 50 kWh
	tr.observe("inst:1:M", "6", PointValue{Value: 55.5, TS: at(90 * time.Minute)})
	tr.observe("inst:1:M", "9", PointValue{Value: 1e9, TS: at(90 * time.Minute)}) // not a figure

	f := tr.figures(midnight.Add(2*time.Hour), true)
	if f == nil || !near(f.EnergyTodayKWh, 100) || f.EnergySource != "integrated" || !near(f.PowerKW, 0) || !near(f.SOC, 55.5) || f.PVKW != nil {
		t.Fatalf("figures = %+v", f)
	}
	// A live site's held value counts up to now: 20 kW for 30 min = 10 kWh.
	p(2*time.Hour, 20)
	if f := tr.figures(midnight.Add(150*time.Minute), true); !near(f.EnergyTodayKWh, 110) {
		t.Errorf("live energy = %v, want 110", *f.EnergyTodayKWh)
	}
	if f := tr.figures(midnight.Add(150*time.Minute), false); !near(f.EnergyTodayKWh, 100) {
		t.Errorf("offline energy = %v, want 100 (no hold beyond the last value)", *f.EnergyTodayKWh)
	}
	// A 5 h gap adds at most MaxPowerHold (1 h): 20 kWh.
	p(7*time.Hour, 0)
	if f := tr.figures(midnight.Add(8*time.Hour), true); !near(f.EnergyTodayKWh, 120) {
		t.Errorf("after a gap energy = %v, want 120", *f.EnergyTodayKWh)
	}
	// The next day starts from 0, and yesterday's sum is not today's.
	if f := tr.figures(midnight.Add(25*time.Hour), true); !near(f.EnergyTodayKWh, 0) {
		t.Errorf("next day energy = %v, want 0", *f.EnergyTodayKWh)
	}
	// A value older than the one held (out of order) does not go back in time.
	p(6*time.Hour, 1000)
	if f := tr.figures(midnight.Add(8*time.Hour), false); !near(f.EnergyTodayKWh, 120) {
		t.Errorf("after an old value energy = %v, want 120", *f.EnergyTodayKWh)
	}
}

// TestEnergyFromCounter: today is the counter's increase since the last value
// before midnight, and a counter reset keeps what was counted before it.
func TestEnergyFromCounter(t *testing.T) {
	tr := newFigureTracker(KeyFigures{Power: "inst:1:M:4", Energy: "comsrv:3:T:8", Timezone: "UTC"})
	midnight := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	c := func(d time.Duration, kwh float64) {
		tr.observe("comsrv:3:T", "8", PointValue{Value: kwh, TS: midnight.Add(d).UnixMilli()})
	}
	c(-2*time.Hour, 900)
	c(-time.Minute, 1000)
	c(time.Hour, 1040)
	if f := tr.figures(midnight.Add(2*time.Hour), true); f == nil || !near(f.EnergyTodayKWh, 40) || f.EnergySource != "counter" {
		t.Fatalf("figures = %+v", f)
	}
	c(2*time.Hour, 5)  // the meter was reset: 40 before it, 5 after
	c(3*time.Hour, 15) // 15 after it
	if f := tr.figures(midnight.Add(3*time.Hour), true); !near(f.EnergyTodayKWh, 55) {
		t.Errorf("after a reset energy = %v, want 55", *f.EnergyTodayKWh)
	}
	if f := tr.figures(midnight.Add(26*time.Hour), true); !near(f.EnergyTodayKWh, 0) {
		t.Errorf("next day without a value energy = %v, want 0", *f.EnergyTodayKWh)
	}
}

func TestKeyFiguresNone(t *testing.T) {
	tr := newFigureTracker(KeyFigures{Power: KeyFigureOff, PV: KeyFigureOff, Grid: KeyFigureOff, SOC: KeyFigureOff, Energy: KeyFigureOff})
	tr.observe("inst:1:M", "4", PointValue{Value: 1, TS: 1})
	if f := tr.figures(time.Now(), true); f != nil {
		t.Errorf("figures with every point off = %+v, want none", f)
	}
}

func TestKeyFiguresFor(t *testing.T) {
	c := Config{KeyFigures: KeyFigures{SOC: "inst:3:M:2"}, Sites: []Site{{ID: "p", KeyFigures: KeyFigures{Power: "comsrv:3:T:1", Timezone: "Europe/Berlin"}}}}
	if k := c.keyFiguresFor("p"); k.Power != "comsrv:3:T:1" || k.SOC != "inst:3:M:2" || k.PV != DefaultKeyFigurePV || k.Energy != KeyFigureOff || k.Timezone != "Europe/Berlin" {
		t.Errorf("site p = %+v", k)
	}
	if k := c.keyFiguresFor("other"); k.Power != DefaultKeyFigurePower || k.SOC != "inst:3:M:2" {
		t.Errorf("other site = %+v", k)
	}
}

func TestParseFigurePoint(t *testing.T) {
	for _, ok := range []string{"", "off", "inst:1:M:4", "comsrv:3:T:1", "comsrv:3:S:12"} {
		if _, err := parseFigurePoint(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"4", "inst:1:A:4", "comsrv:3:C:1", "inst:1:M:x", "inst:1:M:04", "inst:x:M:4", "redis:1:M:4", "inst:1:M:", ":4"} {
		if _, err := parseFigurePoint(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
