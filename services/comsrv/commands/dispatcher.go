package commands

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/redisx"
)

// Dispatcher reads the command streams of every running channel with one blocking
// XREADGROUP on one connection, and hands each entry to its channel's Worker. One
// reader for all channels keeps a site with hundreds of channels from tying up a
// Redis connection per channel.
type Dispatcher struct {
	Redis *redis.Client
	Name  string // consumer name in the group
	Log   *slog.Logger

	mu      sync.Mutex
	workers map[uint32]*Worker
	changed chan struct{} // closed and replaced when the set of workers changes
}

// NewDispatcher prepares a dispatcher; nothing is read until Run.
func NewDispatcher(rdb *redis.Client, name string, log *slog.Logger) *Dispatcher {
	return &Dispatcher{Redis: rdb, Name: name, Log: log, workers: map[uint32]*Worker{}, changed: make(chan struct{})}
}

func (d *Dispatcher) register(ch uint32, w *Worker) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.workers[ch] = w
	close(d.changed)
	d.changed = make(chan struct{})
}

func (d *Dispatcher) unregister(ch uint32, w *Worker) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.workers[ch] == w {
		delete(d.workers, ch)
		close(d.changed)
		d.changed = make(chan struct{})
	}
}

// snapshot returns the streams to read, with the read IDs appended as XREADGROUP
// wants them, and a channel closed on the next change.
func (d *Dispatcher) snapshot() ([]string, map[string]*Worker, <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ids := make([]uint32, 0, len(d.workers))
	for id := range d.workers {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	streams := make([]string, 0, 2*len(ids))
	byStream := make(map[string]*Worker, len(ids))
	for _, id := range ids {
		s := keyspace.ChannelCommands(id)
		streams = append(streams, s)
		byStream[s] = d.workers[id]
	}
	for range ids {
		streams = append(streams, ">")
	}
	return streams, byStream, d.changed
}

// blockFor bounds one blocking read, so a channel added by a reload is read from
// within that time.
const blockFor = time.Second

// Run reads until ctx is done.
func (d *Dispatcher) Run(ctx context.Context) error {
	wait := 500 * time.Millisecond
	failing := false
	for ctx.Err() == nil {
		streams, byStream, changed := d.snapshot()
		if len(byStream) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-changed:
				continue
			}
		}
		res, err := d.Redis.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: keyspace.CommandGroup, Consumer: d.Name, Streams: streams, Count: 64, Block: blockFor,
		}).Result()
		switch {
		case err == nil || errors.Is(err, redis.Nil):
			if failing {
				d.Log.Info("reading command streams again")
				failing, wait = false, 500*time.Millisecond
			}
		case ctx.Err() != nil:
			return nil
		default:
			if redisx.IsNoGroup(err) {
				// Redis lost its data (restart without persistence): the groups are gone.
				d.recreateGroups(ctx, byStream)
			}
			if !failing {
				d.Log.Warn("cannot read command streams; retrying", "err", err)
				failing = true
			}
			if !sleep(ctx, wait) {
				return nil
			}
			wait = min(wait*2, 10*time.Second)
			continue
		}
		for _, s := range res {
			w := byStream[s.Stream]
			if w == nil {
				continue // the channel stopped meanwhile; its entries stay pending
			}
			for _, m := range s.Messages {
				w.deliver(m)
			}
		}
	}
	return nil
}

func (d *Dispatcher) recreateGroups(ctx context.Context, byStream map[string]*Worker) {
	for s := range byStream {
		if err := redisx.EnsureGroup(ctx, d.Redis, s, keyspace.CommandGroup, "0"); err != nil {
			d.Log.Warn("cannot recreate consumer group", "stream", s, "err", err)
		}
	}
}
