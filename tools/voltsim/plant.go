package voltsim

import (
	"math"
	"time"
)

// The plant is the physics behind the points: PV follows the sun of the simulation
// clock, batteries follow their setpoints and integrate their power into the state
// of charge, meters see what the PV and batteries do. One step computes the sources
// first (PV, batteries) so that meters in the same step see their new values.

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

	var pvTotal, batteryTotal float64
	for _, ch := range s.order {
		for _, p := range ch.order {
			if p.profile.Kind == ProfilePV {
				s.update(ch, p, s.pvPower(p.profile.Rated, hod))
				pvTotal += p.value
			}
		}
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
				net := pvTotal - batteryTotal
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

// stepBattery applies the battery's command for hours and returns the power it
// actually ran at: nothing beyond full or empty.
func (s *Sim) stepBattery(ch *simChannel, b *battery, hours float64) float64 {
	p := b.command()
	soc := b.soc.value
	if soc >= 100 && p > 0 || soc <= 0 && p < 0 {
		p = 0
	}
	for _, pp := range b.powers {
		if pp.profile.Kind == ProfileBatteryPower {
			s.update(ch, pp, p)
		}
	}
	if b.soc.profile.Kind == ProfileSOC {
		next := soc + p*hours/b.soc.profile.Capacity*100
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

// noise is uniform in ±amp, from the seeded generator so runs repeat.
func (s *Sim) noise(amp float64) float64 {
	return amp * (2*s.rng.Float64() - 1)
}

// hourOfDay is the local time of day of t in hours (its own location).
func hourOfDay(t time.Time) float64 {
	h, m, sec := t.Clock()
	return float64(h) + float64(m)/60 + (float64(sec)+float64(t.Nanosecond())/1e9)/3600
}
