package modsrv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/model"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
)

const (
	// queueSize bounds the change messages waiting for the processor. When it is
	// full the subscriber waits; Redis then buffers, and past its pub/sub output
	// limit drops the connection, after which the resync repairs everything.
	queueSize = 4096
	// maxDrain is how many queued messages one batch write takes at most.
	maxDrain = 512
)

// engine runs one model: it routes channel changes to instance measurements and
// evaluates the calculations. A reload builds a new engine and stops the old one.
type engine struct {
	m       *model.Model
	g       *graph
	rdb     redis.UniversalClient
	store   *statestore.Writer
	log     *slog.Logger
	metrics *metrics

	channels []string                         // pub/sub channels of the routed channel hashes
	source   map[string]model.ChannelPointRef // pub/sub channel → channel and type

	subscribed atomic.Bool
	synced     atomic.Bool // a resync completed since the last (re)subscribe

	// Owned by the processor goroutine.
	lastTS      map[model.PointRef]int64
	stateLoaded bool
	builder     batchBuilder

	// mu guards what the HTTP API reads of the graph.
	mu sync.Mutex
}

// queued is one event of the change subscription.
type queued = statestore.Event

func newEngine(m *model.Model, rdb redis.UniversalClient, store *statestore.Writer, log *slog.Logger, mt *metrics) *engine {
	e := &engine{m: m, g: newGraph(m), rdb: rdb, store: store, log: log, metrics: mt,
		source: map[string]model.ChannelPointRef{}, lastTS: map[model.PointRef]int64{}}
	e.builder.byInst = map[uint32]int{}
	for _, c := range m.RoutedChannels() {
		name := keyspace.ChannelPoints(c.Channel, c.Type)
		e.channels = append(e.channels, name)
		e.source[name] = c
	}
	return e
}

// run routes until ctx is done.
func (e *engine) run(ctx context.Context) {
	queue := make(chan queued, queueSize)
	var wg sync.WaitGroup
	wg.Go(func() { e.subscribe(ctx, queue) })
	e.process(ctx, queue)
	wg.Wait()
}

