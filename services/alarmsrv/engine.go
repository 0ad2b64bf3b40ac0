package alarmsrv

import (
	"container/heap"
	"math"
	"strconv"
	"time"

	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
)

// cond is one alarm key's condition: a rule, or one level of a limit rule. The
// engine goroutine owns every cond.
type cond struct {
	key      string
	rule     *Rule
	limit    *Limit
	severity string

	raw       bool      // the instantaneous condition, with hysteresis
	state     bool      // the debounced condition (after on/off delay)
	pending   bool      // a delay runs toward raw
	pendingAt time.Time // when it ends
	value     float64   // the last value seen (for messages)
	hasValue  bool

	lastV   float64 // rate: the previous good sample
	lastTS  int64
	hasLast bool

	staleAt    time.Time // stale: when the point counts as without data
	staleTimer bool      // a tStale timer is in the heap
	staleTAt   time.Time // when it fires

	inputs []float64 // expression: the current values of Program.Inputs
	known  []bool

	escTimer bool      // a tEscalate timer is in the heap
	escAt    time.Time // when it fires

	flaps    []time.Time // transitions of state inside the flapping window
	lastFlap time.Time
}

// timer kinds.
const (
	tDelay = iota
	tStale
	tFlapEnd
	tEscalate
	tUnshelve
)

type timerItem struct {
	at   time.Time
	kind int
	c    *cond
	key  string
}

