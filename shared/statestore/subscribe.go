package statestore

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/backoff"
)

// Event is what Subscribe delivers: a change message, or a resync marker.
type Event struct {
	// Resync is set after every complete (re)subscription: pub/sub may have
	// dropped messages while the subscriber was away, so it must read the hashes
	// now (DESIGN §4). It carries no message.
	Resync bool
	// Channel is the pub/sub channel the message came on: the hash that changed.
	Channel string
	// Payload is the change message; decode it with DecodeMessage.
	Payload string
	// Received is when the message was taken off the connection.
	Received time.Time
}

// subscribeRetry paces the retries of a lost subscription: 100 ms doubling up
// to 2 s, jittered. Redis is the site's own state store: taking the changes up
// again promptly matters more than sparing it retries (a 5 s cap made modsrv and
// alarmsrv miss seconds of changes after a Redis restart, docs/chaos.md).
var subscribeRetry = backoff.Policy{Min: 100 * time.Millisecond, Max: 2 * time.Second}

// Subscribe subscribes to the change channels (hash keys such as comsrv:1:T or
// inst:5:M) and calls deliver for every event, in order, on the calling
// goroutine: a Resync after each complete (re)subscription, then the messages.
// A lost connection is re-established with capped backoff; up reports the state
// (true once subscribed, false when the subscription is lost) and may be nil.
// Subscribe returns when ctx is done or deliver returns false. Without channels
// it delivers one Resync and returns.
func Subscribe(ctx context.Context, rdb redis.UniversalClient, channels []string, log *slog.Logger,
	up func(bool), deliver func(Event) bool) {
	if up == nil {
		up = func(bool) {}
	}
	if len(channels) == 0 {
		up(true)
		deliver(Event{Resync: true, Received: time.Now()})
		return
	}
	ps := rdb.Subscribe(ctx, channels...)
	defer ps.Close()
	// Receive does not return when ctx ends; closing the subscription makes it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	failures, subscribed := 0, false
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if subscribed {
				subscribed = false
				up(false)
				log.Warn("lost the change subscription; resubscribing", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(subscribeRetry.Delay(failures)):
			}
			failures++
			continue
		}
		var ev Event
		switch m := msg.(type) {
		case *redis.Subscription:
			// go-redis re-subscribes every channel after a reconnect; the resync
			// comes once all of them are back.
			if m.Kind != "subscribe" || m.Count != len(channels) {
				continue
			}
			failures, subscribed = 0, true
			up(true)
			ev = Event{Resync: true, Received: time.Now()}
		case *redis.Message:
			ev = Event{Channel: m.Channel, Payload: m.Payload, Received: time.Now()}
		default:
			continue
		}
		if !deliver(ev) {
			return
		}
	}
}
