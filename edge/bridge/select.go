package bridge

import (
	"math"
	"slices"
	"strconv"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/subjects"
)

// rule is one selection as the selector applies it.
type rule struct {
	points map[string]bool // nil = every point
	filter Filter
}

// route is what the selector decided for one Redis hash, cached by its key.
type route struct {
	subject string
	rules   []rule // the selections matching the hash, in file order; empty = drop it
	// whole: the first rule takes every point unfiltered, so the batch goes up as
	// it is, without looking at its points.
	whole bool
}

// lastSent is what was last sent of one point, for deadband and sampling.
type lastSent struct {
	v  float64
	ts int64
	q  string
}

type pointKey struct{ hash, id string }

// selector applies the uplink selection to change batches. It is owned by the
// one goroutine that reads voltage:changes.
type selector struct {
	site   string
	up     Uplink
	routes map[string]*route
	last   map[pointKey]lastSent
}

func newSelector(site string, up Uplink) *selector {
	return &selector{site: site, up: up, routes: map[string]*route{}, last: map[pointKey]lastSent{}}
}

// route resolves the subject and the selections of a voltage:changes key.
func (s *selector) route(key string) *route {
	if r, ok := s.routes[key]; ok {
		return r
	}
	r := &route{}
	src, ok := keyspace.ParseChangeKey(key)
	switch {
	case !ok:
	case src.Instance && src.Family == "M":
		r.subject = subjects.InstanceUp(s.site, src.ID)
		for _, sel := range s.up.Instances {
			if len(sel.Instances) == 0 || slices.Contains(sel.Instances, src.ID) {
				r.rules = append(r.rules, rule{points: set(sel.Points), filter: sel.Filter})
			}
		}
	case !src.Instance && (src.Family == "T" || src.Family == "S"):
		t := point.Type(src.Family[0])
		r.subject = subjects.ChannelUp(s.site, src.ID, t)
		for _, sel := range s.up.Channels {
			if len(sel.Channels) > 0 && !slices.Contains(sel.Channels, src.ID) || !hasType(sel.Types, t) {
				continue
			}
			r.rules = append(r.rules, rule{points: set(sel.Points), filter: sel.Filter})
		}
	}
	r.whole = len(r.rules) > 0 && r.rules[0].points == nil && !r.rules[0].filter.active()
	if len(s.routes) < 100_000 { // keys are a site's hashes; the bound only guards against junk
		s.routes[key] = r
	}
	return r
}

func hasType(types []string, t point.Type) bool {
	for _, name := range types {
		if pt, err := point.ParseType(name); err == nil && pt == t {
			return true
		}
	}
	return false
}

// set is the point ids as the change messages write them; nil for none.
func set(ids []uint32) map[string]bool {
	if len(ids) == 0 {
		return nil
	}
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[strconv.FormatUint(uint64(id), 10)] = true
	}
	return m
}

// apply returns the subject and the part of m that goes up, with ok false when
// nothing of it does. It updates the deadband and sampling state as if what it
// returns was sent.
func (s *selector) apply(key string, m *statestore.Message) (subject string, out *statestore.Message, ok bool) {
	r := s.route(key)
	if len(r.rules) == 0 || len(m.V) == 0 {
		return "", nil, false
	}
	if r.whole {
		return r.subject, m, true
	}
	kept := statestore.Message{TS: m.TS, V: make(map[string]float64, len(m.V))}
	for id, v := range m.V {
		ru := r.pick(id)
		if ru == nil {
			continue
		}
		ts, q := m.PointTS(id), m.Q[id]
		if ru.filter.active() && !s.pass(pointKey{key, id}, ru.filter, v, ts, q) {
			continue
		}
		kept.V[id] = v
		if t, ok := m.T[id]; ok {
			if kept.T == nil {
				kept.T = map[string]int64{}
			}
			kept.T[id] = t
		}
		if q != "" {
			if kept.Q == nil {
				kept.Q = map[string]string{}
			}
			kept.Q[id] = q
		}
	}
	if len(kept.V) == 0 {
		return "", nil, false
	}
	return r.subject, &kept, true
}

// pick is the first rule that takes point id, or nil.
func (r *route) pick(id string) *rule {
	for i := range r.rules {
		if r.rules[i].points == nil || r.rules[i].points[id] {
			return &r.rules[i]
		}
	}
	return nil
}

// pass decides one filtered point and records it when it passes.
func (s *selector) pass(k pointKey, f Filter, v float64, ts int64, q string) bool {
	last, seen := s.last[k]
	send := !seen || q != last.q ||
		(math.Abs(v-last.v) >= f.Deadband && (f.SampleMS == 0 || ts-last.ts >= f.SampleMS))
	if send {
		s.last[k] = lastSent{v: v, ts: ts, q: q}
	}
	return send
}
