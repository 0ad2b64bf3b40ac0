package rulesrv

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/expression"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
)

// Results of one evaluation, as recorded in rule:{id}:exec.
const (
	ResultFired    = "fired"    // the rule fired: its actions run
	ResultReset    = "reset"    // a rule that fired re-armed (its on_reset actions run)
	ResultPending  = "pending"  // the condition holds, waiting for its for: duration
	ResultBlocked  = "blocked"  // an input is missing, stale or not good: nothing happens
	ResultIdle     = "idle"     // the condition does not hold
	ResultActive   = "active"   // fired before and the condition still holds (edge: no repeat)
	ResultCooldown = "cooldown" // it would fire but its cooldown has not passed
	ResultDisabled = "disabled"
	ResultError    = "error" // the expression failed (division by zero...)
)

// ruleRun is a rule with its runtime state, owned by the engine (under engine.mu).
type ruleRun struct {
	r       *Rule
	enabled bool
	inputs  []*slot                         // every input of the rule, once
	progIn  map[*expression.Program][]*slot // inputs of each program, in Eval order
	values  map[*Action]*expression.Program // value programs
	st      RuleState
	timers  map[string]*time.Timer          // by cause: hold, cooldown, tick
	last    struct{ result, reason string } // last recorded, to record changes only
}

// RuleState is what a rule remembers between evaluations (recorded in
// rule:{id}:exec as RecordedState).
type RuleState struct {
	Active       bool  `json:"active"`        // fired and not reset
	PendingSince int64 `json:"pending_since"` // Unix ms the condition started to hold (for:), 0 = not pending
	ResetSince   int64 `json:"reset_since"`   // Unix ms the reset started to hold (reset_for:), 0 = not pending
	LastFired    int64 `json:"last_fired"`    // Unix ms
}

// Evaluation is the outcome of evaluating one rule once (or of a dry run).
type Evaluation struct {
	Rule    string               `json:"rule"`
	TS      int64                `json:"ts"`
	Cause   string               `json:"cause"`
	Result  string               `json:"result"`
	Reason  string               `json:"reason,omitempty"`
	Path    []string             `json:"path"`
	Inputs  map[string]InputView `json:"inputs"`
	Actions []PlannedAction      `json:"actions,omitempty"`
	DryRun  bool                 `json:"dry_run,omitempty"`
}

// PlannedAction is an action a firing runs, with its value computed.
type PlannedAction struct {
	Kind   ActionKind `json:"kind"`
	Target string     `json:"target,omitempty"`
	Value  *float64   `json:"value,omitempty"`
	Skip   string     `json:"skip,omitempty"` // why it does not run (a conflict lost)
	action *Action
}

// engine evaluates one rule set. A reload builds a new engine and hands it the
// states of the rules that did not change.
type engine struct {
	rules    []*ruleRun
	byID     map[string]*ruleRun
	slots    []*slot
	byKey    map[string]map[string]*slot
	channels []string // pub/sub channels of the input hashes

	rdb     redis.UniversalClient
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics
	exec    *executor
	rec     *recorder
	arb     *arbiter

	subscribed atomic.Bool
	synced     atomic.Bool
	firstSync  chan struct{} // closed when the inputs were read for the first time
	syncOnce   sync.Once

	mu      sync.Mutex // guards rules' state, slots and programs
	dueMu   sync.Mutex
	due     map[*ruleRun]string
	wake    chan struct{}
	stopped atomic.Bool
}

