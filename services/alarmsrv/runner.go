package alarmsrv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/service"
	"github.com/voltageems/voltage/shared/statestore"
)

const (
	// queueSize bounds the change messages waiting for the engine. When it is full
	// the subscriber waits; Redis buffers, and past its output limit drops the
	// subscription, after which the resync repairs everything.
	queueSize = 8192
	maxDrain  = 1024
)

type queued struct {
	hash    string
	payload string
	recv    time.Time
	resync  bool
	gen     uint64
}

// runner is the engine goroutine: it owns the evaluator, reads the change
// subscription, runs the timers and persists every transition.
type runner struct {
	rdb     redis.UniversalClient
	log     *slog.Logger
	metrics *metrics
	site    string
	now     func() time.Time

	queue chan queued
	calls chan func()

	ready      atomic.Bool // subscribed, resynced, and everything written
	subscribed atomic.Bool

	// Owned by the engine goroutine.
	ev        *evaluator
	rs        *RuleSet
	router    *router
	pending   []op
	subCancel context.CancelFunc
	subDone   chan struct{}
	gen       uint64
	retryAt   time.Time
	retryWait time.Duration
	lastRecv  time.Time
	runCtx    context.Context // run's context: what the subscriber lives in
}

func newRunner(rdb redis.UniversalClient, log *slog.Logger, mt *metrics, site string) *runner {
	return &runner{rdb: rdb, log: log, metrics: mt, site: site, now: time.Now,
		queue: make(chan queued, queueSize), calls: make(chan func(), 64)}
}

