package hub

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/voltageems/voltage/shared/keyspace"
)

// Key figures: the few numbers the fleet's site list shows per site (power, PV,
// grid, energy today, SOC), computed at the hub from the values the site sends
// up. Which point is which figure is configured in cloud.yaml (key_figures, and
// per site sites[].key_figures); the defaults are the built-in Station product's
// measurements on instance 1, the station of the demo site and of every site
// laid out like it.
//
// Energy today is computed from what the hub stream holds, so a hub restart (which
// replays the stream) gives the same figure: either from an energy counter point
// (today = counter now − counter at local midnight), or by integrating the power
// point, each value held until the next one (the edge sends a value when it
// changes, so a value that does not change is still the power).

// Default key figure points: the Station product's measurements of instance 1
// (config/modsrv/products/station.yaml, config/modsrv/calculations.yaml).
var (
	DefaultKeyFigurePower = stationPoint(4) // inst:1:M:4, station.load_power, kW (site consumption)
	DefaultKeyFigurePV    = stationPoint(1) // inst:1:M:1, station.pv_power, kW
	DefaultKeyFigureGrid  = stationPoint(3) // inst:1:M:3, station.grid_power, kW (positive = import)
	DefaultKeyFigureSOC   = stationPoint(6) // inst:1:M:6, station.soc, %
)

func stationPoint(m int) string { return keyspace.InstanceMeasurements(1) + ":" + strconv.Itoa(m) }

// KeyFigureOff disables one key figure.
const KeyFigureOff = "off"

// MaxPowerHold bounds how long an integrated power value is held: a gap longer
// than this between two values of the power point (the site was away and its
// buffer did not cover it) adds no energy beyond it.
const MaxPowerHold = time.Hour

// KeyFigures name the points of a site's key figures, each as hash:point
// (inst:1:M:4, comsrv:3:T:1), or "off". Empty takes the fleet-wide setting, then
// the default.
type KeyFigures struct {
	Power string `yaml:"power"` // site power in kW (default inst:1:M:4, the station's load power)
	PV    string `yaml:"pv"`    // PV power in kW (default inst:1:M:1)
	Grid  string `yaml:"grid"`  // grid power in kW, positive = import (default inst:1:M:3)
	SOC   string `yaml:"soc"`   // battery state of charge in % (default inst:1:M:6)
	// Energy is an energy counter in kWh; energy today is its increase since local
	// midnight. Default off: energy today integrates the power point.
	Energy string `yaml:"energy"`
	// Timezone is the site's IANA time zone, whose midnight starts "today"
	// (default: the hub's local time zone, TZ).
	Timezone string `yaml:"timezone"`
}

// merge fills the empty settings of k from def.
func (k KeyFigures) merge(def KeyFigures) KeyFigures {
	pick := func(a, b string) string {
		if a != "" {
			return a
		}
		return b
	}
	return KeyFigures{Power: pick(k.Power, def.Power), PV: pick(k.PV, def.PV), Grid: pick(k.Grid, def.Grid),
		SOC: pick(k.SOC, def.SOC), Energy: pick(k.Energy, def.Energy), Timezone: pick(k.Timezone, def.Timezone)}
}

// defaultKeyFigures are the built-in settings.
var defaultKeyFigures = KeyFigures{Power: DefaultKeyFigurePower, PV: DefaultKeyFigurePV, Grid: DefaultKeyFigureGrid,
	SOC: DefaultKeyFigureSOC, Energy: KeyFigureOff}

// keyFiguresFor is the setting in force for site id: its own, then the fleet's,
// then the defaults.
func (c *Config) keyFiguresFor(id string) KeyFigures {
	k := c.KeyFigures.merge(defaultKeyFigures)
	for _, s := range c.Sites {
		if s.ID == id {
			return s.KeyFigures.merge(k)
		}
	}
	return k
}

// figurePoint is one point of a site: the hash it is in and its id there.
type figurePoint struct{ key, id string }