func newEngine(rs *Rules, rdb redis.UniversalClient, log *slog.Logger, now func() time.Time, mt *metrics, ex *executor, rec *recorder, arb *arbiter) (*engine, error) {
	e := &engine{firstSync: make(chan struct{}), byID: map[string]*ruleRun{}, byKey: map[string]map[string]*slot{}, rdb: rdb, log: log, now: now,
		metrics: mt, exec: ex, rec: rec, arb: arb, due: map[*ruleRun]string{}, wake: make(chan struct{}, 1)}
	slots := map[expression.Ref]*slot{}
	getSlot := func(ref expression.Ref) (*slot, error) {
		if s := slots[ref]; s != nil {
			return s, nil
		}
		s, err := slotFor(ref, rs.Model)
		if err != nil {
			return nil, err
		}
		slots[ref] = s
		e.slots = append(e.slots, s)
		if s.key != "" {
			if e.byKey[s.key] == nil {
				e.byKey[s.key] = map[string]*slot{}
				e.channels = append(e.channels, s.key)
			}
			e.byKey[s.key][s.field] = s
		}
		return s, nil
	}
	for _, r := range rs.List {
		rr := &ruleRun{r: r, enabled: r.Enabled, progIn: map[*expression.Program][]*slot{}, values: map[*Action]*expression.Program{}, timers: map[string]*time.Timer{}}
		seen := map[*slot]bool{}
		for _, p := range r.programs() {
			ins := make([]*slot, 0, len(p.Inputs()))
			for _, ref := range p.Inputs() {
				s, err := getSlot(ref)
				if err != nil {
					return nil, fmt.Errorf("rule %s: %w", r.ID, err)
				}
				ins = append(ins, s)
				if !seen[s] {
					seen[s] = true
					rr.inputs = append(rr.inputs, s)
					if s.key != "" && (r.OnChange == nil || r.OnChange[ref]) && r.Cron == nil {
						s.triggers = append(s.triggers, rr)
					}
				}
			}
			rr.progIn[p] = ins
		}
		for _, a := range append(slices.Clone(r.Actions), r.OnReset...) {
			if a.Value.Program != nil {
				rr.values[a] = a.Value.Program
			}
		}
		e.rules = append(e.rules, rr)
		e.byID[r.ID] = rr
	}
	slices.Sort(e.channels)
	return e, nil
}

// adopt takes over the state of the unchanged rules of a previous engine.
func (e *engine) adopt(old *engine) {
	if old == nil {
		return
	}
	old.mu.Lock()
	defer old.mu.Unlock()
	for _, rr := range e.rules {
		if o := old.byID[rr.r.ID]; o != nil && o.r.Fingerprint == rr.r.Fingerprint {
			rr.st = o.st
			rr.st.PendingSince, rr.st.ResetSince = 0, 0
			rr.last = o.last
		}
	}
}

// run evaluates until ctx is done.
func (e *engine) run(ctx context.Context) {
	queue := make(chan queued, queueSize)
	var wg sync.WaitGroup
	wg.Go(func() { e.subscribe(ctx, queue) })
	e.mu.Lock()
	now := e.now()
	for _, rr := range e.rules {
		e.scheduleTick(rr, now)
	}
	e.mu.Unlock()
	e.process(ctx, queue)
	e.stopped.Store(true)
	e.mu.Lock()
	for _, rr := range e.rules {
		for _, t := range rr.timers {
			t.Stop()
		}
	}
	e.mu.Unlock()
	wg.Wait()
}

const (
	queueSize = 4096
	maxDrain  = 512
)

// queued is one event of the change subscription.
type queued = statestore.Event

// subscribe feeds the queue with change messages and a resync marker after every
// complete (re)subscription: pub/sub may drop messages, the hashes do not.
func (e *engine) subscribe(ctx context.Context, queue chan<- queued) {
	up := func(ok bool) {
		e.subscribed.Store(ok)
		if !ok {
			e.synced.Store(false)
		}
	}
	statestore.Subscribe(ctx, e.rdb, e.channels, e.log, up, func(ev statestore.Event) bool {
		select {
		case queue <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	})
}

// process takes queued changes and timer wake-ups, in order.
func (e *engine) process(ctx context.Context, queue <-chan queued) {
	var retry <-chan time.Time
	retryWait := 200 * time.Millisecond
	items := make([]queued, 0, maxDrain)
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-queue:
			items = append(items[:0], it)
		drain:
			for len(items) < maxDrain {
				select {
				case it := <-queue:
					items = append(items, it)
				default:
					break drain
				}
			}
			resync := false
			for _, it := range items {
				resync = resync || it.Resync
			}
			if resync {
				if err := e.resync(ctx); err != nil {
					if ctx.Err() != nil {
						return
					}
					e.log.Warn("cannot read the input hashes; retrying", "err", err)
					retry = time.After(retryWait)
					retryWait = min(retryWait*2, 5*time.Second)
					continue
				}
				retryWait = 200 * time.Millisecond
			}
			e.handle(items)
		case <-retry:
			retry = nil
			if err := e.resync(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				e.log.Warn("cannot read the input hashes; retrying", "err", err)
				retry = time.After(retryWait)
				retryWait = min(retryWait*2, 5*time.Second)
				continue
			}
			retryWait = 200 * time.Millisecond
		case <-e.wake:
			e.dueMu.Lock()
			due := e.due
			e.due = map[*ruleRun]string{}
			e.dueMu.Unlock()
			e.mu.Lock()
			now := e.now()
			for _, rr := range sortRuns(keys(due)) {
				cause := due[rr]
				if cause == "tick" {
					e.scheduleTick(rr, now)
				}
				e.evaluate(rr, cause, now)
			}
			e.mu.Unlock()
		}
	}
}

