package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/voltageems/voltage/shared/backoff"
)

// item is one Redis stream entry on its way up; msg is nil when the selection (or
// a decode error) dropped it, and the entry is only acknowledged.
type item struct {
	id  string
	msg *nats.Msg
}

// feed is a Redis stream read in a consumer group, turned into items.
type feed interface {
	// Read returns the next items, waiting a while for new ones; none means none
	// arrived in time.
	Read(ctx context.Context) ([]item, error)
	// Ack acknowledges entries in the group.
	Ack(ctx context.Context, ids ...string) error
	// Rewind makes the next Read start over with the entries read but not
	// acknowledged, after a publish failed.
	Rewind()
}

// inflight is an item whose publish awaits JetStream's ack (fut nil: nothing was
// published, the entry only waits for its turn to be acknowledged).
type inflight struct {
	id     string
	fut    jetstream.PubAckFuture
	stored bool  // fut answered with an ack
	err    error // fut answered with this failure
}

// Counters of one pipeline, read concurrently by /status.
type Counters struct {
	Read      atomic.Uint64 // entries read from Redis
	Published atomic.Uint64 // messages stored by JetStream
	Dropped   atomic.Uint64 // entries the selection dropped (acknowledged, not sent)
	Acked     atomic.Uint64 // entries acknowledged in Redis
	Failures  atomic.Uint64 // publish or acknowledge failures (each followed by a rewind)
}

// pipeline moves one Redis stream into JetStream. Publishes are asynchronous, up
// to window at a time; entries are acknowledged in Redis strictly in the order
// they were read, each only once JetStream has stored its message (or it was
// dropped). When a publish fails, what was stored before it is acknowledged, the
// rest is read again from the group's pending list after a backoff and published
// again; its Nats-Msg-Id makes JetStream store it once.
//
// One goroutine runs a pipeline.
type pipeline struct {
	name   string
	js     jetstream.JetStream
	feed   feed
	window int
	batch  int // the most entries one Read returns: a shorter read means the feed caught up
	log    *slog.Logger
	c      *Counters
	// ensure (re)creates the stream, after a failure: the stream may be gone.
	ensure func(ctx context.Context) error
	// beforeAck, when set, runs before each Redis acknowledgement; an error stops
	// the pipeline there without acknowledging (tests simulate a crash with it).
	beforeAck func(ids []string) error

	q        []inflight
	failures int
}

// errCrash is returned by run when beforeAck stopped it.
var errCrash = errors.New("stopped before acknowledging (simulated crash)")

// run moves entries until ctx is done. On the way out it waits briefly for the
// publishes in flight and acknowledges what was stored.
func (p *pipeline) run(ctx context.Context) error {
	for ctx.Err() == nil {
		items, err := p.feed.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			p.log.Warn("uplink: read from redis failed; retrying", "feed", p.name, "err", err)
			p.pause(ctx)
			continue
		}
		p.c.Read.Add(uint64(len(items)))
		if err := p.publish(ctx, items); err != nil {
			if errors.Is(err, errCrash) {
				return err
			}
			if ctx.Err() != nil {
				break
			}
			p.log.Warn("uplink: publish failed; the entries stay pending in redis and are sent again", "feed", p.name, "err", err)
			if err := p.recover(ctx); errors.Is(err, errCrash) {
				return err
			}
			continue
		}
		p.failures = 0
	}
	// Shutting down: keep what was stored, leave the rest pending.
	stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := p.settle(stop, true); errors.Is(err, errCrash) {
		return err
	}
	return nil
}

// publish sends items, keeping at most window in flight, then acknowledges the
// prefix already stored; when the feed caught up (a short read), it waits for
// all of them, so a quiet site is acknowledged at once, while a backlog is read
// on without waiting.
func (p *pipeline) publish(ctx context.Context, items []item) error {
	for _, it := range items {
		if it.msg == nil {
			p.c.Dropped.Add(1)
			p.q = append(p.q, inflight{id: it.id})
			continue
		}
		for len(p.q) >= p.window {
			if err := p.settleFront(ctx); err != nil {
				return err
			}
		}
		fut, err := p.js.PublishMsgAsync(it.msg)
		if err != nil {
			return fmt.Errorf("publish entry %s on %s: %w", it.id, it.msg.Subject, err)
		}
		p.q = append(p.q, inflight{id: it.id, fut: fut})
	}
	return p.settle(ctx, len(items) < p.batch)
}

