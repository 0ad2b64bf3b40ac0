package voltsim

import (
	"fmt"
	"strconv"
	"time"

	"github.com/voltageems/voltage/shared/point"
)

// This file is the library API tests and the control API drive a Sim with.

// Step advances the simulation clock by dt and recomputes every profile. Tests use
// it with Options.ManualClock instead of waiting.
func (s *Sim) Step(dt time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(max(dt, 0))
}

// Now is the simulation time.
func (s *Sim) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

// Addr is the address channel id listens on, "" for a channel not simulated.
func (s *Sim) Addr(channelID uint32) string {
	if sc, ok := s.chans[channelID]; ok {
		return sc.ep.Addr()
	}
	return ""
}

// ControlAddr is the address of the HTTP control API, "" when it is off.
func (s *Sim) ControlAddr() string {
	if s.control == nil {
		return ""
	}
	return s.control.addr()
}

// Channels lists the simulated channels by id.
func (s *Sim) Channels() []ChannelInfo {
	out := make([]ChannelInfo, 0, len(s.order))
	for _, sc := range s.order {
		out = append(out, ChannelInfo{
			ID: sc.cfg.ID, Name: sc.cfg.Name, Protocol: sc.cfg.Protocol,
			Addr: sc.ep.Addr(), Points: len(sc.order),
		})
	}
	return out
}

// SetValue pins a point to the engineering value v (a fixed profile) and puts it
// on the wire at once. A value the point's wire type cannot hold is an error and
// changes nothing.
func (s *Sim) SetValue(channelID uint32, typ point.Type, id point.ID, v float64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc, p, err := s.lookup(channelID, typ, id)
	if err != nil {
		return err
	}
	oldValue, oldProfile := p.value, p.profile
	p.value = v
	if p.profile.Kind != ProfileBatterySetpoint { // a setpoint stays what the battery follows
		p.profile = Profile{Kind: ProfileFixed, Value: v}
	}
	if err := s.push(sc, p); err != nil {
		p.value, p.profile = oldValue, oldProfile
		return fmt.Errorf("set channel %d point %s: %w", channelID, p.key, err)
	}
	return nil
}

// Value is a point's current engineering value.
func (s *Sim) Value(channelID uint32, typ point.Type, id point.ID) (float64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, p, err := s.lookup(channelID, typ, id)
	if err != nil {
		return 0, err
	}
	return p.value, nil
}

// PointState is a point's value and the profile that drives it.
type PointState struct {
	Channel uint32      `json:"channel"`
	Type    point.Type  `json:"type"`
	Point   point.ID    `json:"point"`
	Name    string      `json:"name"`
	Unit    string      `json:"unit,omitempty"`
	Value   float64     `json:"value"`
	Profile ProfileKind `json:"profile"`
}

// Point returns a point's state.
func (s *Sim) Point(channelID uint32, typ point.Type, id point.ID) (PointState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, p, err := s.lookup(channelID, typ, id)
	if err != nil {
		return PointState{}, err
	}
	return PointState{
		Channel: channelID, Type: typ, Point: id, Name: p.cfg.Name, Unit: p.cfg.Unit,
		Value: p.value, Profile: p.profile.Kind,
	}, nil
}

// Writes lists the points clients wrote on the channel, oldest first (at most the
// last 10,000).
func (s *Sim) Writes(channelID uint32) []Write {
	if sc, ok := s.chans[channelID]; ok {
		return sc.writes.snapshot()
	}
	return nil
}

// ResetWrites forgets the channel's recorded writes.
func (s *Sim) ResetWrites(channelID uint32) {
	if sc, ok := s.chans[channelID]; ok {
		sc.writes.reset()
	}
}

// Requests lists the requests clients sent to the channel, oldest first (at most
// the last 10,000), including those answered with an exception or held by a fault.
func (s *Sim) Requests(channelID uint32) []RequestLog {
	if sc, ok := s.chans[channelID]; ok {
		return sc.requests.snapshot()
	}
	return nil
}

// ResetRequests forgets the channel's recorded requests.
func (s *Sim) ResetRequests(channelID uint32) {
	if sc, ok := s.chans[channelID]; ok {
		sc.requests.reset()
	}
}

// SetFault injects (or with FaultNone clears) a fault on the channel.
func (s *Sim) SetFault(channelID uint32, f Fault) error {
	sc, ok := s.chans[channelID]
	if !ok {
		return fmt.Errorf("channel %d is not simulated", channelID)
	}
	if err := sc.ep.SetFault(f); err != nil {
		return fmt.Errorf("channel %d: %w", channelID, err)
	}
	slave := "all"
	if f.Slave != nil {
		slave = strconv.Itoa(int(*f.Slave))
	}
	s.log.Info("fault set", "channel", channelID, "mode", f.Mode, "slave", slave,
		"exception_code", f.ExceptionCode, "delay", f.Delay)
	return nil
}

// Faults lists the channel's active faults.
func (s *Sim) Faults(channelID uint32) []Fault {
	if sc, ok := s.chans[channelID]; ok {
		return sc.ep.Faults()
	}
	return nil
}

// lookup finds a point. s.mu is held.
func (s *Sim) lookup(channelID uint32, typ point.Type, id point.ID) (*simChannel, *simPoint, error) {
	sc, ok := s.chans[channelID]
	if !ok {
		return nil, nil, fmt.Errorf("channel %d is not simulated", channelID)
	}
	p, ok := sc.points[pointKey{typ, id}]
	if !ok {
		return nil, nil, fmt.Errorf("channel %d has no point %s%d", channelID, typ, id)
	}
	return sc, p, nil
}

// update sets a computed value and puts it on the wire when it changed. s.mu is held.
func (s *Sim) update(sc *simChannel, p *simPoint, v float64) {
	if v == p.value {
		return
	}
	p.value = v
	_ = s.push(sc, p)
}

// push puts p's value on the wire. A value the wire type cannot hold (a profile
// beyond int16, say) keeps the previous registers; it is logged when it starts
// failing, not on every tick. s.mu is held.
func (s *Sim) push(sc *simChannel, p *simPoint) error {
	err := sc.ep.Set(p.key, p.value)
	if err != nil && !p.failing {
		s.log.Warn("value does not fit the point's wire type", "channel", sc.cfg.ID, "point", p.key.String(), "err", err)
	}
	p.failing = err != nil
	return err
}

// deviceWrote records what a client wrote and makes it the points' values: a
// setpoint the battery follows, a command held until written again.
func (s *Sim) deviceWrote(sc *simChannel, ws []deviceWrite) {
	at := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range ws {
		p := sc.points[w.key]
		p.value = w.value
		p.failing = false
		sc.writes.add(Write{Type: w.key.typ, PointID: w.key.id, Value: w.value, At: at})
		s.log.Debug("point written", "channel", sc.cfg.ID, "point", w.key.String(), "value", w.value)
	}
}
