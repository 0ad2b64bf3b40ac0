// Package channel runs one comsrv channel: it is the link supervisor of STYLE's
// "drivers only say not connected; the framework owns reconnect". One goroutine per
// channel owns the driver, so polls and command writes share one queue and never
// overlap on the link; it reconnects with capped exponential backoff and jitter,
// turns points comm_lost when the link drops, reports what changed to Redis in one
// round trip per poll, and keeps comsrv:{ch}:status current.
package channel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/services/comsrv/protocol"
	"github.com/voltageems/voltage/shared/backoff"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
)

// Link states written to comsrv:{ch}:status.
const (
	StateConnecting = "connecting"
	StateUp         = "up"
	StateDown       = "down"
)

// Errors Execute returns without touching the device.
var (
	ErrChannelDown = errors.New("channel is not connected")
	ErrBusy        = errors.New("channel command queue is full")
)

// Backoff bounds the pause between two connection attempts.
var (
	BackoffMin = 500 * time.Millisecond
	BackoffMax = 30 * time.Second
)

const writeQueueSize = 64

// Runner supervises one channel.
type Runner struct {
	ch      *config.Channel
	drv     protocol.Driver
	acq     config.Acquisition
	rdb     redis.UniversalClient
	store   *statestore.Writer
	log     *slog.Logger
	metrics *Metrics

	table  *pointTable
	writes chan *writeRequest

	stateMu      sync.Mutex
	state        string
	stateChanged chan struct{} // closed and replaced on every state change

	// link statistics, owned by the Run goroutine
	started        int64 // Unix ms this runner was created (a reload that restarts the channel changes it)
	polls, errs    int64
	requestErrs    int64 // part of errs: requests that failed on a working link
	lastOK         int64
	lastErr        string
	rtt            time.Duration
	statusWritten  time.Time
	redisFailing   bool
	storeFailCount int
}

type writeRequest struct {
	ctx   context.Context
	point *config.Point
	value float64
	done  chan error
}

// New prepares a runner; nothing runs until Run.
func New(ch *config.Channel, drv protocol.Driver, rdb redis.UniversalClient, store *statestore.Writer, m *Metrics, log *slog.Logger) *Runner {
	acq := drv.Acquisition()
	var keys []key
	for _, t := range point.Types {
		for _, p := range ch.Points[t] {
			keys = append(keys, key{t, p.ID})
		}
	}
	r := &Runner{
		ch: ch, drv: drv, acq: acq, rdb: rdb, store: store, metrics: m,
		log:     log.With("channel", ch.ID, "name", ch.Name, "protocol", ch.Protocol),
		table:   newPointTable(keys, acq.Deadband, acq.IntegrityInterval()),
		writes:  make(chan *writeRequest, writeQueueSize),
		started: time.Now().UnixMilli(),
	}
	r.state, r.stateChanged = StateConnecting, make(chan struct{})
	return r
}

// Channel is the channel's configuration.
func (r *Runner) Channel() *config.Channel { return r.ch }

// State is the link state: connecting, up or down.
func (r *Runner) State() string {
	r.stateMu.Lock()
	defer r.stateMu.Unlock()
	return r.state
}

func (r *Runner) storeState(state string) {
	r.stateMu.Lock()
	defer r.stateMu.Unlock()
	if state != r.state {
		r.state = state
		close(r.stateChanged)
		r.stateChanged = make(chan struct{})
	}
}

// settledState waits while the link is connecting and returns the state it
// reaches (or the current one when ctx ends first).
func (r *Runner) settledState(ctx context.Context) string {
	for {
		r.stateMu.Lock()
		state, changed := r.state, r.stateChanged
		r.stateMu.Unlock()
		if state != StateConnecting {
			return state
		}
		select {
		case <-ctx.Done():
			return state
		case <-changed:
		}
	}
}