func keys(m map[*ruleRun]string) []*ruleRun {
	out := make([]*ruleRun, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// sortRuns orders rules by priority (highest first), then id, so that of two
// rules evaluated at the same moment the higher priority claims a point first.
func sortRuns(rs []*ruleRun) []*ruleRun {
	slices.SortFunc(rs, func(a, b *ruleRun) int {
		if a.r.Priority != b.r.Priority {
			return b.r.Priority - a.r.Priority
		}
		return strings.Compare(a.r.ID, b.r.ID)
	})
	return rs
}

// handle applies change messages to the inputs and evaluates the rules they
// trigger, message by message: a value that crosses a threshold and comes back
// within one batch is still a transition the rules see.
func (e *engine) handle(items []queued) {
	e.mu.Lock()
	defer e.mu.Unlock()
	affected := map[*ruleRun]bool{}
	evaluate := func() {
		if len(affected) == 0 {
			return
		}
		now := e.now()
		for _, rr := range sortRuns(keys2(affected)) {
			e.evaluate(rr, "change", now)
		}
		clear(affected)
	}
	for _, it := range items {
		if it.Resync {
			for _, rr := range e.rules {
				affected[rr] = true
			}
			evaluate()
			continue
		}
		fields := e.byKey[it.Channel]
		if fields == nil {
			continue
		}
		m, err := statestore.DecodeMessage([]byte(it.Payload))
		if err != nil {
			e.log.Warn("undecodable change message", "channel", it.Channel, "err", err)
			continue
		}
		for id, v := range m.V {
			s := fields[id]
			if s == nil {
				continue
			}
			ts := m.PointTS(id)
			if s.has && ts < s.ts {
				continue // an older sample than the one we have
			}
			s.has, s.v, s.ts, s.q = true, v, ts, m.Quality(id)
			for _, rr := range s.triggers {
				affected[rr] = true
			}
		}
		evaluate()
		e.metrics.evalLatency.Observe(time.Since(it.Received).Seconds())
	}
}

func keys2(m map[*ruleRun]bool) []*ruleRun {
	out := make([]*ruleRun, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// resync reads every input hash (values, timestamps, qualities) in one round trip.
func (e *engine) resync(ctx context.Context) error {
	if len(e.channels) == 0 {
		e.markSynced()
		return nil
	}
	pipe := e.rdb.Pipeline()
	type read struct{ v, ts, q *redis.MapStringStringCmd }
	reads := make(map[string]read, len(e.channels))
	for _, key := range e.channels {
		var s *slot
		for _, x := range e.byKey[key] {
			s = x
			break
		}
		rd := read{v: pipe.HGetAll(ctx, key), ts: pipe.HGetAll(ctx, s.tsKey)}
		if s.qKey != "" {
			rd.q = pipe.HGetAll(ctx, s.qKey)
		}
		reads[key] = rd
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return fmt.Errorf("resync: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for key, rd := range reads {
		vals, ts := rd.v.Val(), rd.ts.Val()
		var qs map[string]string
		if rd.q != nil {
			qs = rd.q.Val()
		}
		for field, s := range e.byKey[key] {
			raw, ok := vals[field]
			if !ok {
				s.has = false
				continue
			}
			v, err := parseFloat(raw)
			if err != nil {
				s.has, s.q = true, point.Invalid
				continue
			}
			s.has, s.v = true, v
			s.ts = parseInt(ts[field])
			s.q = point.Good
			if q, ok := qs[field]; ok {
				if pq, err := point.ParseQuality(q); err == nil {
					s.q = pq
				} else {
					s.q = point.Invalid
				}
			}
		}
	}
	e.markSynced()
	e.metrics.resyncs.Inc()
	return nil
}

func (e *engine) markSynced() {
	e.synced.Store(true)
	e.syncOnce.Do(func() { close(e.firstSync) })
}

// waitSynced waits until the engine has read its inputs once, or ctx ends.
func (e *engine) waitSynced(ctx context.Context) bool {
	select {
	case <-e.firstSync:
		return true
	case <-ctx.Done():
		return false
	}
}

// schedule asks the engine goroutine to evaluate rr (from a timer).
func (e *engine) schedule(rr *ruleRun, cause string) {
	if e.stopped.Load() {
		return
	}
	e.dueMu.Lock()
	if prev, ok := e.due[rr]; !ok || prev != "tick" {
		e.due[rr] = cause
	}
	e.dueMu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// after runs a timer that schedules rr with cause, replacing one of the same cause.
func (e *engine) after(rr *ruleRun, cause string, d time.Duration) {
	if t := rr.timers[cause]; t != nil {
		t.Stop()
	}
	rr.timers[cause] = time.AfterFunc(max(d, 0), func() { e.schedule(rr, cause) })
}

func (e *engine) cancel(rr *ruleRun, cause string) {
	if t := rr.timers[cause]; t != nil {
		t.Stop()
		delete(rr.timers, cause)
	}
}

// scheduleTick arms the next interval or cron evaluation.
func (e *engine) scheduleTick(rr *ruleRun, now time.Time) {
	switch {
	case rr.r.Interval > 0:
		e.after(rr, "tick", rr.r.Interval)
	case rr.r.Cron != nil:
		next := rr.r.Cron.Next(now)
		if next.IsZero() {
			return
		}
		e.after(rr, "tick", next.Sub(now))
	}
}

// evaluate runs one evaluation of rr and acts on it. e.mu is held.
func (e *engine) evaluate(rr *ruleRun, cause string, now time.Time) {
	if rr.r.Cron != nil && cause != "tick" && cause != "dry_run" {
		return // a cron rule runs at its times only
	}
	ev := e.decide(rr, cause, now, false)
	e.metrics.evaluations.Inc()
	e.apply(rr, ev, now)
}

// decide evaluates rr and returns what happens, changing rr's state only when
// dry is false. e.mu is held.
func (e *engine) decide(rr *ruleRun, cause string, now time.Time, dry bool) *Evaluation {
	r := rr.r
	ev := &Evaluation{Rule: r.ID, TS: now.UnixMilli(), Cause: cause, DryRun: dry, Inputs: map[string]InputView{}}
	for _, s := range rr.inputs {
		ev.Inputs[s.ref.String()] = s.view(now)
	}
	st := rr.st
	defer func() {
		if !dry {
			rr.st = st
		}
	}()
	if !rr.enabled && !dry {
		ev.Result, ev.Path = ResultDisabled, []string{"disabled"}
		return ev
	}
	for _, s := range rr.inputs {
		if p := s.problem(now, r.MaxAge); p != "" {
			ev.Result, ev.Reason = ResultBlocked, p
			ev.Path = append(ev.Path, "input check failed: "+p)
			if st.PendingSince != 0 {
				st.PendingSince = 0
				ev.Path = append(ev.Path, "hold restarted")
				if !dry {
					e.cancel(rr, "hold")
				}
			}
			return ev
		}
	}
	ev.Path = append(ev.Path, "inputs good")
	cond := true
	if r.Condition != nil {
		v, err := e.eval(rr, r.Condition, now)
		if err != nil {
			ev.Result, ev.Reason = ResultError, "condition: "+err.Error()
			ev.Path = append(ev.Path, ev.Reason)
			return ev
		}
		cond = v != 0
		ev.Path = append(ev.Path, fmt.Sprintf("condition %s", truth(cond)))
	}
	nowMS := now.UnixMilli()

	if r.Cron != nil {
		if !cond {
			ev.Result = ResultIdle
			return ev
		}
		return e.fire(rr, ev, &st, now, dry)
	}

	if st.Active {
		reset := !cond
		if r.Reset != nil {
			v, err := e.eval(rr, r.Reset, now)
			if err != nil {
				ev.Result, ev.Reason = ResultError, "reset: "+err.Error()
				ev.Path = append(ev.Path, ev.Reason)
				return ev
			}
			reset = v != 0
			ev.Path = append(ev.Path, fmt.Sprintf("reset %s", truth(reset)))
		}
		if reset && r.ResetFor > 0 {
			if st.ResetSince == 0 {
				st.ResetSince = nowMS
			}
			if held := time.Duration(nowMS-st.ResetSince) * time.Millisecond; held < r.ResetFor {
				if !dry && (cause == "reset-hold" || rr.timers["reset-hold"] == nil) {
					e.after(rr, "reset-hold", r.ResetFor-held) // evaluated again when the hold is over
				}
				ev.Result = ResultActive
				ev.Reason = fmt.Sprintf("reset held %s of %s", held, r.ResetFor)
				ev.Path = append(ev.Path, "reset hold: "+ev.Reason)
				return ev
			}
			ev.Path = append(ev.Path, fmt.Sprintf("reset held for %s", r.ResetFor))
		}
		if !reset && st.ResetSince != 0 {
			st.ResetSince = 0
			ev.Path = append(ev.Path, "reset hold interrupted")
			if !dry {
				e.cancel(rr, "reset-hold")
			}
		}
		if reset {
			st.Active, st.PendingSince, st.ResetSince = false, 0, 0
			ev.Result = ResultReset
			ev.Path = append(ev.Path, "re-armed")
			ev.Actions = e.plan(rr, r.OnReset, now, dry)
			return ev
		}
		if r.Level && cond {
			ev.Path = append(ev.Path, "level: fires again")
			return e.fire(rr, ev, &st, now, dry)
		}
		ev.Result = ResultActive
		ev.Path = append(ev.Path, "fired already; waiting for the reset")
		return ev
	}

	if !cond {
		if st.PendingSince != 0 {
			ev.Path = append(ev.Path, "hold interrupted")
			if !dry {
				e.cancel(rr, "hold")
			}
		}
		st.PendingSince = 0
		ev.Result = ResultIdle
		return ev
	}
	if r.For > 0 {
		if st.PendingSince == 0 {
			st.PendingSince = nowMS
		}
		held := time.Duration(nowMS-st.PendingSince) * time.Millisecond
		if held < r.For {
			if !dry && (cause == "hold" || rr.timers["hold"] == nil) {
				e.after(rr, "hold", r.For-held) // evaluated again when the hold is over
			}
			ev.Result = ResultPending
			ev.Reason = fmt.Sprintf("held %s of %s", held, r.For)
			ev.Path = append(ev.Path, "hold: "+ev.Reason)
			return ev
		}
		ev.Path = append(ev.Path, fmt.Sprintf("held for %s", r.For))
	}
	return e.fire(rr, ev, &st, now, dry)
}

func (e *engine) fire(rr *ruleRun, ev *Evaluation, st *RuleState, now time.Time, dry bool) *Evaluation {
	r := rr.r
	nowMS := now.UnixMilli()
	if r.Cooldown > 0 && st.LastFired != 0 && nowMS-st.LastFired < r.Cooldown.Milliseconds() {
		left := time.Duration(st.LastFired+r.Cooldown.Milliseconds()-nowMS) * time.Millisecond
		ev.Result, ev.Reason = ResultCooldown, fmt.Sprintf("cooldown: %s left", left)
		ev.Path = append(ev.Path, ev.Reason)
		if !dry {
			e.after(rr, "cooldown", left)
		}
		return ev
	}
	st.Active, st.PendingSince, st.LastFired = true, 0, nowMS
	ev.Result = ResultFired
	ev.Path = append(ev.Path, "fired")
	if !dry {
		e.cancel(rr, "hold")
	}
	ev.Actions = e.plan(rr, r.Actions, now, dry)
	return ev
}

// plan computes the values of actions and settles conflicts over their targets.
func (e *engine) plan(rr *ruleRun, actions []*Action, now time.Time, dry bool) []PlannedAction {
	out := make([]PlannedAction, 0, len(actions))
	for _, a := range actions {
		pa := PlannedAction{Kind: a.Kind, Target: a.Target(), action: a}
		if pa.Target != "" {
			v := a.Value.Const
			if p := rr.values[a]; p != nil {
				x, err := e.eval(rr, p, now)
				if err != nil {
					pa.Skip = "value: " + err.Error()
					out = append(out, pa)
					continue
				}
				v = x
			}
			pa.Value = &v
			if lost := e.arb.claim(pa.Target, rr.r.ID, rr.r.Priority, now, dry); lost != "" {
				pa.Skip = lost
			}
		}
		out = append(out, pa)
	}
	return out
}

// eval runs p with its inputs' current values.
func (e *engine) eval(rr *ruleRun, p *expression.Program, now time.Time) (float64, error) {
	ins := rr.progIn[p]
	vals := make([]float64, len(ins))
	for i, s := range ins {
		vals[i] = s.value(now)
	}
	v, err := p.Eval(now.UnixMilli(), vals)
	if err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
		err = expression.ErrNotFinite
	}
	return v, err
}

func truth(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// apply records an evaluation and starts its actions.
func (e *engine) apply(rr *ruleRun, ev *Evaluation, now time.Time) {
	switch ev.Result {
	case ResultFired, ResultReset:
		e.metrics.firings.WithLabelValues(ev.Result).Inc()
		rr.last.result, rr.last.reason = ev.Result, ev.Reason
		e.rec.evaluation(ev, rr.st, rr.r.Fingerprint)
		e.exec.run(rr.r, ev)
		return
	case ResultBlocked, ResultError:
		e.metrics.blocked.WithLabelValues(ev.Result).Inc()
	}
	// Other results are recorded when they change, so a steady state costs nothing.
	if rr.last.result == ev.Result && rr.last.reason == ev.Reason {
		return
	}
	if ev.Result == ResultPending && rr.last.result == ResultPending {
		return
	}
	rr.last.result, rr.last.reason = ev.Result, ev.Reason
	e.rec.evaluation(ev, rr.st, rr.r.Fingerprint)
}

// dryRun evaluates a rule against the live values without acting.
func (e *engine) dryRun(id string) (*Evaluation, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rr := e.byID[id]
	if rr == nil {
		return nil, false
	}
	return e.decide(rr, "dry_run", e.now(), true), true
}

// RuleStatus is a rule's runtime state for the API.
type RuleStatus struct {
	Enabled    bool   `json:"enabled"`
	Active     bool   `json:"active"`
	Pending    bool   `json:"pending"`
	LastFired  int64  `json:"last_fired,omitempty"`
	LastResult string `json:"last_result,omitempty"`
	LastReason string `json:"last_reason,omitempty"`
}

func (e *engine) status(id string) (RuleStatus, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rr := e.byID[id]
	if rr == nil {
		return RuleStatus{}, false
	}
	return RuleStatus{Enabled: rr.enabled, Active: rr.st.Active, Pending: rr.st.PendingSince != 0,
		LastFired: rr.st.LastFired, LastResult: rr.last.result, LastReason: rr.last.reason}, true
}

// restoreStates loads the states recorded in rule:{id}:exec, so a restart does
// not fire an edge rule again whose condition still holds.
func (e *engine) restoreStates(ctx context.Context) {
	if len(e.rules) == 0 {
		return
	}
	pipe := e.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(e.rules))
	for i, rr := range e.rules {
		cmds[i] = pipe.HGet(ctx, execKey(rr.r.ID), "state")
	}
	_, _ = pipe.Exec(ctx)
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, rr := range e.rules {
		b, err := cmds[i].Bytes()
		if err != nil {
			continue
		}
		var st RecordedState
		if jsonUnmarshal(b, &st) == nil && st.Fingerprint == rr.r.Fingerprint {
			rr.st.Active, rr.st.LastFired = st.Active, st.LastFired
		}
	}
}
