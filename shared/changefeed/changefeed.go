// Package changefeed reads the durable change log voltage:changes (DESIGN §4) with
// a Redis consumer group, for the services that must not lose a change: hissrv,
// netsrv and the edge bridge.
//
// Delivery is at least once. An entry stays pending in its group until the
// receiver made it durable and called Ack; after a crash the same consumer name
// gets its pending entries again, oldest first, before anything new, so a restart
// resumes from the last acknowledgement — never from the beginning, never with a
// gap. Receivers that must not see duplicates deduplicate by entry ID or make
// their writes idempotent.
//
// One Consumer is owned by one goroutine; it is not safe for concurrent use.
package changefeed

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/redisx"
	"github.com/voltageems/voltage/shared/statestore"
)

// DefaultConsumer is the consumer name used when Options leave it empty. It is
// stable across restarts on purpose: a restarted service must find the entries it
// read but did not acknowledge under the same name.
const DefaultConsumer = "main"

// Options configure a Consumer.
type Options struct {
	// Stream is the stream to read; default keyspace.Changes.
	Stream string
	// Group is the consumer group, one per independent receiver, e.g. "hissrv" or
	// "netsrv:aws1". Required.
	Group string
	// Consumer is this reader's name in the group; default DefaultConsumer.
	Consumer string
	// Count is the most entries one Read returns; default 1000.
	Count int
	// Block is how long Read waits for new entries; default 1 s.
	Block time.Duration
	// StartID is where a group that does not exist yet starts: "0" = the whole
	// stream (default), "$" = only entries added from now on.
	StartID string
	// ClaimIdle: entries pending for longer than this under OTHER consumer names of
	// the group (a renamed or vanished replica) are claimed and re-delivered here; the
	// pending list is checked at start and then every ClaimIdle (at most once per
	// Block). Default 1 minute;
	// negative disables claiming.
	ClaimIdle time.Duration
}

// Entry is one voltage:changes entry: one change batch of one hash.
type Entry struct {
	ID      string             // stream entry id, e.g. "1732573200000-0"
	Key     string             // the hash that changed, e.g. "comsrv:1:T" or "inst:5:M"
	Message statestore.Message // the decoded "m" field
}

// BadEntry is an entry that could not be decoded: a foreign writer, a corrupted
// entry, or one trimmed from the stream while it was pending. It is returned so the
// receiver can count and acknowledge it; it never stops the feed.
type BadEntry struct {
	ID  string
	Key string
	Err error
}

// Batch is what one Read returns.
type Batch struct {
	Entries []Entry
	Bad     []BadEntry
}

// Len is the number of entries in the batch, good and bad.
func (b Batch) Len() int { return len(b.Entries) + len(b.Bad) }

// IDs returns the id of every entry in the batch, good and bad, for Ack.
func (b Batch) IDs() []string {
	ids := make([]string, 0, b.Len())
	for _, e := range b.Entries {
		ids = append(ids, e.ID)
	}
	for _, e := range b.Bad {
		ids = append(ids, e.ID)
	}
	return ids
}

// phase is where a Consumer is in its delivery order.
type phase int

const (
	phaseOwnPending phase = iota // re-deliver this consumer's pending entries
	phaseClaim                   // claim entries of other consumers idle for too long
	phaseNew                     // read new entries
)

// Consumer reads voltage:changes in a consumer group.
type Consumer struct {
	rdb   redis.UniversalClient
	opts  Options
	ready bool   // the group is known to exist
	phase phase  // see phase
	after string // cursor inside the pending list (own) or the claim scan
	// claimed is when the last claim scan finished; another runs every ClaimIdle.
	claimed time.Time
}

// New returns a consumer. Nothing is sent to Redis until the first Read, which
// creates the group (and the stream) if needed.
func New(rdb redis.UniversalClient, opts Options) *Consumer {
	if opts.Stream == "" {
		opts.Stream = keyspace.Changes
	}
	if opts.Consumer == "" {
		opts.Consumer = DefaultConsumer
	}
	if opts.Count <= 0 {
		opts.Count = 1000
	}
	if opts.Block <= 0 {
		opts.Block = time.Second
	}
	if opts.StartID == "" {
		opts.StartID = "0"
	}
	if opts.ClaimIdle == 0 {
		opts.ClaimIdle = time.Minute
	}
	return &Consumer{rdb: rdb, opts: opts, after: "0"}
}

// Group is the consumer group this consumer reads in.
func (c *Consumer) Group() string { return c.opts.Group }

// Read returns the next batch: first this consumer's pending entries (after a
// restart), then entries of other consumers idle past ClaimIdle, then new ones,
// waiting up to Block. An empty batch with a nil error means nothing arrived in
// time. If the group or the stream was deleted, Read re-creates the group at
// StartID and starts over with the pending entries.
func (c *Consumer) Read(ctx context.Context) (Batch, error) {
	if c.opts.Group == "" {
		return Batch{}, errors.New("changefeed: no consumer group given")
	}
	b, err := c.read(ctx)
	if redisx.IsNoGroup(err) {
		c.ready, c.phase, c.after = false, phaseOwnPending, "0"
		b, err = c.read(ctx)
	}
	if err != nil {
		return Batch{}, fmt.Errorf("read %s as %s/%s: %w", c.opts.Stream, c.opts.Group, c.opts.Consumer, err)
	}
	return b, nil
}