// Execute queues a write of v to point p behind any poll in progress and waits for
// the device's answer. While a connection attempt is under way it waits for its
// outcome; when the link is down it fails at once with ErrChannelDown, rather than
// holding a command for a device that may come back much later.
func (r *Runner) Execute(ctx context.Context, p *config.Point, v float64) error {
	if state := r.settledState(ctx); state != StateUp {
		return fmt.Errorf("%w (%s)", ErrChannelDown, state)
	}
	req := &writeRequest{ctx: ctx, point: p, value: v, done: make(chan error, 1)}
	select {
	case r.writes <- req:
	default:
		return ErrBusy
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// MarkRedisReset makes the next poll rewrite every point: Redis lost its data.
func (r *Runner) MarkRedisReset() { r.table.markDirty() }

// Run supervises the link until ctx is done.
func (r *Runner) Run(ctx context.Context) error {
	r.restore(ctx)
	retry := BackoffMin
	for ctx.Err() == nil {
		r.setState(ctx, StateConnecting, nil)
		err := r.drv.Connect(ctx, r.table)
		if err == nil {
			r.log.Info("link up")
			retry = BackoffMin
			r.lastOK = time.Now().UnixMilli()
			r.setState(ctx, StateUp, nil)
			err = r.serve(ctx)
			if cerr := r.drv.Close(); cerr != nil {
				r.log.Debug("close", "err", cerr)
			}
			if ctx.Err() != nil {
				break
			}
		}
		r.errs++
		r.metrics.linkErrors.WithLabelValues(r.label()).Inc()
		r.log.Warn("link down", "err", err, "retry_in", retry)
		r.table.markAll(point.CommLost)
		r.setState(ctx, StateDown, err)
		r.flush(ctx)
		r.failQueued(fmt.Errorf("%w: %v", ErrChannelDown, err))
		if !r.wait(ctx, backoff.Jitter(retry)) {
			break
		}
		retry = min(retry*2, BackoffMax)
	}
	r.shutdown()
	return nil
}

// serve polls and executes writes until the link fails or ctx is done.
func (r *Runner) serve(ctx context.Context) error {
	interval := r.acq.PollInterval()
	start := time.Now()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	// Polls run on the grid start + k × interval, and their samples carry the
	// grid time (protocol.PollTime), not whenever the ticker got to run.
	pollAt := start
	pollNow := true
	for {
		if pollNow {
			if err := r.poll(protocol.WithPollTime(ctx, pollAt.UnixMilli())); err != nil {
				return err
			}
			pollNow = false
		}
		// Commands go before the next poll; both wait for the link in turn.
		select {
		case w := <-r.writes:
			r.execute(w)
			continue
		default:
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case w := <-r.writes:
			r.execute(w)
		case t := <-tick.C:
			pollAt, pollNow = start.Add(t.Sub(start).Round(interval)), true
		case <-r.table.notify: // pushed data between polls
			r.flush(ctx)
		}
	}
}

func (r *Runner) poll(ctx context.Context) error {
	start := time.Now()
	err := r.drv.Poll(ctx, r.table)
	r.rtt = time.Since(start)
	r.polls++
	r.metrics.polls.WithLabelValues(r.label()).Inc()
	r.metrics.pollSeconds.WithLabelValues(r.label()).Observe(r.rtt.Seconds())
	r.countRequestErrors()
	if err != nil {
		return err
	}
	r.lastOK = time.Now().UnixMilli()
	r.table.markStale(3 * r.acq.PollInterval())
	r.flush(ctx)
	if time.Since(r.statusWritten) >= time.Second {
		r.writeStatus(ctx, nil)
	}
	return nil
}

func (r *Runner) execute(w *writeRequest) {
	if err := w.ctx.Err(); err != nil {
		w.done <- err
		return
	}
	err := r.drv.Write(w.ctx, w.point, w.value)
	r.countRequestErrors()
	if err != nil {
		err = fmt.Errorf("write %s point %d: %w", w.point.Type.Name(), w.point.ID, err)
	}
	w.done <- err
}

// countRequestErrors adds the requests a driver saw fail without losing its link
// (a timeout or CRC error on a serial bus) to the channel's error count.
func (r *Runner) countRequestErrors() {
	rc, ok := r.drv.(interface{ RequestErrors() int64 })
	if !ok {
		return
	}
	if n := rc.RequestErrors(); n > 0 {
		r.errs += n
		r.requestErrs += n
		r.metrics.requestErrors.WithLabelValues(r.label()).Add(float64(n))
	}
}

func (r *Runner) failQueued(err error) {
	for {
		select {
		case w := <-r.writes:
			w.done <- err
		default:
			return
		}
	}
}

// flush writes what changed since the last flush in one round trip.
func (r *Runner) flush(ctx context.Context) {
	pending := r.table.take()
	if pending == nil {
		return
	}
	now := time.Now().UnixMilli()
	batches := make([]statestore.Batch, 0, len(pending))
	n := 0
	for _, t := range point.Types {
		samples := pending[t]
		if len(samples) == 0 {
			continue
		}
		b := statestore.ChannelBatch(r.ch.ID, t, now, samples)
		if t == point.Control || t == point.Adjustment {
			b.QualityKey = "" // DESIGN §4 keeps quality hashes for T and S only
		}
		batches = append(batches, b)
		n += len(samples)
	}
	if err := r.store.Write(ctx, batches...); err != nil {
		// Whatever was in this batch must reach Redis once it is back.
		r.table.markDirty()
		r.storeFailCount++
		if !r.redisFailing {
			r.log.Warn("cannot write points to Redis; will rewrite everything once it answers", "err", err)
			r.redisFailing = true
		}
		return
	}
	if r.redisFailing {
		r.log.Info("writing points to Redis again", "failed_flushes", r.storeFailCount)
		r.redisFailing, r.storeFailCount = false, 0
	}
	r.metrics.pointsWritten.WithLabelValues(r.label()).Add(float64(n))
}

func (r *Runner) setState(ctx context.Context, state string, err error) {
	r.storeState(state)
	up := 0.0
	if state == StateUp {
		up = 1
	}
	r.metrics.up.WithLabelValues(r.label()).Set(up)
	r.writeStatus(ctx, err)
}

func (r *Runner) writeStatus(ctx context.Context, err error) {
	if err != nil {
		r.lastErr = err.Error()
	}
	fields := []any{
		"state", r.State(), "last_ok", r.lastOK, "last_error", r.lastErr,
		"polls", r.polls, "errors", r.errs, "request_errors", r.requestErrs, "rtt_us", r.rtt.Microseconds(),
		"name", r.ch.Name, "protocol", r.ch.Protocol, "started", r.started, "updated", time.Now().UnixMilli(),
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if werr := r.rdb.HSet(wctx, keyspace.ChannelStatus(r.ch.ID), fields...).Err(); werr == nil {
		r.statusWritten = time.Now()
	}
}

// restore loads what Redis holds for the channel's points (see pointTable.restore)
// and removes fields of points that are no longer configured.
func (r *Runner) restore(ctx context.Context) {
	for _, t := range point.Types {
		vals, err := r.rdb.HGetAll(ctx, keyspace.ChannelPoints(r.ch.ID, t)).Result()
		if err != nil {
			r.log.Warn("cannot read previous values; starting without them", "err", err)
			return
		}
		if len(vals) == 0 {
			continue
		}
		raws, _ := r.rdb.HGetAll(ctx, keyspace.ChannelRaw(r.ch.ID, t)).Result()
		tss, _ := r.rdb.HGetAll(ctx, keyspace.ChannelTimestamps(r.ch.ID, t)).Result()
		qs, _ := r.rdb.HGetAll(ctx, keyspace.ChannelQuality(r.ch.ID, t)).Result()
		var ghosts []string
		for field, s := range vals {
			id, err := strconv.ParseUint(field, 10, 32)
			if err != nil || r.ch.Point(t, point.ID(id)) == nil {
				ghosts = append(ghosts, field)
				continue
			}
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				continue
			}
			raw, _ := strconv.ParseFloat(raws[field], 64)
			ts, _ := strconv.ParseInt(tss[field], 10, 64)
			q := point.Good
			if qs[field] != "" {
				q, _ = point.ParseQuality(qs[field])
			}
			r.table.restore(key{t, point.ID(id)}, v, raw, ts, q)
		}
		if len(ghosts) > 0 {
			pipe := r.rdb.Pipeline()
			for _, k := range []string{keyspace.ChannelPoints(r.ch.ID, t), keyspace.ChannelRaw(r.ch.ID, t), keyspace.ChannelTimestamps(r.ch.ID, t), keyspace.ChannelQuality(r.ch.ID, t)} {
				pipe.HDel(ctx, k, ghosts...)
			}
			if _, err := pipe.Exec(ctx); err == nil {
				r.log.Info("removed points no longer configured", "type", t.String(), "points", len(ghosts))
			}
		}
	}
}

// shutdown marks the channel down in Redis as comsrv stops, so nobody mistakes the
// last values for live ones.
func (r *Runner) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r.table.markAll(point.CommLost)
	r.flush(ctx)
	r.failQueued(ErrChannelDown)
	r.storeState(StateDown)
	r.lastErr = "comsrv stopped"
	r.writeStatus(ctx, nil)
	r.metrics.up.WithLabelValues(r.label()).Set(0)
}

func (r *Runner) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case w := <-r.writes:
			w.done <- ErrChannelDown
		case <-t.C:
			return true
		}
	}
}

func (r *Runner) label() string { return strconv.FormatUint(uint64(r.ch.ID), 10) }