// do runs f on the engine goroutine and waits for it.
func (r *runner) do(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case r.calls <- func() { f(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loadActive reads alarm:active, retrying until Redis answers or ctx ends.
func (r *runner) loadActive(ctx context.Context) (map[string]*Alarm, error) {
	wait := 200 * time.Millisecond
	for {
		m, err := r.rdb.HGetAll(ctx, keyspace.AlarmActive).Result()
		if err == nil {
			out := map[string]*Alarm{}
			for k, v := range m {
				var a Alarm
				if err := json.Unmarshal([]byte(v), &a); err != nil || a.Key != k {
					r.log.Warn("ignoring an unreadable entry of alarm:active", "key", k, "err", err)
					continue
				}
				out[k] = &a
			}
			return out, nil
		}
		r.log.Warn("cannot read alarm:active; retrying", "err", err, "retry_in", wait)
		if !service.Sleep(ctx, wait) {
			return nil, ctx.Err()
		}
		wait = min(wait*2, 5*time.Second)
	}
}

// run evaluates until ctx is done.
func (r *runner) run(ctx context.Context, rs *RuleSet) {
	alarms, err := r.loadActive(ctx)
	if err != nil {
		return
	}
	r.log.Info("restored alarm state", "alarms", len(alarms))
	r.runCtx = ctx
	r.install(rs, alarms)
	defer r.stopSubscriber()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	items := make([]queued, 0, maxDrain)
	for {
		wake := r.ev.next()
		if !r.retryAt.IsZero() && (wake.IsZero() || r.retryAt.Before(wake)) {
			wake = r.retryAt
		}
		d := time.Hour
		if !wake.IsZero() {
			d = max(time.Until(wake), 0)
		}
		timer.Reset(d)
		items = items[:0]
		select {
		case <-ctx.Done():
			return
		case f := <-r.calls:
			f()
		case it := <-r.queue:
			items = append(items, it)
		drain:
			for len(items) < maxDrain {
				select {
				case it := <-r.queue:
					items = append(items, it)
				default:
					break drain
				}
			}
			r.handle(ctx, items)
		case <-timer.C:
		}
		now := r.now()
		r.ev.fire(now)
		r.flush(ctx)
	}
}

// install starts evaluating rs (at start and on reload), keeping the alarms.
func (r *runner) install(rs *RuleSet, alarms map[string]*Alarm) {
	ctx := r.runCtx
	r.stopSubscriber()
	r.rs = rs
	r.router = newRouter(rs.Channels)
	r.ev = newEvaluator(rs, alarms, r.now)
	r.ev.dropRemoved(r.now())
	r.metrics.rules.Set(float64(len(r.ev.conds)))
	r.gen++
	hashes := r.ev.hashes()
	sctx, cancel := context.WithCancel(ctx)
	r.subCancel, r.subDone = cancel, make(chan struct{})
	gen := r.gen
	go func(done chan struct{}) {
		defer close(done)
		r.subscribe(sctx, hashes, gen)
	}(r.subDone)
	r.flush(ctx)
}

func (r *runner) stopSubscriber() {
	if r.subCancel != nil {
		r.subCancel()
		<-r.subDone
		r.subCancel = nil
	}
}

// subscribe feeds the queue with change messages and a resync marker after every
// complete (re)subscription.
func (r *runner) subscribe(ctx context.Context, hashes []string, gen uint64) {
	up := func(ok bool) {
		r.subscribed.Store(ok)
		if !ok {
			r.ready.Store(false)
		}
	}
	statestore.Subscribe(ctx, r.rdb, hashes, r.log, up, func(ev statestore.Event) bool {
		return r.enqueue(ctx, queued{hash: ev.Channel, payload: ev.Payload, recv: ev.Received, resync: ev.Resync, gen: gen})
	})
}

func (r *runner) enqueue(ctx context.Context, it queued) bool {
	select {
	case r.queue <- it:
		return true
	case <-ctx.Done():
		return false
	}
}

func (r *runner) handle(ctx context.Context, items []queued) {
	now := r.now()
	for _, it := range items {
		if it.gen != r.gen {
			continue // from a subscription of the rules before a reload
		}
		if it.resync {
			if err := r.resync(ctx, now); err != nil {
				r.log.Warn("resync failed; retrying", "err", err)
				r.ready.Store(false)
				go func(gen uint64) {
					if service.Sleep(ctx, time.Second) {
						r.enqueue(ctx, queued{resync: true, gen: gen})
					}
				}(it.gen)
				continue
			}
			r.ready.Store(true)
			continue
		}
		m, err := statestore.DecodeMessage([]byte(it.payload))
		if err != nil {
			r.metrics.badMessages.Inc()
			continue
		}
		r.metrics.changes.Add(float64(len(m.V)))
		r.ev.message(it.hash, &m, now)
		if it.recv.After(r.lastRecv) {
			r.lastRecv = it.recv
		}
	}
}

// resync reads every watched hash (values, timestamps, qualities) and the
// channel states, and feeds them as samples.
func (r *runner) resync(ctx context.Context, now time.Time) error {
	hashes := r.ev.hashes()
	type reads struct {
		v, ts, q *redis.MapStringStringCmd
		state    *redis.StringCmd
	}
	pipe := r.rdb.Pipeline()
	rd := make([]reads, len(hashes))
	for i, h := range hashes {
		src, ok := keyspace.ParseChangeKey(h)
		if !ok {
			continue
		}
		rd[i].v = pipe.HGetAll(ctx, h)
		if src.Instance {
			rd[i].ts = pipe.HGetAll(ctx, keyspace.InstanceMeasurementTimestamps(src.ID))
			rd[i].q = pipe.HGetAll(ctx, keyspace.InstanceMeasurementQuality(src.ID))
		} else {
			t := point.Type(src.Family[0])
			rd[i].ts = pipe.HGetAll(ctx, keyspace.ChannelTimestamps(src.ID, t))
			rd[i].q = pipe.HGetAll(ctx, keyspace.ChannelQuality(src.ID, t))
			if len(r.ev.comm[h]) > 0 {
				rd[i].state = pipe.HGet(ctx, keyspace.ChannelStatus(src.ID), "state")
			}
		}
	}
	// alarm:active is written again too: a Redis that restarted without its data
	// gets the alarms back (the engine's state is the truth).
	for k, a := range r.ev.alarms {
		b, _ := json.Marshal(a)
		pipe.HSet(ctx, keyspace.AlarmActive, k, b)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("resync: %w", err)
	}
	for i, h := range hashes {
		if rd[i].v == nil {
			continue
		}
		vals, tss, qs := rd[i].v.Val(), rd[i].ts.Val(), rd[i].q.Val()
		for field, s := range vals {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				continue
			}
			ts, _ := strconv.ParseInt(tss[field], 10, 64)
			q := point.Good
			if qs[field] != "" {
				if q, err = point.ParseQuality(qs[field]); err != nil {
					q = point.Invalid
				}
			}
			r.ev.sample(h, field, v, q, ts, now)
		}
		if rd[i].state != nil {
			if st, err := rd[i].state.Result(); err == nil {
				r.ev.commState(h, st == "down", now)
			}
		}
	}
	r.metrics.resyncs.Inc()
	return nil
}

// flush writes the pending transitions in one MULTI/EXEC; on failure they are
// kept (in order) and retried with backoff.
func (r *runner) flush(ctx context.Context) {
	r.pending = append(r.pending, r.ev.take()...)
	if len(r.pending) == 0 || (!r.retryAt.IsZero() && r.now().Before(r.retryAt)) {
		return
	}
	ops := r.pending
	if len(ops) > 4096 {
		ops = ops[:4096]
	}
	pipe := r.rdb.TxPipeline()
	now := r.now()
	for i := range ops {
		o := &ops[i]
		b, _ := json.Marshal(o.event.Alarm)
		if o.del {
			pipe.HDel(ctx, keyspace.AlarmActive, o.event.Key)
		} else {
			pipe.HSet(ctx, keyspace.AlarmActive, o.event.Key, b)
		}
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: keyspace.AlarmEvents, MaxLen: r.rs.MaxEvents, Approx: true, Values: o.event.fieldsWith(b)})
		if o.notify {
			n := alarmNotification(r.site, &o.event)
			for _, ch := range r.router.route(n, now) {
				addOutbox(ctx, pipe, ch.Name, n)
			}
		}
		if o.audit {
			pipe.XAdd(ctx, command.Audit(map[string]any{
				"ts": o.event.TS, "action": "alarm_" + o.event.Type, "user": o.event.User, "source": "alarmsrv",
				"id": o.event.Alarm.ID, "key": o.event.Key, "comment": o.event.Comment,
			}))
		}
	}
	t0 := time.Now()
	_, err := pipe.Exec(ctx)
	r.metrics.writeTime.Observe(time.Since(t0).Seconds())
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		r.ready.Store(false)
		if r.retryWait == 0 {
			r.retryWait = 200 * time.Millisecond
			r.log.Warn("cannot write alarm transitions; keeping them and retrying", "err", err, "pending", len(r.pending))
		}
		r.metrics.writeErrors.Inc()
		r.retryAt = r.now().Add(r.retryWait)
		r.retryWait = min(r.retryWait*2, 5*time.Second)
		return
	}
	if r.retryWait != 0 {
		r.log.Info("alarm transitions written again", "pending", len(r.pending))
		r.ready.Store(r.subscribed.Load())
	}
	r.retryAt, r.retryWait = time.Time{}, 0
	r.metrics.active.Set(float64(len(r.ev.alarms)))
	for i := range ops {
		r.metrics.events.WithLabelValues(ops[i].event.Type).Inc()
	}
	if !r.lastRecv.IsZero() {
		r.metrics.latency.Observe(time.Since(r.lastRecv).Seconds())
		r.lastRecv = time.Time{}
	}
	r.pending = r.pending[len(ops):]
	if len(r.pending) > 0 {
		r.retryAt = r.now() // more to write: next loop
	}
}
