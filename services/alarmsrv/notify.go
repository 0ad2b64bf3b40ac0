package alarmsrv

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/notify"
)

// Notification is what a channel sends: the JSON body of a webhook, the content
// of an e-mail.
type Notification struct {
	Site     string `json:"site"`
	Event    string `json:"event"` // raised, cleared, escalated, flapping, or request
	Severity string `json:"severity"`
	Title    string `json:"title"`
	Message  string `json:"message"`
	Instance string `json:"instance,omitempty"`
	Source   string `json:"source,omitempty"`
	TS       int64  `json:"ts"`
	Alarm    *Alarm `json:"alarm,omitempty"`
	// Delivery is the outbox entry id: the same on every retry (a receiver drops
	// duplicates with it).
	Delivery string `json:"delivery,omitempty"`
}

func alarmNotification(site string, ev *Event) Notification {
	a := ev.Alarm
	what := ev.Type
	if ev.Type == EventFlapping {
		what = "is flapping"
	}
	return Notification{Site: site, Event: ev.Type, Severity: a.Severity, Instance: a.Instance, Source: a.Source, TS: ev.TS,
		Title: fmt.Sprintf("[%s] %s %s", strings.ToUpper(a.Severity), a.Name, what), Message: a.Message, Alarm: &a}
}

func requestNotification(site string, r notify.Request) Notification {
	return Notification{Site: site, Event: EventRequest, Severity: r.Severity, Title: r.Title, Message: r.Message,
		Instance: r.Instance, Source: r.Source, TS: r.TS}
}

func addOutbox(ctx context.Context, pipe redis.Pipeliner, channel string, n Notification) {
	b, _ := json.Marshal(n)
	pipe.XAdd(ctx, &redis.XAddArgs{Stream: keyspace.AlarmOutbox, MaxLen: outboxMaxLen, Approx: true,
		Values: map[string]any{"channel": channel, "n": string(b)}})
}

// outboxMaxLen caps the outbox: far more than a channel that is down for a day
// collects under a rate limit.
const outboxMaxLen = 100_000

// Channel is a configured notification channel.
type Channel struct {
	Doc    ChannelDoc
	Name   string
	Type   string
	Events []string

	quiet     bool
	quietFrom int // minutes after midnight
	quietTo   int
	quietLoc  *time.Location
	rateCount int
	ratePer   time.Duration
	timeout   time.Duration
}

// wants reports whether the channel routes n (severity, instance, event).
func (c *Channel) wants(n Notification) bool {
	if len(c.Doc.Severities) > 0 && !slices.Contains(c.Doc.Severities, n.Severity) {
		return false
	}
	if len(c.Doc.Instances) > 0 && !slices.Contains(c.Doc.Instances, n.Instance) {
		return false
	}
	return slices.Contains(c.Events, n.Event)
}

// inQuietHours reports whether n falls in the channel's quiet hours at now.
func (c *Channel) inQuietHours(n Notification, now time.Time) bool {
	if !c.quiet || slices.Contains(c.Doc.QuietHours.Except, n.Severity) {
		return false
	}
	t := now.In(c.quietLoc)
	m := t.Hour()*60 + t.Minute()
	if c.quietFrom <= c.quietTo {
		return m >= c.quietFrom && m < c.quietTo
	}
	return m >= c.quietFrom || m < c.quietTo // across midnight
}

// router picks the channels of a notification.
type router struct {
	channels []*Channel
	mu       sync.Mutex
	quieted  int
}

func newRouter(chs []*Channel) *router { return &router{channels: chs} }

func (r *router) route(n Notification, now time.Time) []*Channel {
	var out []*Channel
	for _, c := range r.channels {
		if !c.wants(n) {
			continue
		}
		if c.inQuietHours(n, now) {
			r.mu.Lock()
			r.quieted++
			r.mu.Unlock()
			continue
		}
		out = append(out, c)
	}
	return out
}

// bucket is a channel's rate limit: at most count notifications per period.
type bucket struct {
	count  int
	per    time.Duration
	tokens float64
	last   time.Time
}

func (b *bucket) take(now time.Time) bool {
	if b == nil || b.count == 0 {
		return true
	}
	if b.last.IsZero() {
		b.tokens, b.last = float64(b.count), now
	}
	b.tokens = min(float64(b.count), b.tokens+now.Sub(b.last).Seconds()*float64(b.count)/b.per.Seconds())
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
