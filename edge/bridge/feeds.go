package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/changefeed"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/redisx"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/uplink"
)

// Group is the bridge's consumer group on voltage:changes and on alarm:events.
const Group = "edge-bridge"

// Consumer is the bridge's name in its groups: stable across restarts, so a
// restarted edge finds the entries it read but did not acknowledge.
const Consumer = "edge"

// changesFeed reads voltage:changes and applies the selection in force.
type changesFeed struct {
	b    *Bridge
	opts changefeed.Options
	cf   *changefeed.Consumer
	sel  *selector
	gen  uint64 // the bridge's reload generation sel was built for
}

func newChangesFeed(b *Bridge, count int, block time.Duration) *changesFeed {
	f := &changesFeed{b: b, opts: changefeed.Options{Group: Group, Consumer: Consumer, Count: count, Block: block}}
	f.Rewind()
	return f
}

func (f *changesFeed) Read(ctx context.Context) ([]item, error) {
	b, err := f.cf.Read(ctx)
	if err != nil {
		return nil, err
	}
	// After the read, which may have waited: what is read after a reload is
	// judged by the new selection.
	if gen := f.b.generation.Load(); gen != f.gen {
		f.gen, f.sel = gen, newSelector(f.b.site, f.b.Config().Uplink)
	}
	items := make([]item, 0, b.Len())
	for i := range b.Entries {
		e := &b.Entries[i]
		it := item{id: e.ID}
		if subject, m, ok := f.sel.apply(e.Key, &e.Message); ok {
			data, err := encodeChange(m)
			if err != nil { // a value JSON cannot carry; statestore never writes one
				f.b.log.Warn("uplink: change batch not encodable; dropped", "id", e.ID, "key", e.Key, "err", err)
			} else {
				it.msg = upMsg(subject, f.b.site, uplink.SourceChanges, e.ID, e.Key, data)
			}
		}
		items = append(items, it)
	}
	for _, bad := range b.Bad {
		f.b.log.Warn("uplink: undecodable voltage:changes entry; acknowledged and skipped", "id", bad.ID, "key", bad.Key, "err", bad.Err)
		items = append(items, item{id: bad.ID})
	}
	return items, nil
}

func (f *changesFeed) Ack(ctx context.Context, ids ...string) error { return f.cf.Ack(ctx, ids...) }

// Rewind starts the group over from its pending entries and forgets what the
// deadband and sampling remember: entries read again must be judged as new, or a
// value whose publish failed could be filtered out against itself.
func (f *changesFeed) Rewind() {
	f.cf = changefeed.New(f.b.o.Redis, f.opts)
	f.gen = f.b.generation.Load()
	f.sel = newSelector(f.b.site, f.b.Config().Uplink)
}

// upMsg builds an uplink message with its headers (shared/uplink).
func upMsg(subject, site, source, entry, key string, data []byte) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(uplink.HeaderMsgID, uplink.MsgID(site, source, entry))
	m.Header.Set(uplink.HeaderEntry, entry)
	if key != "" {
		m.Header.Set(uplink.HeaderKey, key)
	}
	return m
}

// alarmsFeed reads alarm:events in the bridge's group: first its own pending
// entries (after a restart or a rewind), then new ones.
type alarmsFeed struct {
	rdb     redis.UniversalClient
	site    string
	count   int64
	block   time.Duration
	ready   bool
	pending bool   // still re-reading own pending entries
	after   string // cursor in the pending list
}

func newAlarmsFeed(rdb redis.UniversalClient, site string, count int, block time.Duration) *alarmsFeed {
	f := &alarmsFeed{rdb: rdb, site: site, count: int64(count), block: block}
	f.Rewind()
	return f
}

func (f *alarmsFeed) Rewind() { f.pending, f.after = true, "0" }

func (f *alarmsFeed) Read(ctx context.Context) ([]item, error) {
	msgs, err := f.read(ctx)
	if redisx.IsNoGroup(err) { // the stream or the group was deleted
		f.ready = false
		f.Rewind()
		msgs, err = f.read(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s as %s: %w", keyspace.AlarmEvents, Group, err)
	}
	items := make([]item, len(msgs))
	for i, m := range msgs {
		items[i] = item{id: m.ID}
		if len(m.Values) == 0 {
			continue // trimmed while pending: nothing left to send
		}
		ev := uplink.AlarmEvent{Site: f.site, ID: m.ID, Fields: make(map[string]string, len(m.Values))}
		for k, v := range m.Values {
			ev.Fields[k] = fmt.Sprint(v)
		}
		data, err := json.Marshal(ev)
		if err != nil {
			continue
		}
		items[i].msg = upMsg(subjects.AlarmUp(f.site), f.site, uplink.SourceAlarms, m.ID, "", data)
	}
	return items, nil
}

func (f *alarmsFeed) read(ctx context.Context) ([]redis.XMessage, error) {
	if !f.ready {
		if err := redisx.EnsureGroup(ctx, f.rdb, keyspace.AlarmEvents, Group, "0"); err != nil {
			return nil, err
		}
		f.ready = true
	}
	if f.pending {
		msgs, err := f.readGroup(ctx, f.after, -1)
		if err != nil || len(msgs) > 0 {
			if len(msgs) > 0 {
				f.after = msgs[len(msgs)-1].ID
			}
			return msgs, err
		}
		f.pending = false
	}
	return f.readGroup(ctx, ">", f.block)
}

func (f *alarmsFeed) readGroup(ctx context.Context, id string, block time.Duration) ([]redis.XMessage, error) {
	streams, err := f.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: Group, Consumer: Consumer, Streams: []string{keyspace.AlarmEvents, id},
		Count: f.count, Block: block,
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

func (f *alarmsFeed) Ack(ctx context.Context, ids ...string) error {
	if err := f.rdb.XAck(ctx, keyspace.AlarmEvents, Group, ids...).Err(); err != nil {
		return fmt.Errorf("ack %d entries of %s: %w", len(ids), keyspace.AlarmEvents, err)
	}
	return nil
}