// parseFigurePoint reads hash:point; "" and "off" are no point.
func parseFigurePoint(s string) (figurePoint, error) {
	if s == "" || s == KeyFigureOff {
		return figurePoint{}, nil
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return figurePoint{}, fmt.Errorf("want hash:point such as inst:1:M:4 or comsrv:3:T:1, got %q", s)
	}
	key, id := s[:i], s[i+1:]
	src, ok := keyspace.ParseChangeKey(key)
	if !ok || src.Instance && src.Family != "M" || !src.Instance && src.Family != "T" && src.Family != "S" {
		return figurePoint{}, fmt.Errorf("%q: the hash must be an instance's measurements (inst:{id}:M) or a channel's telemetry or signals (comsrv:{ch}:T, comsrv:{ch}:S)", s)
	}
	if n, err := strconv.ParseUint(id, 10, 32); err != nil || strconv.FormatUint(n, 10) != id {
		return figurePoint{}, fmt.Errorf("%q: the point id %q is not a number", s, id)
	}
	return figurePoint{key: key, id: id}, nil
}

// validateKeyFigures reports what is wrong with k, written at yaml path at.
func (v *validator) validateKeyFigures(at string, k KeyFigures) {
	for name, p := range map[string]string{"power": k.Power, "pv": k.PV, "grid": k.Grid, "soc": k.SOC, "energy": k.Energy} {
		if _, err := parseFigurePoint(p); err != nil {
			v.add(at+"."+name, "%s.%s: %v", at[2:], name, err)
		}
	}
	if k.Timezone != "" {
		if _, err := time.LoadLocation(k.Timezone); err != nil {
			v.add(at+".timezone", "%s.timezone: %v (want an IANA name such as Europe/Berlin)", at[2:], err)
		}
	}
}

// figureTracker follows the key figure points of one site as its values are
// applied. The site's lock guards it.
type figureTracker struct {
	power, pv, grid, soc, energy figurePoint
	loc                          *time.Location

	// The last day dayOf computed, [dayStart, dayEnd) in Unix ms: most values
	// fall on it, and time zone arithmetic costs more than the rest of observe.
	dayNum, dayStart, dayEnd int64

	last map[figurePoint]PointValue // latest value of each figure point

	// Energy today by integration of power.
	day       int64   // the local day (days since epoch in loc) the sum is of; 0: none yet
	integral  float64 // kWh of day up to powerAt
	powerAt   int64   // Unix ms of the power value the sum reached
	powerVal  float64 // that value
	havePower bool

	// Energy today from a counter.
	counterDay  int64
	counterBase float64 // the counter at the start of counterDay
	counterAcc  float64 // increase before the counter last went back (a reset)
	counterLast float64
	haveCounter bool
}

// newFigureTracker builds the tracker of k (validated by the config loader).
func newFigureTracker(k KeyFigures) *figureTracker {
	t := &figureTracker{last: map[figurePoint]PointValue{}, loc: time.Local}
	t.power, _ = parseFigurePoint(k.Power)
	t.pv, _ = parseFigurePoint(k.PV)
	t.grid, _ = parseFigurePoint(k.Grid)
	t.soc, _ = parseFigurePoint(k.SOC)
	t.energy, _ = parseFigurePoint(k.Energy)
	if k.Timezone != "" {
		if loc, err := time.LoadLocation(k.Timezone); err == nil {
			t.loc = loc
		}
	}
	return t
}

// dayOf is the local calendar day of ms, and the Unix ms of its midnight.
func (t *figureTracker) dayOf(ms int64) (int64, int64) {
	if t.dayEnd != 0 && ms >= t.dayStart && ms < t.dayEnd {
		return t.dayNum, t.dayStart
	}
	lt := time.UnixMilli(ms).In(t.loc)
	y, m, d := lt.Date()
	midnight := time.Date(y, m, d, 0, 0, 0, 0, t.loc)
	t.dayNum, t.dayStart, t.dayEnd = int64(y)*400+int64(lt.YearDay()), midnight.UnixMilli(), time.Date(y, m, d+1, 0, 0, 0, 0, t.loc).UnixMilli()
	return t.dayNum, t.dayStart
}

// watches tells whether a hash holds any key figure point: apply asks once per
// batch, not per value.
func (t *figureTracker) watches(key string) bool {
	return key == t.power.key || key == t.pv.key || key == t.grid.key || key == t.soc.key || key == t.energy.key
}

