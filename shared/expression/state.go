package expression

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// MaxIntegrationGap is the longest interval integrate bridges: after a longer
// pause (a restart, a link outage) the integral continues from the next sample
// instead of assuming the old value held all along.
const MaxIntegrationGap int64 = 5 * 60 * 1000

// maxWindowSamples bounds the samples a moving average keeps.
const maxWindowSamples = 4096

// slotState is the state of one stateful call site. It is serialised as JSON.
type slotState struct {
	Kind   string    `json:"kind"`
	Has    bool      `json:"has,omitempty"`
	Acc    float64   `json:"acc,omitempty"`
	LastX  float64   `json:"x,omitempty"`
	LastTS int64     `json:"ts,omitempty"`
	WinTS  []int64   `json:"wts,omitempty"`
	WinX   []float64 `json:"wx,omitempty"`
}

// ErrNoPrevious is returned by rate on its first evaluation.
var ErrNoPrevious = errors.New("rate: no previous sample yet")

func integrate(s *slotState, now int64, a []float64) (float64, error) {
	x := a[0]
	if s.Has && now > s.LastTS && now-s.LastTS <= MaxIntegrationGap {
		s.Acc += (s.LastX + x) / 2 * float64(now-s.LastTS) / 3_600_000
	}
	if !s.Has || now >= s.LastTS {
		s.Has, s.LastX, s.LastTS = true, x, now
	}
	return s.Acc, nil
}

func movingAvg(s *slotState, now int64, a []float64) (float64, error) {
	x, window := a[0], int64(a[1]*1000)
	if window <= 0 {
		return math.NaN(), fmt.Errorf("moving_avg: window %g s is not positive", a[1])
	}
	s.WinTS = append(s.WinTS, now)
	s.WinX = append(s.WinX, x)
	drop := 0
	for drop < len(s.WinTS)-1 && (s.WinTS[drop] <= now-window || len(s.WinTS)-drop > maxWindowSamples) {
		drop++
	}
	if drop > 0 {
		s.WinTS = append(s.WinTS[:0], s.WinTS[drop:]...)
		s.WinX = append(s.WinX[:0], s.WinX[drop:]...)
	}
	sum := 0.0
	for _, v := range s.WinX {
		sum += v
	}
	return sum / float64(len(s.WinX)), nil
}

func rate(s *slotState, now int64, a []float64) (float64, error) {
	x := a[0]
	defer func() { s.Has, s.LastX, s.LastTS = true, x, now }()
	if !s.Has || now <= s.LastTS {
		if s.Has && now == s.LastTS { // same instant: keep the last rate
			return s.Acc, nil
		}
		return math.NaN(), ErrNoPrevious
	}
	s.Acc = (x - s.LastX) / (float64(now-s.LastTS) / 1000)
	return s.Acc, nil
}

func deadband(s *slotState, _ int64, a []float64) (float64, error) {
	x, band := a[0], math.Abs(a[1])
	if !s.Has || math.Abs(x-s.LastX) >= band {
		s.Has, s.LastX = true, x
	}
	return s.LastX, nil
}

// savedState is the serialised form of a program's state.
type savedState struct {
	Slots []*slotState `json:"slots"`
}

// State serialises the state of the program's stateful functions; nil for a
// stateless program.
func (p *Program) State() ([]byte, error) {
	if !p.Stateful() {
		return nil, nil
	}
	return json.Marshal(savedState{Slots: p.calls.slots})
}

// Restore loads state saved by State. State of a program whose stateful calls
// differ (the expression changed) is refused with an error and nothing changes.
func (p *Program) Restore(b []byte) error {
	var s savedState
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("restore state: %w", err)
	}
	if len(s.Slots) != len(p.calls.slots) {
		return fmt.Errorf("restore state: %d stateful calls saved, the expression has %d", len(s.Slots), len(p.calls.slots))
	}
	for i, sl := range s.Slots {
		if sl == nil || sl.Kind != p.calls.slots[i].Kind {
			return fmt.Errorf("restore state: call %d was %v, now %s", i+1, kindOf(sl), p.calls.slots[i].Kind)
		}
		if len(sl.WinTS) != len(sl.WinX) {
			return fmt.Errorf("restore state: call %d has a broken window", i+1)
		}
	}
	for i, sl := range s.Slots {
		*p.calls.slots[i] = *sl
	}
	return nil
}

func kindOf(s *slotState) string {
	if s == nil {
		return "nothing"
	}
	return s.Kind
}
