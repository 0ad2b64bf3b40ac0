package voltsim

import (
	"math"
	"time"
)

// The plant is the physics behind the points, with the signs of the point tables:
//
//   - PV follows the sun of the simulation clock, clamped by its channel's power
//     limit (pv_limit, % of rated);
//   - the site consumes: load points follow a daily curve, and so does the site
//     load no point measures (Options.SiteLoad);
//   - batteries follow their setpoints, positive = discharge: discharging lowers
//     the state of charge, charging raises it;
//   - meters read load − PV − battery discharge: positive = import from the grid,
//     negative = export.
//
// One step computes the sources first (PV, load, batteries) so that meters in the
// same step see their new values.

// battery is the storage model of a channel with a state-of-charge point.
type battery struct {
	soc      *simPoint
	setpoint *simPoint   // the power setpoint the battery follows; nil if none
	powers   []*simPoint // telemetry points showing the battery's power
}

// command is the power the battery is asked for: the setpoint if the channel has
// one, else a power point that was pinned to a value (SetValue), else nothing.
func (b *battery) command() float64 {
	if b.setpoint != nil {
		return b.setpoint.value
	}
	for _, p := range b.powers {
		if p.profile.Kind == ProfileFixed {
			return p.value
		}
	}
	return 0
}

// advance moves the clock by dt and recomputes every dynamic point. s.mu is held.
func (s *Sim) advance(dt time.Duration) {
	s.now = s.now.Add(dt)
	hours := dt.Hours()
	hod := hourOfDay(s.now)

	var pvTotal, loadTotal, batteryTotal float64
	for _, ch := range s.order {
		for _, p := range ch.order {
			switch p.profile.Kind {
			case ProfilePV:
				v := s.pvPower(p.profile.Rated, hod)
				if ch.pvLimit != nil {
					v = min(v, min(max(ch.pvLimit.value, 0), 100)/100*p.profile.Rated)
				}
				s.update(ch, p, v)
				pvTotal += p.value
			case ProfileLoad:
				s.update(ch, p, s.loadPower(p.profile.Rated, hod))
				loadTotal += p.value
			}
		}
	}
	if s.siteLoad > 0 {
		loadTotal += s.loadPower(s.siteLoad, hod)
	}
	for _, ch := range s.order {
		if ch.battery != nil {
			batteryTotal += s.stepBattery(ch, ch.battery, hours)
		}
	}
	for _, ch := range s.order {
		for _, p := range ch.order {
			prof := p.profile
			switch prof.Kind {
			case ProfileMeterPower:
				net := loadTotal - pvTotal - batteryTotal
				s.update(ch, p, net+s.noise(0.01*math.Abs(net)+0.1))
			case ProfileVoltage:
				s.update(ch, p, prof.Value+s.noise(0.005*prof.Value))
			case ProfileFrequency:
				s.update(ch, p, prof.Value+s.noise(0.02))
			case ProfileTemperature:
				// Warmest mid-afternoon, coolest before dawn.
				daily := 5 * math.Sin(2*math.Pi*(hod-9)/24)
				s.update(ch, p, prof.Value+daily+s.noise(0.1))
			}
		}
	}
}

// stepBattery applies the battery's command (positive = discharge) for hours and
// returns the power it actually ran at: no discharge when empty, no charge when
// full.
func (s *Sim) stepBattery(ch *simChannel, b *battery, hours float64) float64 {
	p := b.command()
	soc := b.soc.value
	if soc <= 0 && p > 0 || soc >= 100 && p < 0 {
		p = 0
	}
	for _, pp := range b.powers {
		if pp.profile.Kind == ProfileBatteryPower {
			s.update(ch, pp, p)
		}
	}
	if b.soc.profile.Kind == ProfileSOC {
		next := soc - p*hours/b.soc.profile.Capacity*100
		s.update(ch, b.soc, min(max(next, 0), 100))
	}
	return p
}

// pvPower is a clear-sky day: a half sine from 06:00 to 18:00 peaking at rated at
// noon, with ±2 % noise, and nothing at night.
func (s *Sim) pvPower(rated, hod float64) float64 {
	if hod <= 6 || hod >= 18 {
		return 0
	}
	v := rated * math.Sin(math.Pi*(hod-6)/12) * (1 + s.noise(0.02))
	return max(v, 0)
}

// The daily load curve: a base through the night, rising to the peak in the early
// afternoon.
const (
	defaultSiteLoad = 80.0 // kW peak of the unmetered site load
	loadBase        = 0.4  // share of the peak consumed at night
	loadPeakHour    = 13.0
	loadWidth       = 4.5 // hours: ~62 % of the peak at 17:30, ~97 % at 12:00
)

// loadPower is a commercial site's consumption: loadBase × rated at night, a bell
// around 13:00 reaching rated, with ±2 % noise.
func (s *Sim) loadPower(rated, hod float64) float64 {
	d := (hod - loadPeakHour) / loadWidth
	shape := loadBase + (1-loadBase)*math.Exp(-d*d)
	return max(rated*shape*(1+s.noise(0.02)), 0)
}

// siteLoadPeak resolves Options.SiteLoad: 0 is the default load unless a point of
// the site measures the load itself; negative is none.
func siteLoadPeak(opt float64, chans []*simChannel) float64 {
	switch {
	case opt > 0:
		return opt
	case opt < 0:
		return 0
	}
	for _, ch := range chans {
		for _, p := range ch.order {
			if p.profile.Kind == ProfileLoad {
				return 0
			}
		}
	}
	return defaultSiteLoad
}

// findPVLimit is the channel's PV power limit point: the first with the pv_limit
// profile. It stays the limit when SetValue later pins it.
func findPVLimit(sc *simChannel) *simPoint {
	for _, p := range sc.order {
		if p.profile.Kind == ProfilePVLimit {
			return p
		}
	}
	return nil
}

// noise is uniform in ±amp, from the seeded generator so runs repeat.
func (s *Sim) noise(amp float64) float64 {
	return amp * (2*s.rng.Float64() - 1)
}

// hourOfDay is the local time of day of t in hours (its own location).
func hourOfDay(t time.Time) float64 {
	h, m, sec := t.Clock()
	return float64(h) + float64(m)/60 + (float64(sec)+float64(t.Nanosecond())/1e9)/3600
}