// observe takes one accepted value of the site's hash key.
func (t *figureTracker) observe(key, id string, v PointValue) {
	p := figurePoint{key, id}
	if p != t.power && p != t.pv && p != t.grid && p != t.soc && p != t.energy {
		return
	}
	t.last[p] = v
	if p == t.power && t.energy.key == "" {
		t.integrate(v)
	}
	if p == t.energy {
		t.count(v)
	}
}

// integrate adds the energy of the held power value up to v.TS, then holds v.
func (t *figureTracker) integrate(v PointValue) {
	day, midnight := t.dayOf(v.TS)
	if t.havePower && v.TS > t.powerAt {
		from := t.powerAt
		if day != t.day {
			from = max(from, midnight) // the held value's energy counts into today from midnight on
			t.integral = 0
		}
		t.integral += t.powerVal * float64(min(v.TS-from, MaxPowerHold.Milliseconds())) / 3.6e6
	} else if !t.havePower || day != t.day {
		t.integral = 0
	}
	if !t.havePower || v.TS >= t.powerAt {
		t.day, t.powerAt, t.powerVal, t.havePower = day, v.TS, v.Value, true
	}
}

// count follows the energy counter; a counter that goes back was reset, and what
// it counted before the reset stays in today's figure.
func (t *figureTracker) count(v PointValue) {
	day, _ := t.dayOf(v.TS)
	switch {
	case !t.haveCounter:
		t.counterDay, t.counterBase, t.counterAcc = day, v.Value, 0
	case day != t.counterDay:
		// The last value before midnight is the base of the new day.
		t.counterDay, t.counterBase, t.counterAcc = day, t.counterLast, 0
		if v.Value < t.counterBase {
			t.counterBase = 0
		}
	case v.Value < t.counterLast:
		t.counterAcc += t.counterLast - t.counterBase
		t.counterBase = 0
	}
	t.counterLast, t.haveCounter = v.Value, true
}

// SiteKeyFigures are a site's key figures; a figure the site has not sent is
// absent.
type SiteKeyFigures struct {
	PowerKW        *float64 `json:"power_kw,omitempty" doc:"site power (consumption) in kW"`
	PVKW           *float64 `json:"pv_kw,omitempty" doc:"PV power in kW"`
	GridKW         *float64 `json:"grid_kw,omitempty" doc:"grid power in kW, positive = import"`
	EnergyTodayKWh *float64 `json:"energy_today_kwh,omitempty" doc:"energy since the site's local midnight in kWh"`
	EnergySource   string   `json:"energy_source,omitempty" enum:"counter,integrated" doc:"counter: the increase of an energy counter point; integrated: the power point integrated at the hub"`
	SOC            *float64 `json:"soc,omitempty" doc:"battery state of charge in %"`
	TS             int64    `json:"ts,omitempty" doc:"Unix ms of the newest value the figures come from"`
}

// figures are the key figures at now; live tells whether the held power value
// still counts up to now (the site is online).
func (t *figureTracker) figures(now time.Time, live bool) *SiteKeyFigures {
	out := &SiteKeyFigures{}
	val := func(p figurePoint) *float64 {
		v, ok := t.last[p]
		if !ok || p.key == "" {
			return nil
		}
		out.TS = max(out.TS, v.TS)
		x := v.Value
		return &x
	}
	out.PowerKW, out.PVKW, out.GridKW, out.SOC = val(t.power), val(t.pv), val(t.grid), val(t.soc)
	today, midnight := t.dayOf(now.UnixMilli())
	switch {
	case t.energy.key != "":
		if t.haveCounter {
			e := 0.0
			if t.counterDay == today {
				e = t.counterAcc + t.counterLast - t.counterBase
			} else if t.counterDay < today {
				e = 0 // nothing counted since midnight
			}
			out.EnergyTodayKWh, out.EnergySource = &e, "counter"
		}
	case t.power.key != "" && t.havePower:
		e := 0.0
		if t.day == today {
			e = t.integral
		}
		if live && now.UnixMilli() > t.powerAt {
			from := max(t.powerAt, midnight)
			e += t.powerVal * float64(min(now.UnixMilli()-from, MaxPowerHold.Milliseconds())) / 3.6e6
		}
		out.EnergyTodayKWh, out.EnergySource = &e, "integrated"
	}
	if out.PowerKW == nil && out.PVKW == nil && out.GridKW == nil && out.SOC == nil && out.EnergyTodayKWh == nil {
		return nil
	}
	return out
}