// subscribe feeds the queue with change messages, and a resync marker after every
// complete (re)subscription: go-redis subscribes again by itself after a lost
// connection, and the hashes must then be read again for what pub/sub dropped.
func (e *engine) subscribe(ctx context.Context, queue chan<- queued) {
	statestore.Subscribe(ctx, e.rdb, e.channels, e.log, e.subscribed.Store, func(ev statestore.Event) bool {
		select {
		case queue <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	})
}

// process takes queued messages in order, a batch at a time.
func (e *engine) process(ctx context.Context, queue <-chan queued) {
	var retry <-chan time.Time
	retryWait := 200 * time.Millisecond
	items := make([]queued, 0, maxDrain)
	for {
		items = items[:0]
		select {
		case <-ctx.Done():
			return
		case <-retry:
			retry = nil
			items = append(items, queued{Resync: true})
		case it := <-queue:
			items = append(items, it)
		}
	drain:
		for len(items) < maxDrain {
			select {
			case it := <-queue:
				items = append(items, it)
			default:
				break drain
			}
		}
		if err := e.handle(ctx, items); err != nil {
			if ctx.Err() != nil {
				return
			}
			e.synced.Store(false)
			e.metrics.writeErrors.Inc()
			e.log.Warn("cannot write instance values; resyncing when Redis answers", "err", err, "retry_in", retryWait)
			retry = time.After(retryWait)
			retryWait = min(retryWait*2, 5*time.Second)
			continue
		}
		retryWait = 200 * time.Millisecond
	}
}

// handle routes a run of queued items and writes the result in one round trip.
func (e *engine) handle(ctx context.Context, items []queued) error {
	start := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.builder.reset()
	resynced := false
	for _, it := range items {
		if it.Resync {
			if err := e.resync(ctx); err != nil {
				return err
			}
			resynced = true
			continue
		}
		e.route(it.Channel, it.Payload)
	}
	routed := e.builder.n
	outs := e.g.run(nil)
	for _, o := range outs {
		e.builder.add(o.ref.Instance, point.Sample{ID: o.ref.Point, Value: o.sample.Value, TS: o.sample.TS, Quality: o.sample.Quality})
	}
	e.metrics.evaluations.Add(float64(len(outs)))
	// The state of the integrators and windows goes in the same transaction as
	// the values they produced, so a crash never separates energy from its counter.
	if err := e.store.WriteWith(ctx, e.stateCommands(), e.builder.batches()...); err != nil {
		return fmt.Errorf("write instances and calculation state: %w", err)
	}
	e.stateSaved()
	e.metrics.routedPoints.WithLabelValues("route").Add(float64(routed))
	e.metrics.routedPoints.WithLabelValues("calculation").Add(float64(len(outs)))
	e.metrics.batches.Inc()
	if resynced {
		e.synced.Store(true)
	}
	e.metrics.batchSeconds.Observe(time.Since(start).Seconds())
	return nil
}

// route turns one change message of a channel hash into instance samples.
func (e *engine) route(channel, payload string) {
	src, ok := e.source[channel]
	if !ok {
		return
	}
	m, err := statestore.DecodeMessage([]byte(payload))
	if err != nil {
		e.log.Warn("undecodable change message; ignored", "channel", channel, "err", err)
		return
	}
	for id, v := range m.V {
		n, err := strconv.ParseUint(id, 10, 32)
		if err != nil {
			continue
		}
		e.routePoint(src.Channel, src.Type, point.ID(n), v, m.PointTS(id), m.Quality(id))
	}
}

func (e *engine) routePoint(ch uint32, t point.Type, id point.ID, v float64, ts int64, q point.Quality) {
	for _, rt := range e.m.MeasurementRoutes(ch, t, id) {
		ref := model.PointRef{Instance: rt.Instance.ID, Point: rt.Point}
		if last, ok := e.lastTS[ref]; ok && ts < last {
			continue // older than what a resync already wrote
		}
		e.lastTS[ref] = ts
		s := point.Sample{ID: rt.Point, Value: v, TS: ts, Quality: q}
		e.builder.add(rt.Instance.ID, s)
		e.g.set(ref, s)
	}
}

// resync reads every routed channel hash (one round trip) and routes all of it,
// then schedules every calculation.
func (e *engine) resync(ctx context.Context) error {
	if !e.stateLoaded {
		if err := e.loadState(ctx); err != nil {
			return err
		}
		e.stateLoaded = true
	}
	e.metrics.resyncs.Inc()
	type read struct {
		src       model.ChannelPointRef
		v, ts, qs *redis.MapStringStringCmd
	}
	pipe := e.rdb.Pipeline()
	reads := make([]read, 0, len(e.channels))
	for _, name := range e.channels {
		src := e.source[name]
		r := read{src: src, v: pipe.HGetAll(ctx, name), ts: pipe.HGetAll(ctx, keyspace.ChannelTimestamps(src.Channel, src.Type)),
			qs: pipe.HGetAll(ctx, keyspace.ChannelQuality(src.Channel, src.Type))}
		reads = append(reads, r)
	}
	if len(reads) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("resync channel hashes: %w", err)
		}
	}
	now := time.Now().UnixMilli()
	for _, r := range reads {
		ts, qs := r.ts.Val(), r.qs.Val()
		for id, text := range r.v.Val() {
			n, err1 := strconv.ParseUint(id, 10, 32)
			v, err2 := strconv.ParseFloat(text, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			t, err := strconv.ParseInt(ts[id], 10, 64)
			if err != nil {
				t = now
			}
			q := point.Good
			if s, ok := qs[id]; ok {
				if q, err = point.ParseQuality(s); err != nil {
					q = point.Invalid
				}
			}
			e.routePoint(r.src.Channel, r.src.Type, point.ID(n), v, t, q)
		}
	}
	e.g.enqueueAll()
	return nil
}

// loadOutputs reads the last written value of every calculated measurement, so an
// output whose inputs are not good after a restart keeps its last value (flagged)
// instead of turning into 0.
func (e *engine) loadOutputs(ctx context.Context) error {
	type read struct{ v, ts, q *redis.MapStringStringCmd }
	reads := map[uint32]read{}
	pipe := e.rdb.Pipeline()
	for _, n := range e.g.nodes {
		id := n.c.Instance.ID
		if _, ok := reads[id]; !ok {
			reads[id] = read{pipe.HGetAll(ctx, keyspace.InstanceMeasurements(id)), pipe.HGetAll(ctx, keyspace.InstanceMeasurementTimestamps(id)),
				pipe.HGetAll(ctx, keyspace.InstanceMeasurementQuality(id))}
		}
	}
	if len(reads) == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("read calculated values: %w", err)
	}
	for _, n := range e.g.nodes {
		r := reads[n.c.Instance.ID]
		field := strconv.FormatUint(uint64(n.c.Point), 10)
		v, err := strconv.ParseFloat(r.v.Val()[field], 64)
		if err != nil {
			continue
		}
		ts, _ := strconv.ParseInt(r.ts.Val()[field], 10, 64)
		q := point.Good
		if s, ok := r.q.Val()[field]; ok {
			if q, err = point.ParseQuality(s); err != nil {
				q = point.Invalid
			}
		}
		e.g.store(n.out, point.Sample{Value: v, TS: ts, Quality: q})
	}
	return nil
}

