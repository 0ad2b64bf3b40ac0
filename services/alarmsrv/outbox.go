package alarmsrv

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/notify"
	"github.com/voltageems/voltage/shared/redisx"
	"github.com/voltageems/voltage/shared/service"
	"github.com/voltageems/voltage/shared/webhook"
)

// consumerName names alarmsrv in its consumer groups. One alarmsrv runs per site,
// and the name stays the same across restarts so it finds its pending entries.
const consumerName = "alarmsrv"

// sender delivers a notification over one channel.
type sender interface {
	send(ctx context.Context, n Notification) error
}

// permanentError marks a refusal that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func newSender(c *Channel) (sender, error) {
	switch c.Type {
	case ChannelWebhook:
		secret := c.Doc.Secret
		if c.Doc.SecretEnv != "" {
			secret = os.Getenv(c.Doc.SecretEnv)
		}
		wc, err := webhook.New(webhook.Config{URL: c.Doc.URL, Secret: secret, Headers: c.Doc.Headers,
			Timeout: c.timeout, MaxAttempts: c.Doc.MaxAttempts}, nil)
		if err != nil {
			return nil, err
		}
		return webhookSender{wc}, nil
	case ChannelEmail:
		return newMailer(c)
	}
	return nil, errors.New("unknown channel type " + c.Type)
}

type webhookSender struct{ c *webhook.Client }

func (w webhookSender) send(ctx context.Context, n Notification) error {
	err := w.c.PostJSON(ctx, n.Delivery, n)
	var we *webhook.Error
	if errors.As(err, &we) && we.Permanent {
		return &permanentError{err}
	}
	return err
}

type outboxEntry struct {
	id      string
	channel string
	n       Notification
}

// outbox delivers alarm:outbox: one worker per channel, in order, each entry
// acknowledged (and deleted) only after its channel accepted it or refused it
// for good.
type outbox struct {
	rdb     redis.UniversalClient
	log     *slog.Logger
	metrics *metrics
	ready   atomic.Bool

	mu       sync.Mutex
	channels map[string]*Channel
	workers  map[string]chan outboxEntry
	inflight map[string]bool
	wg       sync.WaitGroup

	retryMax time.Duration
}

func newOutbox(rdb redis.UniversalClient, log *slog.Logger, mt *metrics) *outbox {
	return &outbox{rdb: rdb, log: log, metrics: mt, channels: map[string]*Channel{},
		workers: map[string]chan outboxEntry{}, inflight: map[string]bool{}, retryMax: time.Minute}
}

// setChannels installs the channels of a (re)loaded rule set.
func (o *outbox) setChannels(chs []*Channel) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.channels = map[string]*Channel{}
	for _, c := range chs {
		o.channels[c.Name] = c
	}
}

func (o *outbox) channel(name string) *Channel {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.channels[name]
}

// run reads the outbox until ctx is done: first this consumer's pending entries
// (delivered before a restart but not acknowledged), then new ones.
func (o *outbox) run(ctx context.Context) {
	defer o.wg.Wait()
	readStream(ctx, o.rdb, o.log, keyspace.AlarmOutbox, keyspace.OutboxGroup, &o.ready, func(msgs []redis.XMessage) error {
		for _, m := range msgs {
			ch, _ := m.Values["channel"].(string)
			raw, _ := m.Values["n"].(string)
			var n Notification
			if err := json.Unmarshal([]byte(raw), &n); err != nil || ch == "" {
				o.log.Warn("dropping an unreadable outbox entry", "id", m.ID, "err", err)
				o.ack(ctx, m.ID)
				continue
			}
			n.Delivery = m.ID
			o.dispatch(ctx, outboxEntry{id: m.ID, channel: ch, n: n})
		}
		return nil
	})
}

func (o *outbox) dispatch(ctx context.Context, e outboxEntry) {
	o.mu.Lock()
	if o.inflight[e.id] {
		o.mu.Unlock()
		return
	}
	o.inflight[e.id] = true
	q := o.workers[e.channel]
	if q == nil {
		q = make(chan outboxEntry, 1024)
		o.workers[e.channel] = q
		o.wg.Add(1)
		go func() { defer o.wg.Done(); o.work(ctx, e.channel, q) }()
	}
	o.mu.Unlock()
	select {
	case q <- e:
	case <-ctx.Done():
	}
}

