package hissrv

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/voltageems/voltage/services/hissrv/sample"
	"github.com/voltageems/voltage/shared/backoff"
	"github.com/voltageems/voltage/shared/changefeed"
	"github.com/voltageems/voltage/shared/spool"
	"github.com/voltageems/voltage/shared/statestore"
)

// Backend is one history store. Write returns nil only when the samples are
// durable there; then their entries are acknowledged.
type Backend interface {
	Name() string // "embedded", "influx-main": the consumer group is "hissrv:" + Name
	Write(ctx context.Context, samples []sample.Sample) (WriteResult, error)
	// Tick runs between batches: the embedded store closes tier buckets.
	Tick(ctx context.Context, now time.Time, caughtUp bool) error
	Close() error
}

// WriteResult counts what a Write did with its samples.
type WriteResult struct {
	Written  int // stored
	Repeated int // already stored (a re-delivery), or refused as older than what is stored
}

// pipeline moves voltage:changes into one backend: its own consumer group, its
// own acknowledgements, its own spool. It is owned by one goroutine (run).
type pipeline struct {
	backend  Backend
	feed     *changefeed.Consumer
	spool    *spool.Spool
	metrics  *metrics
	log      *slog.Logger
	maxLen   int64   // the stream's cap
	spillAt  float64 // fraction of maxLen at which the backlog moves to the spool
	batch    int
	backoff  time.Duration // cap of the retry pause
	minPause time.Duration

	up      bool
	backlog int64 // lag + pending, as last measured
	lastLag time.Time
	samples []sample.Sample
}

// spooled is one change entry as kept in the spool.
type spooled struct {
	ID  string             `json:"id"`
	Key string             `json:"key"`
	M   statestore.Message `json:"m"`
}

func (p *pipeline) run(ctx context.Context) {
	p.up = true
	p.metrics.up.WithLabelValues(p.backend.Name()).Set(1)
	readFailures := 0
	for ctx.Err() == nil {
		if p.spool.Stats().Records > 0 {
			if err := p.drainSpool(ctx); err != nil && ctx.Err() == nil {
				p.log.Warn("spool drain failed", "err", err)
			}
			continue
		}
		b, err := p.feed.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if readFailures == 0 { // once per outage
				p.log.Warn("reading the change stream failed; retrying until Redis answers", "err", err)
			}
			p.wait(ctx, p.backoffUpTo(readFailures, redisRetryMax))
			readFailures++
			continue
		}
		if readFailures > 0 {
			p.log.Info("reading the change stream again", "failed_reads", readFailures)
			readFailures = 0
		}
		p.measureBacklog(ctx, false)
		if b.Len() > 0 {
			p.deliver(ctx, b)
		}
		if err := p.backend.Tick(ctx, time.Now(), b.Len() == 0); err != nil && ctx.Err() == nil {
			p.log.Warn("backend tick failed", "err", err)
		}
	}
}

// deliver writes one batch, retrying until it is durable in the backend or, when
// the stream's backlog nears its cap, in the spool. Only then is it acknowledged.
func (p *pipeline) deliver(ctx context.Context, b changefeed.Batch) {
	name := p.backend.Name()
	for _, bad := range b.Bad {
		p.metrics.bad.WithLabelValues(name).Inc()
		p.log.Warn("undecodable change entry skipped", "id", bad.ID, "key", bad.Key, "err", bad.Err)
	}
	p.samples = p.samples[:0]
	for _, e := range b.Entries {
		var err error
		p.samples, err = sample.FromEntry(e, p.samples)
		if err != nil {
			p.metrics.bad.WithLabelValues(name).Inc()
			p.log.Warn("change entry of an unknown hash skipped", "id", e.ID, "key", e.Key)
		}
	}
	for attempt := 0; ; attempt++ {
		err := p.write(ctx, p.samples)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		p.setUp(false, err)
		p.measureBacklog(ctx, true)
		if p.backlog >= p.spillThreshold() {
			if err := p.spill(ctx, b.Entries); err != nil {
				p.log.Error("spilling to the spool failed; the stream keeps the entries", "err", err)
				p.pause(ctx, attempt)
				continue
			}
			p.spillMore(ctx)
			break
		}
		p.waitRetry(ctx, attempt)
	}
	p.ack(ctx, b.IDs())
}