// loadState restores the stateful functions from Redis.
func (e *engine) loadState(ctx context.Context) error {
	if err := e.loadOutputs(ctx); err != nil {
		return err
	}
	var stateful []*calcNode
	for _, n := range e.g.nodes {
		if n.c.Program.Stateful() {
			stateful = append(stateful, n)
		}
	}
	if len(stateful) == 0 {
		return nil
	}
	saved, err := e.rdb.HGetAll(ctx, keyspace.CalculationState).Result()
	if err != nil {
		return fmt.Errorf("load calculation state: %w", err)
	}
	for _, n := range stateful {
		b, ok := saved[n.c.Name]
		if !ok {
			continue
		}
		if err := n.c.Program.Restore(stateFromRedis(b, n.c.Expression)); err != nil {
			e.log.Warn("calculation state not restored; starting afresh", "calculation", n.c.Name, "err", err)
			continue
		}
		e.log.Info("calculation state restored", "calculation", n.c.Name)
	}
	return nil
}

// persisted is a calculation's state as stored in Redis, with the expression it
// belongs to (for the operator; Restore checks the shape).
type persisted struct {
	Expression string          `json:"expression"`
	State      json.RawMessage `json:"state"`
}

func stateFromRedis(b, _ string) []byte {
	var p persisted
	if err := json.Unmarshal([]byte(b), &p); err != nil || len(p.State) == 0 {
		return []byte(b)
	}
	return p.State
}

// stateCommands is the HSET of the state of every stateful calculation evaluated
// since the last write, or nothing.
func (e *engine) stateCommands() [][]any {
	fields := []any{"HSET", keyspace.CalculationState}
	for _, n := range e.g.nodes {
		if !n.dirty {
			continue
		}
		st, err := n.c.Program.State()
		if err != nil {
			e.log.Error("cannot serialise calculation state", "calculation", n.c.Name, "err", err)
			continue
		}
		b, _ := json.Marshal(persisted{Expression: n.c.Expression, State: st})
		fields = append(fields, n.c.Name, string(b))
	}
	if len(fields) == 2 {
		return nil
	}
	return [][]any{fields}
}

// stateSaved marks every calculation's state as written.
func (e *engine) stateSaved() {
	for _, n := range e.g.nodes {
		n.dirty = false
	}
}

// batchBuilder collects the samples of one write, a batch per instance.
type batchBuilder struct {
	byInst map[uint32]int
	list   []statestore.Batch
	n      int
}

func (b *batchBuilder) reset() {
	clear(b.byInst)
	for i := range b.list {
		b.list[i].Samples = b.list[i].Samples[:0]
	}
	b.list = b.list[:0]
	b.n = 0
}

func (b *batchBuilder) add(inst uint32, s point.Sample) {
	i, ok := b.byInst[inst]
	if !ok {
		i = len(b.list)
		b.byInst[inst] = i
		if i < cap(b.list) {
			b.list = b.list[:i+1]
			samples := b.list[i].Samples[:0]
			b.list[i] = instanceBatch(inst)
			b.list[i].Samples = samples
		} else {
			b.list = append(b.list, instanceBatch(inst))
		}
	}
	bt := &b.list[i]
	bt.Samples = append(bt.Samples, s)
	bt.TS = max(bt.TS, s.TS)
	b.n++
}

func (b *batchBuilder) batches() []statestore.Batch { return b.list }

// instanceBatch is the batch of an instance's measurements.
func instanceBatch(id uint32) statestore.Batch {
	return statestore.Batch{
		Key:        keyspace.InstanceMeasurements(id),
		TSKey:      keyspace.InstanceMeasurementTimestamps(id),
		QualityKey: keyspace.InstanceMeasurementQuality(id),
	}
}

var errNoModel = errors.New("no model loaded")