// settleFront waits for the oldest quarter of the window and acknowledges
// everything stored in order up to the first one not yet stored: one XACK for
// many entries, not one per ack.
func (p *pipeline) settleFront(ctx context.Context) error {
	for i := range min(len(p.q), max(p.window/4, 1)) {
		if err := p.resolve(ctx, i, true); err != nil {
			return err
		}
	}
	return p.settle(ctx, false)
}

// errNotYet is resolve's answer for a publish still in flight.
var errNotYet = errors.New("not acknowledged yet")

// resolve learns the outcome of the i-th queued publish, waiting for it when wait
// is set: nil once JetStream stored it. A future answers once, so the outcome
// is kept in the queue.
func (p *pipeline) resolve(ctx context.Context, i int, wait bool) error {
	in := &p.q[i]
	if in.fut == nil || in.stored {
		return nil
	}
	if in.err != nil {
		return in.err
	}
	var done <-chan struct{}
	if wait {
		done = ctx.Done()
	}
	select {
	case <-in.fut.Ok():
		in.stored = true
		return nil
	case err := <-in.fut.Err():
		in.err = fmt.Errorf("store entry %s: %w", in.id, err)
		return in.err
	case <-done:
		return ctx.Err()
	default:
		if !wait {
			return errNotYet
		}
	}
	select {
	case <-in.fut.Ok():
		in.stored = true
		return nil
	case err := <-in.fut.Err():
		in.err = fmt.Errorf("store entry %s: %w", in.id, err)
		return in.err
	case <-done:
		return ctx.Err()
	}
}

// settle acknowledges the stored prefix of the queue; with all it first waits
// for every publish in flight. It returns the first failure it met.
func (p *pipeline) settle(ctx context.Context, all bool) error {
	n := 0
	var failed error
	for ; n < len(p.q); n++ {
		if err := p.resolve(ctx, n, all); err != nil {
			if !errors.Is(err, errNotYet) {
				failed = err
			}
			break
		}
	}
	if err := p.ack(ctx, n); err != nil {
		return err
	}
	return failed
}

// ack acknowledges the first n queued entries and removes them from the queue.
func (p *pipeline) ack(ctx context.Context, n int) error {
	if n == 0 {
		return nil
	}
	ids := make([]string, n)
	published := 0
	for i := range n {
		ids[i] = p.q[i].id
		if p.q[i].fut != nil {
			published++
		}
	}
	if p.beforeAck != nil {
		if err := p.beforeAck(ids); err != nil {
			return errCrash
		}
	}
	if err := p.feed.Ack(context.WithoutCancel(ctx), ids...); err != nil {
		return err
	}
	p.c.Published.Add(uint64(published))
	p.c.Acked.Add(uint64(n))
	p.q = append(p.q[:0], p.q[n:]...)
	return nil
}

// recover follows a failure: it acknowledges what was stored before the first
// failed publish, forgets the rest (it stays pending in Redis), waits a backoff,
// makes sure the stream exists and rewinds the feed.
func (p *pipeline) recover(ctx context.Context) error {
	p.c.Failures.Add(1)
	// Each publish in flight ends within the ack timeout.
	n := 0
	for ; n < len(p.q); n++ {
		if p.resolve(ctx, n, true) != nil {
			break
		}
	}
	if err := p.ack(ctx, n); errors.Is(err, errCrash) {
		return err
	}
	p.q = p.q[:0]
	p.pause(ctx)
	if p.ensure != nil && ctx.Err() == nil {
		if err := p.ensure(ctx); err != nil {
			p.log.Warn("uplink: stream not available yet", "feed", p.name, "err", err)
		}
	}
	p.feed.Rewind()
	return nil
}

// pause waits a capped exponential backoff with jitter.
func (p *pipeline) pause(ctx context.Context) {
	p.failures++
	t := time.NewTimer(retryPolicy.Delay(p.failures))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// retryPolicy is the pause after consecutive failures (Delay(n) after n).
var retryPolicy = backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second}