func (p *pipeline) write(ctx context.Context, samples []sample.Sample) error {
	name := p.backend.Name()
	start := time.Now()
	r, err := p.backend.Write(ctx, samples)
	if err != nil {
		return err
	}
	p.metrics.writeSeconds.WithLabelValues(name).Observe(time.Since(start).Seconds())
	p.metrics.written.WithLabelValues(name).Add(float64(r.Written))
	p.metrics.repeated.WithLabelValues(name).Add(float64(r.Repeated))
	if n := len(samples); n > 0 {
		p.metrics.lastSample.WithLabelValues(name).Set(float64(samples[n-1].TS) / 1000)
	}
	p.setUp(true, nil)
	return nil
}

func (p *pipeline) ack(ctx context.Context, ids []string) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		err := p.feed.Ack(ctx, ids...)
		if err == nil {
			p.metrics.acked.WithLabelValues(p.backend.Name()).Add(float64(len(ids)))
			return
		}
		// Not acknowledged: the entries come again after a restart and are
		// recognised as repeats by the backend.
		p.log.Warn("acknowledging failed; retrying", "err", err)
		p.wait(ctx, p.backoffUpTo(attempt, redisRetryMax))
	}
}

func (p *pipeline) spillThreshold() int64 {
	return int64(p.spillAt * float64(p.maxLen))
}

// spill makes entries durable in the spool (the caller then acknowledges them).
func (p *pipeline) spill(ctx context.Context, entries []changefeed.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	recs := make([][]byte, 0, len(entries))
	for _, e := range entries {
		b, err := json.Marshal(spooled{ID: e.ID, Key: e.Key, M: e.Message})
		if err != nil {
			return fmt.Errorf("encode entry %s: %w", e.ID, err)
		}
		recs = append(recs, b)
	}
	if err := p.spool.Append(recs...); err != nil {
		return fmt.Errorf("append %d entries to the spool: %w", len(recs), err)
	}
	p.metrics.spilled.WithLabelValues(p.backend.Name()).Add(float64(len(recs)))
	p.updateSpoolMetrics()
	return nil
}

// spillMore moves the stream's backlog to the spool until it is down to half the
// threshold, so the stream's cap never trims entries this backend still needs.
func (p *pipeline) spillMore(ctx context.Context) {
	p.log.Warn("backend down and the stream backlog nears its cap; moving it to the spool",
		"backlog", p.backlog, "cap", p.maxLen)
	for ctx.Err() == nil && p.backlog > p.spillThreshold()/2 {
		b, err := p.feed.Read(ctx)
		if err != nil || b.Len() == 0 {
			return
		}
		for err := p.spill(ctx, b.Entries); err != nil; err = p.spill(ctx, b.Entries) {
			p.log.Error("spilling to the spool failed", "err", err)
			if !p.pause(ctx, 5) {
				return
			}
		}
		for _, bad := range b.Bad {
			p.metrics.bad.WithLabelValues(p.backend.Name()).Inc()
			p.log.Warn("undecodable change entry skipped", "id", bad.ID, "key", bad.Key, "err", bad.Err)
		}
		p.ack(ctx, b.IDs())
		p.measureBacklog(ctx, true)
	}
}