func (c *Consumer) read(ctx context.Context) (Batch, error) {
	if !c.ready {
		if err := redisx.EnsureGroup(ctx, c.rdb, c.opts.Stream, c.opts.Group, c.opts.StartID); err != nil {
			return Batch{}, err
		}
		c.ready = true
	}
	for {
		switch c.phase {
		case phaseOwnPending:
			msgs, err := c.readGroup(ctx, c.after, -1)
			if err != nil {
				return Batch{}, err
			}
			if len(msgs) == 0 {
				c.phase, c.after = phaseClaim, "-"
				continue
			}
			c.after = msgs[len(msgs)-1].ID
			return decode(msgs), nil
		case phaseClaim:
			if c.opts.ClaimIdle < 0 {
				c.phase = phaseNew
				continue
			}
			msgs, done, err := c.claim(ctx)
			if err != nil {
				return Batch{}, err
			}
			if done {
				c.phase, c.claimed = phaseNew, time.Now()
			}
			if len(msgs) == 0 {
				continue
			}
			return decode(msgs), nil
		default:
			if c.opts.ClaimIdle >= 0 && time.Since(c.claimed) >= max(c.opts.ClaimIdle, c.opts.Block) {
				c.phase, c.after = phaseClaim, "-"
				continue
			}
			msgs, err := c.readGroup(ctx, ">", c.opts.Block)
			if err != nil {
				return Batch{}, err
			}
			return decode(msgs), nil
		}
	}
}

// claim takes over entries that other consumers of the group read more than
// ClaimIdle ago and never acknowledged, one page of the pending list at a time.
// Entries this consumer holds are left alone: the own-pending phase delivered them.
func (c *Consumer) claim(ctx context.Context) (msgs []redis.XMessage, done bool, err error) {
	pending, err := c.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: c.opts.Stream, Group: c.opts.Group, Idle: c.opts.ClaimIdle,
		Start: c.after, End: "+", Count: int64(c.opts.Count),
	}).Result()
	if err != nil {
		return nil, false, err
	}
	if len(pending) == 0 {
		return nil, true, nil
	}
	c.after = "(" + pending[len(pending)-1].ID
	var ids []string
	for _, p := range pending {
		if p.Consumer != c.opts.Consumer {
			ids = append(ids, p.ID)
		}
	}
	if len(ids) == 0 {
		return nil, false, nil
	}
	msgs, err = c.rdb.XClaim(ctx, &redis.XClaimArgs{
		Stream: c.opts.Stream, Group: c.opts.Group, Consumer: c.opts.Consumer,
		MinIdle: c.opts.ClaimIdle, Messages: ids,
	}).Result()
	return msgs, false, err
}

// readGroup runs XREADGROUP from id; block < 0 does not block.
func (c *Consumer) readGroup(ctx context.Context, id string, block time.Duration) ([]redis.XMessage, error) {
	streams, err := c.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: c.opts.Group, Consumer: c.opts.Consumer,
		Streams: []string{c.opts.Stream, id}, Count: int64(c.opts.Count), Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(streams) == 0 {
		return nil, nil
	}
	return streams[0].Messages, nil
}

// Ack acknowledges entries after the receiver made them durable.
func (c *Consumer) Ack(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := c.rdb.XAck(ctx, c.opts.Stream, c.opts.Group, ids...).Err(); err != nil {
		return fmt.Errorf("ack %d entries of %s in %s: %w", len(ids), c.opts.Stream, c.opts.Group, err)
	}
	return nil
}

// Lag reports how many entries of the stream the group has not read yet and how
// many it read without acknowledging. Lag is -1 when Redis cannot tell (after
// entries were deleted from the middle of the stream).
func (c *Consumer) Lag(ctx context.Context) (lag, pending int64, err error) {
	groups, err := c.rdb.XInfoGroups(ctx, c.opts.Stream).Result()
	if err != nil {
		return 0, 0, fmt.Errorf("lag of %s in %s: %w", c.opts.Group, c.opts.Stream, err)
	}
	for _, g := range groups {
		if g.Name == c.opts.Group {
			return g.Lag, g.Pending, nil
		}
	}
	return 0, 0, fmt.Errorf("lag of %s in %s: no such group", c.opts.Group, c.opts.Stream)
}

func decode(msgs []redis.XMessage) Batch {
	var b Batch
	for _, m := range msgs {
		key, _ := m.Values["key"].(string)
		if len(m.Values) == 0 {
			b.Bad = append(b.Bad, BadEntry{ID: m.ID, Err: errors.New("entry was trimmed from the stream before it was acknowledged")})
			continue
		}
		raw, ok := m.Values["m"].(string)
		if !ok || key == "" {
			b.Bad = append(b.Bad, BadEntry{ID: m.ID, Key: key, Err: errors.New(`entry lacks the "key" or "m" field`)})
			continue
		}
		msg, err := statestore.DecodeMessage([]byte(raw))
		if err != nil {
			b.Bad = append(b.Bad, BadEntry{ID: m.ID, Key: key, Err: err})
			continue
		}
		b.Entries = append(b.Entries, Entry{ID: m.ID, Key: key, Message: msg})
	}
	return b
}