// work delivers one channel's entries in order.
func (o *outbox) work(ctx context.Context, name string, q chan outboxEntry) {
	var (
		cur  *Channel
		snd  sender
		rate *bucket
	)
	for {
		var e outboxEntry
		select {
		case <-ctx.Done():
			return
		case e = <-q:
		}
		c := o.channel(name)
		if c == nil {
			o.log.Warn("dropping a notification for a channel that no longer exists", "channel", name, "id", e.id)
			o.metrics.notifications.WithLabelValues(name, "dropped_unknown_channel").Inc()
			o.done(ctx, e.id)
			continue
		}
		if c != cur {
			s, err := newSender(c)
			if err != nil {
				o.log.Error("cannot build the notification channel", "channel", name, "err", err)
				o.done(ctx, e.id)
				continue
			}
			cur, snd = c, s
			if c.rateCount > 0 {
				rate = &bucket{count: c.rateCount, per: c.ratePer}
			} else {
				rate = nil
			}
		}
		if !rate.take(time.Now()) {
			o.metrics.notifications.WithLabelValues(name, "rate_limited").Inc()
			o.log.Warn("notification over the channel's rate limit; dropped", "channel", name, "title", e.n.Title)
			o.done(ctx, e.id)
			continue
		}
		wait := time.Second
		for {
			err := snd.send(ctx, e.n)
			if err == nil {
				o.metrics.notifications.WithLabelValues(name, "sent").Inc()
				o.done(ctx, e.id)
				break
			}
			if ctx.Err() != nil {
				return // stays pending; delivered after the restart
			}
			var pe *permanentError
			if errors.As(err, &pe) {
				o.metrics.notifications.WithLabelValues(name, "refused").Inc()
				o.log.Error("notification refused by the channel; dropped", "channel", name, "id", e.id, "err", err)
				o.done(ctx, e.id)
				break
			}
			o.metrics.notifications.WithLabelValues(name, "retry").Inc()
			o.log.Warn("notification not delivered; retrying", "channel", name, "id", e.id, "err", err, "retry_in", wait)
			if !service.Sleep(ctx, wait) {
				return
			}
			wait = min(wait*2, o.retryMax)
		}
	}
}

// done acknowledges and deletes a finished entry, retrying while Redis is away
// (an entry left pending would be sent again after a restart).
func (o *outbox) done(ctx context.Context, id string) {
	wait := 100 * time.Millisecond
	for {
		pipe := o.rdb.TxPipeline()
		pipe.XAck(ctx, keyspace.AlarmOutbox, keyspace.OutboxGroup, id)
		pipe.XDel(ctx, keyspace.AlarmOutbox, id)
		if _, err := pipe.Exec(ctx); err == nil || ctx.Err() != nil {
			break
		}
		if !service.Sleep(ctx, wait) {
			break
		}
		wait = min(wait*2, 5*time.Second)
	}
	o.mu.Lock()
	delete(o.inflight, id)
	o.mu.Unlock()
}

func (o *outbox) ack(ctx context.Context, id string) { o.done(ctx, id) }

// readStream reads a stream with a consumer group until ctx is done, handing
// batches to handle: first this consumer's pending entries, then new ones. A
// handle error makes it read the pending entries again after a pause.
func readStream(ctx context.Context, rdb redis.UniversalClient, log *slog.Logger, stream, group string, ready *atomic.Bool, handle func([]redis.XMessage) error) {
	start := "0"
	wait := 200 * time.Millisecond
	groupOK := false
	for ctx.Err() == nil {
		if !groupOK {
			if err := redisx.EnsureGroup(ctx, rdb, stream, group, "0"); err != nil {
				ready.Store(false)
				if !service.Sleep(ctx, wait) {
					return
				}
				wait = min(wait*2, 5*time.Second)
				continue
			}
			groupOK, start = true, "0"
		}
		block := time.Duration(-1)
		if start == ">" {
			block = 2 * time.Second
		}
		res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: consumerName,
			Streams: []string{stream, start}, Count: 256, Block: block}).Result()
		if errors.Is(err, redis.Nil) {
			ready.Store(true)
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if redisx.IsNoGroup(err) {
				groupOK = false
			}
			if ready.Swap(false) {
				log.Warn("cannot read the stream; retrying", "stream", stream, "err", err)
			}
			if !service.Sleep(ctx, wait) {
				return
			}
			wait = min(wait*2, 5*time.Second)
			continue
		}
		wait = 200 * time.Millisecond
		ready.Store(true)
		var msgs []redis.XMessage
		if len(res) > 0 {
			msgs = res[0].Messages
		}
		if start != ">" {
			if len(msgs) == 0 {
				start = ">"
				continue
			}
			start = msgs[len(msgs)-1].ID
		}
		if err := handle(msgs); err != nil {
			log.Warn("cannot handle stream entries; reading them again", "stream", stream, "err", err)
			start = "0"
			if !service.Sleep(ctx, time.Second) {
				return
			}
		}
	}
}

// requests turns alarm:notify entries into outbox entries, routed like alarm
// notifications, and acknowledges each in the same transaction.
type requests struct {
	rdb    redis.UniversalClient
	log    *slog.Logger
	site   string
	router func() *router
	ready  atomic.Bool
}

func (q *requests) run(ctx context.Context) {
	readStream(ctx, q.rdb, q.log, keyspace.NotificationRequests, keyspace.NotificationGroup, &q.ready, func(msgs []redis.XMessage) error {
		if len(msgs) == 0 {
			return nil
		}
		rt := q.router()
		if rt == nil {
			return errors.New("the rules are not loaded yet")
		}
		pipe := q.rdb.TxPipeline()
		now := time.Now()
		for _, m := range msgs {
			req, err := notify.Parse(m.Values)
			if err == nil {
				err = req.Validate()
			}
			if err != nil {
				q.log.Warn("dropping an invalid notification request", "id", m.ID, "err", err)
			} else {
				if req.TS == 0 {
					req.TS = now.UnixMilli()
				}
				n := requestNotification(q.site, req)
				for _, c := range rt.route(n, now) {
					addOutbox(ctx, pipe, c.Name, n)
				}
			}
			pipe.XAck(ctx, keyspace.NotificationRequests, keyspace.NotificationGroup, m.ID)
		}
		_, err := pipe.Exec(ctx)
		return err
	})
}