type timerHeap []timerItem

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerItem)) }
func (h *timerHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// evaluator holds the conditions of one rule set and the alarms. It is not safe
// for concurrent use: the engine goroutine calls it.
type evaluator struct {
	rs     *RuleSet
	conds  map[string]*cond // by alarm key
	fields map[string]map[string][]*cond
	comm   map[string][]*cond
	exprIn map[string]map[string][]exprInput
	alarms map[string]*Alarm
	timers timerHeap
	out    []op // transitions not yet written
	now    func() time.Time
}

type exprInput struct {
	c   *cond
	idx int
}

// op is one transition to persist: the alarm's new state (or its removal), the
// event, and whether it is notified.
type op struct {
	event  Event
	del    bool
	notify bool
	audit  bool
}

func newEvaluator(rs *RuleSet, alarms map[string]*Alarm, now func() time.Time) *evaluator {
	e := &evaluator{rs: rs, conds: map[string]*cond{}, fields: map[string]map[string][]*cond{},
		comm: map[string][]*cond{}, exprIn: map[string]map[string][]exprInput{}, alarms: alarms, now: now}
	if e.alarms == nil {
		e.alarms = map[string]*Alarm{}
	}
	add := func(c *cond) {
		e.conds[c.key] = c
		r := c.rule
		switch r.Kind {
		case KindCommLoss:
			e.comm[r.Hash] = append(e.comm[r.Hash], c)
			s := channelHash(r.Channel, point.Signal)
			e.comm[s] = append(e.comm[s], c)
		case KindExpression:
			c.inputs = make([]float64, len(r.Inputs))
			c.known = make([]bool, len(r.Inputs))
			for i, in := range r.Inputs {
				if e.exprIn[in.hash] == nil {
					e.exprIn[in.hash] = map[string][]exprInput{}
				}
				e.exprIn[in.hash][in.field] = append(e.exprIn[in.hash][in.field], exprInput{c, i})
			}
		default:
			if e.fields[r.Hash] == nil {
				e.fields[r.Hash] = map[string][]*cond{}
			}
			e.fields[r.Hash][r.Field] = append(e.fields[r.Hash][r.Field], c)
		}
		// Restored state: an alarm that is active counts as a true condition, so a
		// restart does not raise it again; the resync clears it if it is gone.
		if a := e.alarms[c.key]; a != nil && a.Active {
			c.raw, c.state = true, true
			c.value, c.hasValue = a.Value, true
			if a.Flapping {
				c.lastFlap = now()
				e.schedule(timerItem{at: c.lastFlap.Add(rs.FlapWindow), kind: tFlapEnd, c: c})
			}
		}
		if r.Kind == KindStale {
			c.staleAt = now().Add(r.Timeout)
			e.scheduleStale(c)
		}
	}
	for _, r := range rs.Rules {
		if r.Kind == KindLimit {
			for i := range r.Limits {
				lv := &r.Limits[i]
				add(&cond{key: r.ID + ":" + lv.Level, rule: r, limit: lv, severity: lv.Severity})
			}
			continue
		}
		add(&cond{key: r.ID, rule: r, severity: r.Severity})
	}
	for _, a := range e.alarms {
		e.scheduleAlarm(a)
	}
	return e
}

// hashes are the pub/sub channels the rules need.
func (e *evaluator) hashes() []string {
	set := map[string]bool{}
	for h := range e.fields {
		set[h] = true
	}
	for h := range e.comm {
		set[h] = true
	}
	for h := range e.exprIn {
		set[h] = true
	}
	out := make([]string, 0, len(set))
	for h := range set {
		out = append(out, h)
	}
	return out
}

func (e *evaluator) schedule(t timerItem) { heap.Push(&e.timers, t) }

// scheduleStale keeps one no-data timer per stale condition: a sample only moves
// staleAt, and the timer, when it fires early, sets itself again. So the heap
// holds one entry per rule however often values arrive.
func (e *evaluator) scheduleStale(c *cond) {
	if !c.staleTimer || c.staleAt.Before(c.staleTAt) {
		c.staleTimer, c.staleTAt = true, c.staleAt
		e.schedule(timerItem{at: c.staleAt, kind: tStale, c: c})
	}
}

// next is when the earliest timer is due (zero when none).
func (e *evaluator) next() time.Time {
	if len(e.timers) == 0 {
		return time.Time{}
	}
	return e.timers[0].at
}

// fire runs every timer due at now.
func (e *evaluator) fire(now time.Time) {
	for len(e.timers) > 0 && !e.timers[0].at.After(now) {
		t := heap.Pop(&e.timers).(timerItem)
		switch t.kind {
		case tDelay:
			c := t.c
			if c.pending && !now.Before(c.pendingAt) {
				c.pending = false
				if c.raw != c.state {
					e.apply(c, c.raw, now)
				}
			}
		case tStale:
			c := t.c
			if !c.staleTimer || !t.at.Equal(c.staleTAt) {
				break // superseded by an earlier timer
			}
			c.staleTimer = false
			if now.Before(c.staleAt) {
				e.scheduleStale(c) // fresh data moved the deadline on
			} else {
				e.setRaw(c, true, now)
			}
		case tFlapEnd:
			e.flapEnd(t.c, now)
		case tEscalate:
			if c := e.conds[t.key]; c != nil && c.escTimer && t.at.Equal(c.escAt) {
				c.escTimer = false
				e.escalate(t.key, now)
			}
		case tUnshelve:
			if a := e.alarms[t.key]; a != nil && a.Shelved && now.UnixMilli() >= a.ShelvedUntil {
				e.unshelve(a, SystemUser, "shelve time over", now)
			}
		}
	}
}

// sample feeds one value of a field of a hash.
func (e *evaluator) sample(hash, field string, v float64, q point.Quality, ts int64, now time.Time) {
	for _, c := range e.fields[hash][field] {
		e.evaluate(c, v, q, ts, now)
	}
	for _, in := range e.exprIn[hash][field] {
		c := in.c
		if q != point.Good {
			c.known[in.idx] = false
			continue
		}
		c.inputs[in.idx], c.known[in.idx] = v, true
		e.evalExpression(c, now)
	}
}

// message feeds a change message of a hash.
func (e *evaluator) message(hash string, m *statestore.Message, now time.Time) {
	for id, v := range m.V {
		e.sample(hash, id, v, m.Quality(id), m.PointTS(id), now)
	}
	if cs := e.comm[hash]; len(cs) > 0 {
		lost, good := false, false
		for id := range m.V {
			switch m.Quality(id) {
			case point.CommLost:
				lost = true
			case point.Good:
				good = true
			}
		}
		for _, c := range cs {
			if lost {
				e.setRaw(c, true, now)
			} else if good {
				e.setRaw(c, false, now)
			}
		}
	}
}

// commState sets a comm_loss rule's condition from the channel status (resync).
func (e *evaluator) commState(hash string, down bool, now time.Time) {
	for _, c := range e.comm[hash] {
		e.setRaw(c, down, now)
	}
}

func (e *evaluator) evaluate(c *cond, v float64, q point.Quality, ts int64, now time.Time) {
	r := c.rule
	if q == point.Good {
		c.value, c.hasValue = v, true
	}
	switch r.Kind {
	case KindLimit:
		if q != point.Good || math.IsNaN(v) {
			return // a value that cannot be trusted neither raises nor clears
		}
		lim := c.limit
		raw := c.raw
		if lim.High {
			if v > lim.Value {
				raw = true
			} else if v <= lim.Value-r.Deadband {
				raw = false
			}
		} else {
			if v < lim.Value {
				raw = true
			} else if v >= lim.Value+r.Deadband {
				raw = false
			}
		}
		e.setRaw(c, raw, now)
	case KindRate:
		if q != point.Good {
			c.hasLast = false
			return
		}
		if c.hasLast && ts > c.lastTS {
			rate := math.Abs(v-c.lastV) / (float64(ts-c.lastTS) / 1000)
			raw := c.raw
			if rate > r.Rate {
				raw = true
			} else if rate <= r.Rate-r.Deadband {
				raw = false
			}
			c.value = rate
			e.setRaw(c, raw, now)
		}
		if ts >= c.lastTS || !c.hasLast {
			c.lastV, c.lastTS, c.hasLast = v, ts, true
		}
	case KindDigital:
		if q != point.Good {
			return
		}
		e.setRaw(c, (v != 0) == (r.State != 0), now)
	case KindStale:
		if q != point.Good {
			e.setRaw(c, true, now)
			return
		}
		// Fresh data: the no-data timer starts again from the sample's time.
		at := time.UnixMilli(ts).Add(r.Timeout)
		if ts <= 0 || at.After(now.Add(r.Timeout)) {
			at = now.Add(r.Timeout)
		}
		if !at.After(now) {
			e.setRaw(c, true, now) // an old sample (resync after a long pause)
			return
		}
		c.staleAt = at
		e.scheduleStale(c)
		e.setRaw(c, false, now)
	}
}

func (e *evaluator) evalExpression(c *cond, now time.Time) {
	for _, k := range c.known {
		if !k {
			return
		}
	}
	v, err := c.rule.Program.Eval(now.UnixMilli(), c.inputs)
	if err != nil {
		return
	}
	c.value, c.hasValue = v, true
	e.setRaw(c, v != 0, now)
}

// setRaw applies the delays: a change of the condition takes effect after the
// on-delay (raise) or off-delay (clear), and only if it still holds then.
func (e *evaluator) setRaw(c *cond, raw bool, now time.Time) {
	c.raw = raw
	if raw == c.state {
		c.pending = false
		return
	}
	delay := c.rule.OffDelay
	if raw {
		delay = c.rule.OnDelay
	}
	if delay <= 0 {
		c.pending = false
		e.apply(c, raw, now)
		return
	}
	if !c.pending {
		c.pending, c.pendingAt = true, now.Add(delay)
		e.schedule(timerItem{at: c.pendingAt, kind: tDelay, c: c})
	}
}

// apply is a transition of the debounced condition.
func (e *evaluator) apply(c *cond, on bool, now time.Time) {
	c.state = on
	a := e.alarms[c.key]
	if n := e.rs.FlapCount; n > 0 {
		cut := now.Add(-e.rs.FlapWindow)
		k := 0
		for _, t := range c.flaps {
			if t.After(cut) {
				c.flaps[k] = t
				k++
			}
		}
		c.flaps = append(c.flaps[:k], now)
		c.lastFlap = now
		if a != nil && a.Flapping {
			e.schedule(timerItem{at: now.Add(e.rs.FlapWindow), kind: tFlapEnd, c: c})
			return // held active and silent while it flaps
		}
		if len(c.flaps) >= n {
			e.startFlapping(c, now)
			return
		}
	}
	if on {
		e.raise(c, now, true)
	} else if a != nil && a.Active {
		e.clear(a, c, now)
	}
}

func (e *evaluator) fill(a *Alarm, c *cond, now time.Time) {
	r := c.rule
	a.Rule, a.Name, a.Kind, a.Instance, a.Source, a.Unit = r.ID, r.Name, r.Kind, r.Instance, r.Source, r.Unit
	if c.limit != nil {
		a.Level = c.limit.Level
		lim := c.limit.Value
		a.Limit = &lim
	}
	if c.hasValue {
		a.Value = c.value
	}
	a.UpdatedAt = now.UnixMilli()
	a.Message = render(r.Message, a)
}

// raise makes the alarm active: a new alarm, or a new occurrence of one that
// cleared (unacknowledged again).
func (e *evaluator) raise(c *cond, now time.Time, notify bool) *Alarm {
	a := e.alarms[c.key]
	ms := now.UnixMilli()
	if a == nil {
		a = &Alarm{Key: c.key}
		e.alarms[c.key] = a
	}
	if a.Active {
		return a
	}
	a.Occurrence++
	a.ID = c.key + "@" + strconv.FormatInt(ms, 10)
	a.Active, a.Acked, a.Escalated = true, false, false
	a.AckedAt, a.AckedBy, a.AckComment, a.ClearedAt, a.EscalatedAt = 0, "", "", 0, 0
	a.Severity = c.severity
	a.RaisedAt, a.EscalateFrom = ms, ms
	e.fill(a, c, now)
	e.emit(a, EventRaised, SystemUser, "", notify && !a.Shelved, false, now)
	e.scheduleAlarm(a)
	return a
}

func (e *evaluator) clear(a *Alarm, c *cond, now time.Time) {
	a.Active = false
	a.ClearedAt = now.UnixMilli()
	e.fill(a, c, now)
	e.emit(a, EventCleared, SystemUser, "", !a.Shelved, false, now)
}

func (e *evaluator) startFlapping(c *cond, now time.Time) {
	a := e.alarms[c.key]
	if a == nil || !a.Active {
		a = e.raise(c, now, false)
	}
	a.Flapping = true
	e.fill(a, c, now)
	e.emit(a, EventFlapping, SystemUser, "", !a.Shelved, false, now)
	e.schedule(timerItem{at: now.Add(e.rs.FlapWindow), kind: tFlapEnd, c: c})
}

// flapEnd ends flapping once the condition kept still for a whole window, and
// then lets the alarm follow the condition again.
func (e *evaluator) flapEnd(c *cond, now time.Time) {
	a := e.alarms[c.key]
	if a == nil || !a.Flapping || now.Before(c.lastFlap.Add(e.rs.FlapWindow)) {
		return
	}
	a.Flapping = false
	c.flaps = c.flaps[:0]
	e.fill(a, c, now)
	e.emit(a, EventFlappingEnded, SystemUser, "", false, false, now)
	if !c.state && a.Active {
		e.clear(a, c, now)
	}
}

func (e *evaluator) escalate(key string, now time.Time) {
	a := e.alarms[key]
	c := e.conds[key]
	if a == nil || c == nil || a.Acked || a.Escalated || a.Shelved || !a.Active {
		return
	}
	after := c.rule.EscalateAfter
	if after <= 0 {
		return
	}
	if now.UnixMilli() < a.EscalateFrom+after.Milliseconds() {
		e.scheduleAlarm(a) // the clock restarted (a new occurrence, an unshelve)
		return
	}
	a.Escalated, a.EscalatedAt = true, now.UnixMilli()
	if c.rule.EscalateTo != "" {
		a.Severity = c.rule.EscalateTo
	} else {
		a.Severity = escalated(a.Severity)
	}
	a.UpdatedAt = now.UnixMilli()
	e.emit(a, EventEscalated, SystemUser, "unacknowledged for "+after.String(), true, false, now)
}

// scheduleAlarm sets the timers an alarm's state needs (escalation, unshelve).
func (e *evaluator) scheduleAlarm(a *Alarm) {
	if a.Shelved {
		e.schedule(timerItem{at: time.UnixMilli(a.ShelvedUntil), kind: tUnshelve, key: a.Key})
	}
	if c := e.conds[a.Key]; c != nil && c.rule.EscalateAfter > 0 && a.Active && !a.Acked && !a.Escalated {
		// One escalation timer per alarm: a later deadline is found when the
		// earlier timer fires, so frequent raises do not fill the heap.
		at := time.UnixMilli(a.EscalateFrom).Add(c.rule.EscalateAfter)
		if !c.escTimer || at.Before(c.escAt) {
			c.escTimer, c.escAt = true, at
			e.schedule(timerItem{at: at, kind: tEscalate, key: a.Key})
		}
	}
}

// emit records a transition: the event, and the alarm's new state (removed
// when it is done).
func (e *evaluator) emit(a *Alarm, typ, user, comment string, notify, audit bool, now time.Time) {
	o := op{event: Event{Type: typ, Key: a.Key, TS: now.UnixMilli(), User: user, Comment: comment, Alarm: *a},
		notify: notify, audit: audit}
	if a.done() {
		o.del = true
		delete(e.alarms, a.Key)
	}
	e.out = append(e.out, o)
}

// ack acknowledges an alarm (operator).
func (e *evaluator) ack(key, user, comment string, now time.Time) (*Alarm, error) {
	a := e.alarms[key]
	if a == nil {
		return nil, errNotFound
	}
	if a.Acked {
		return nil, errConflict("alarm %s is already acknowledged (by %s)", key, a.AckedBy)
	}
	a.Acked, a.AckedAt, a.AckedBy, a.AckComment = true, now.UnixMilli(), user, comment
	a.UpdatedAt = now.UnixMilli()
	cp := *a
	e.emit(a, EventAcknowledged, user, comment, false, true, now)
	return &cp, nil
}

// shelve hides an alarm's notifications for d (engineer); it comes back by itself.
func (e *evaluator) shelve(key, user, comment string, d time.Duration, now time.Time) (*Alarm, error) {
	a := e.alarms[key]
	if a == nil {
		return nil, errNotFound
	}
	a.Shelved, a.ShelvedBy, a.ShelvedUntil = true, user, now.Add(d).UnixMilli()
	a.UpdatedAt = now.UnixMilli()
	cp := *a
	e.emit(a, EventShelved, user, comment, false, true, now)
	e.schedule(timerItem{at: now.Add(d), kind: tUnshelve, key: key})
	return &cp, nil
}

func (e *evaluator) unshelve(a *Alarm, user, comment string, now time.Time) *Alarm {
	a.Shelved, a.ShelvedBy, a.ShelvedUntil = false, "", 0
	a.UpdatedAt, a.EscalateFrom = now.UnixMilli(), now.UnixMilli()
	cp := *a
	e.emit(a, EventUnshelved, user, comment, false, user != SystemUser, now)
	e.scheduleAlarm(a)
	return &cp
}

// dropRemoved removes alarms whose rule no longer exists (after a reload).
func (e *evaluator) dropRemoved(now time.Time) {
	for key, a := range e.alarms {
		if e.conds[key] == nil {
			a.UpdatedAt = now.UnixMilli()
			e.out = append(e.out, op{event: Event{Type: EventRemoved, Key: key, TS: now.UnixMilli(), User: SystemUser,
				Comment: "its rule was removed", Alarm: *a}, del: true})
			delete(e.alarms, key)
		}
	}
}

func (e *evaluator) take() []op {
	out := e.out
	e.out = nil
	return out
}
