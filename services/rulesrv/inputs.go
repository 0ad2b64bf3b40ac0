package rulesrv

import (
	"fmt"
	"strconv"
	"time"

	"github.com/voltageems/voltage/shared/expression"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/model"
	"github.com/voltageems/voltage/shared/point"
)

// slot is the live value of one input, shared by every rule reading it. It is
// owned by the engine (guarded by engine.mu).
type slot struct {
	ref   expression.Ref
	key   string // value hash (also the pub/sub channel); "" for the clock
	field string
	tsKey string
	qKey  string // "" when the hash family has no quality hash (C/A points)
	clock func(time.Time) float64

	has bool
	v   float64
	ts  int64
	q   point.Quality

	triggers []*ruleRun // rules a change of this input evaluates
}

// slotFor describes where ref lives in Redis.
func slotFor(ref expression.Ref, m *model.Model) (*slot, error) {
	s := &slot{ref: ref}
	if ch, t, id, ok := expression.ParseChannelRef(ref); ok {
		s.key = keyspace.ChannelPoints(ch, t)
		s.field = strconv.FormatUint(uint64(id), 10)
		s.tsKey = keyspace.ChannelTimestamps(ch, t)
		if t == point.Telemetry || t == point.Signal {
			s.qKey = keyspace.ChannelQuality(ch, t)
		}
		return s, nil
	}
	if m != nil {
		if inst := m.InstanceByName(ref.Instance); inst != nil {
			def := inst.Product.MeasurementByName(ref.Point)
			if def == nil {
				return nil, fmt.Errorf("%s: no measurement", ref)
			}
			s.key = keyspace.InstanceMeasurements(inst.ID)
			s.field = strconv.FormatUint(uint64(def.ID), 10)
			s.tsKey = keyspace.InstanceMeasurementTimestamps(inst.ID)
			s.qKey = keyspace.InstanceMeasurementQuality(inst.ID)
			return s, nil
		}
	}
	if ref.Instance == clockInstance && clockFields[ref.Point] != nil {
		s.clock = clockFields[ref.Point]
		return s, nil
	}
	return nil, fmt.Errorf("%s: unknown input", ref)
}

// problem says why the input cannot be trusted at now, "" when it can.
func (s *slot) problem(now time.Time, maxAge time.Duration) string {
	if s.clock != nil {
		return ""
	}
	switch {
	case !s.has:
		return fmt.Sprintf("input %s has no value", s.ref)
	case s.q != point.Good:
		return fmt.Sprintf("input %s is %s", s.ref, s.q)
	case maxAge > 0 && now.UnixMilli()-s.ts > maxAge.Milliseconds():
		return fmt.Sprintf("input %s is %s old (max_age %s)", s.ref, time.Duration(now.UnixMilli()-s.ts)*time.Millisecond, maxAge)
	}
	return ""
}

func (s *slot) value(now time.Time) float64 {
	if s.clock != nil {
		return s.clock(now)
	}
	return s.v
}

// InputView is an input as a rule saw it, for execution records and dry runs.
type InputView struct {
	Value   *float64 `json:"value"`
	TS      int64    `json:"ts,omitempty"`
	Quality string   `json:"quality,omitempty"`
}

func (s *slot) view(now time.Time) InputView {
	if s.clock != nil {
		v := s.clock(now)
		return InputView{Value: &v, TS: now.UnixMilli(), Quality: point.Good.String()}
	}
	if !s.has {
		return InputView{Quality: "missing"}
	}
	v := s.v
	return InputView{Value: &v, TS: s.ts, Quality: s.q.String()}
}
