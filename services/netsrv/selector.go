package netsrv

import (
	"math"
	"slices"
	"strconv"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/statestore"
)

// selector turns change entries into the samples one link forwards: it applies the
// link's selection, names points, and drops changes inside the deadband.
type selector struct {
	rules    []selRule // empty: everything
	names    map[pointRef]string
	deadband float64
	last     map[pointRef]lastSent
}

type selRule struct {
	instance bool
	source   uint32
	types    []string // empty: all
	points   []uint32 // empty: all
}

type lastSent struct {
	v float64
	q string
}

func newSelector(l *LinkConfig) *selector {
	s := &selector{names: map[pointRef]string{}, deadband: l.Deadband, last: map[pointRef]lastSent{}}
	for _, sel := range l.Select {
		r := selRule{points: sel.Points}
		if sel.Instance != nil {
			r.instance, r.source = true, *sel.Instance
		} else if sel.Channel != nil {
			r.source = *sel.Channel
		}
		for _, t := range sel.Types {
			tt, _ := selectionType(r.instance, t) // validated at load
			r.types = append(r.types, tt)
		}
		s.rules = append(s.rules, r)
	}
	for name, target := range l.Aliases {
		if wt, err := parseWriteTarget(target); err == nil && wt.action == "" {
			s.names[wt.ref] = name
		}
	}
	return s
}

func (s *selector) wants(ref pointRef) bool {
	if len(s.rules) == 0 {
		return true
	}
	for _, r := range s.rules {
		if r.instance != ref.Instance || r.source != ref.Source {
			continue
		}
		if len(r.types) > 0 && !slices.Contains(r.types, ref.Type) {
			continue
		}
		if len(r.points) > 0 && !slices.Contains(r.points, ref.Point) {
			continue
		}
		return true
	}
	return false
}

// name is a point's payload name.
func (s *selector) name(ref pointRef) string {
	if n, ok := s.names[ref]; ok {
		return n
	}
	return ref.defaultName()
}

// samples returns the selected points of one change batch, in point id order.
// Entries that are not about a point hash yield nothing.
func (s *selector) samples(key string, m *statestore.Message) []Sample {
	src, ok := keyspace.ParseChangeKey(key)
	if !ok {
		return nil
	}
	kind := KindChannel
	if src.Instance {
		kind = KindInstance
	}
	ids := make([]uint32, 0, len(m.V))
	for id := range m.V {
		n, err := parseID(id)
		if err != nil {
			continue
		}
		ids = append(ids, n)
	}
	slices.Sort(ids)
	out := make([]Sample, 0, len(ids))
	for _, id := range ids {
		ref := pointRef{Instance: src.Instance, Source: src.ID, Type: src.Family, Point: id}
		if !s.wants(ref) {
			continue
		}
		k := strconv.FormatUint(uint64(id), 10)
		out = append(out, Sample{
			Name: s.name(ref), Kind: kind, Source: src.ID, Type: src.Family, Point: id,
			Value: m.V[k], TS: m.PointTS(k), Quality: m.Quality(k).String(),
		})
	}
	return out
}

// pass applies the deadband: it reports whether a sample leaves it (and then
// remembers it as the last value sent). A quality change always passes.
func (s *selector) pass(sm Sample) bool {
	if s.deadband <= 0 {
		return true
	}
	ref := pointRef{Instance: sm.Kind == KindInstance, Source: sm.Source, Type: sm.Type, Point: sm.Point}
	prev, seen := s.last[ref]
	if seen && prev.q == sm.Quality && math.Abs(sm.Value-prev.v) < s.deadband {
		return false
	}
	s.last[ref] = lastSent{v: sm.Value, q: sm.Quality}
	return true
}