// drainSpool delivers the spool's records, oldest first, before anything newer
// from the stream.
func (p *pipeline) drainSpool(ctx context.Context) error {
	for attempt := 0; ctx.Err() == nil; {
		recs, err := p.spool.Peek(p.batch)
		if err != nil {
			return fmt.Errorf("read the spool: %w", err)
		}
		if len(recs) == 0 {
			p.updateSpoolMetrics()
			return nil
		}
		p.samples = p.samples[:0]
		for _, r := range recs {
			var e spooled
			if err := json.Unmarshal(r.Data, &e); err != nil {
				p.metrics.bad.WithLabelValues(p.backend.Name()).Inc()
				p.log.Warn("undecodable spool record skipped", "seq", r.Seq, "err", err)
				continue
			}
			p.samples, _ = sample.FromEntry(changefeed.Entry{ID: e.ID, Key: e.Key, Message: e.M}, p.samples)
		}
		if err := p.write(ctx, p.samples); err != nil {
			p.setUp(false, err)
			// The stream fills meanwhile: keep it below the threshold.
			p.measureBacklog(ctx, true)
			if p.backlog >= p.spillThreshold() {
				p.spillMore(ctx)
			}
			p.waitRetry(ctx, attempt)
			attempt++
			continue
		}
		attempt = 0
		if err := p.spool.Commit(recs[len(recs)-1].Seq); err != nil {
			return fmt.Errorf("commit the spool: %w", err)
		}
		p.updateSpoolMetrics()
		if err := p.backend.Tick(ctx, time.Now(), false); err != nil {
			p.log.Warn("backend tick failed", "err", err)
		}
	}
	return ctx.Err()
}

func (p *pipeline) setUp(up bool, err error) {
	if up == p.up {
		return
	}
	p.up = up
	name := p.backend.Name()
	if up {
		p.metrics.up.WithLabelValues(name).Set(1)
		p.log.Info("backend is back; catching up")
		return
	}
	p.metrics.up.WithLabelValues(name).Set(0)
	p.log.Warn("backend write failed; holding acknowledgements", "err", err)
}

// measureBacklog refreshes lag + pending at most once a second (always when forced
// and a second has passed).
func (p *pipeline) measureBacklog(ctx context.Context, force bool) {
	every := 5 * time.Second
	if force {
		every = backlogEvery
	}
	if time.Since(p.lastLag) < every {
		return
	}
	p.lastLag = time.Now()
	lag, pending, err := p.feed.Lag(ctx)
	if err != nil {
		return
	}
	if lag < 0 { // Redis cannot tell: assume the worst the stream can hold
		lag = p.maxLen
	}
	p.backlog = lag + pending
	p.metrics.lag.WithLabelValues(p.backend.Name()).Set(float64(p.backlog))
	p.updateSpoolMetrics()
}

func (p *pipeline) updateSpoolMetrics() {
	st := p.spool.Stats()
	name := p.backend.Name()
	p.metrics.spoolRecords.WithLabelValues(name).Set(float64(st.Records))
	p.metrics.spoolBytes.WithLabelValues(name).Set(float64(st.Bytes))
	p.metrics.spoolDropped.WithLabelValues(name).Set(float64(st.Dropped))
}

// waitRetry waits before the next attempt to write to a backend that is down,
// watching the stream's backlog meanwhile: it returns early when the backlog
// reaches the spill threshold, whatever the backoff.
func (p *pipeline) waitRetry(ctx context.Context, attempt int) {
	deadline := time.Now().Add(p.backoffFor(attempt))
	for ctx.Err() == nil {
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		t := time.NewTimer(min(left, backlogEvery))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		p.measureBacklog(ctx, true)
		if p.backlog >= p.spillThreshold() {
			return
		}
	}
}

// backlogEvery is how often the backlog is measured while a backend is down.
const backlogEvery = 500 * time.Millisecond

// redisRetryMax caps the pause between reads of the change stream while Redis is
// away. Redis is the site's own state store and the backlog waits in it, so
// taking it up promptly matters more than sparing it retries (the backend's cap,
// p.backoff, can be much longer).
const redisRetryMax = 2 * time.Second

func (p *pipeline) backoffFor(attempt int) time.Duration { return p.backoffUpTo(attempt, p.backoff) }

// backoffUpTo is the pause before retry attempt: exponential from minPause,
// capped at limit, with jitter.
func (p *pipeline) backoffUpTo(attempt int, limit time.Duration) time.Duration {
	return backoff.Policy{Min: p.minPause, Max: limit}.Delay(attempt)
}

// pause waits a capped exponential backoff with jitter; false when ctx ended.
func (p *pipeline) pause(ctx context.Context, attempt int) bool {
	return p.wait(ctx, p.backoffFor(attempt))
}

// wait waits d; false when ctx ended.
func (p *pipeline) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
