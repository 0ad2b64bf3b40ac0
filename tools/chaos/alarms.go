package chaos

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/uplink"
)

// The counted alarm: while it counts, the producer also toggles the counter
// channel's signal point 2 (pv_fault) every value, and PrepareSite adds a digital
// alarm rule on it with flapping suppression off. Every rise of the signal that
// comsrv read is a raise alarmsrv should evaluate; every event alarmsrv wrote to
// alarm:events must reach the cloud.
const (
	AlarmRule     = "chaos_counter_fault"
	alarmSignal   = "comsrv:1:S"
	alarmField    = "2"
	alarmSignalPt = 2
)

// alarmRuleYAML is the rule PrepareSite appends to alarmsrv/alarms.yaml.
// Severity warning: the demo's webhook notifies critical, major and minor only.
const alarmRuleYAML = `
  - id: ` + AlarmRule + `
    name: Chaos suite counted fault
    kind: digital
    channel: 1
    type: S
    point: 2
    state: 1
    severity: warning
`

// AlarmResult counts one scenario's alarm path.
type AlarmResult struct {
	// Rises are rises of the signal voltage:changes holds (what comsrv read).
	Rises int
	// Raised and Cleared are the rule's events in alarm:events.
	Raised, Cleared int
	// NotEvaluated are rises no raise followed: alarmsrv was away (it evaluates
	// the state it finds when it comes back, not the transitions it missed).
	NotEvaluated int
	// AtCloud are the events of alarm:events that reached the hub's stream of the
	// site; LostAtCloud those that did not (DESIGN §11: must be 0).
	AtCloud, LostAtCloud int
	// Recovery is the end of the fault → the first raise after it (-1: none).
	Recovery time.Duration
}

// alarmCounter reads the alarm path's three places: voltage:changes, alarm:events
// and the hub's JetStream stream of the site.
type alarmCounter struct {
	rdb  *redis.Client
	hub  string // the hub's NATS client address
	site string
}

// streamID is the first Redis stream entry id at or after t.
func streamID(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) + "-0" }

func idTime(id string) time.Time {
	ms, _ := strconv.ParseInt(strings.SplitN(id, "-", 2)[0], 10, 64)
	return time.UnixMilli(ms)
}

// rises counts the signal's 0→1 changes in voltage:changes from since on.
func (a alarmCounter) rises(ctx context.Context, since time.Time) (int, error) {
	n, last := 0, -1.0
	err := eachChange(ctx, a.rdb, streamID(since), alarmSignal, alarmField, func(v float64) {
		if v == 1 && last == 0 {
			n++
		}
		last = v
	})
	return n, err
}

// events lists the rule's raise and clear events in alarm:events from since on.
func (a alarmCounter) events(ctx context.Context, since time.Time) (raised, cleared []string, err error) {
	err = xrangeAll(ctx, a.rdb, keyspace.AlarmEvents, streamID(since), func(m redis.XMessage) {
		if rule, _ := m.Values["rule"].(string); rule != AlarmRule {
			return
		}
		switch typ, _ := m.Values["type"].(string); typ {
		case "raised":
			raised = append(raised, m.ID)
		case "cleared":
			cleared = append(cleared, m.ID)
		}
	})
	return raised, cleared, err
}

// atCloud is the set of alarm:events entry ids the hub's stream of the site holds
// from since on.
func (a alarmCounter) atCloud(ctx context.Context, since time.Time) (map[string]bool, error) {
	nc, err := nats.Connect("nats://"+a.hub, nats.Name("voltchaos"), nats.Timeout(3*time.Second))
	if err != nil {
		return nil, fmt.Errorf("hub nats %s: %w", a.hub, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, subjects.HubStream(a.site))
	if err != nil {
		return nil, fmt.Errorf("hub stream %s: %w", subjects.HubStream(a.site), err)
	}
	start := since.Add(-time.Second)
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subjects.AlarmUp(a.site)},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy, OptStartTime: &start,
	})
	if err != nil {
		return nil, fmt.Errorf("read hub stream %s: %w", subjects.HubStream(a.site), err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for left := info.NumPending; left > 0; {
		batch, err := cons.Fetch(int(min(left, 1000)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			if e := m.Headers().Get(uplink.HeaderEntry); e != "" {
				out[e] = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, err
		}
		if got == 0 {
			return nil, fmt.Errorf("hub stream %s: %d messages pending but none delivered", subjects.HubStream(a.site), left)
		}
		left -= uint64(got)
	}
	return out, nil
}

// count tallies the alarm path of a run that started at since and whose fault
// ended at restored.
func (a alarmCounter) count(ctx context.Context, since, restored time.Time) (AlarmResult, error) {
	r := AlarmResult{Recovery: -1}
	var err error
	if r.Rises, err = a.rises(ctx, since); err != nil {
		return r, err
	}
	raised, cleared, err := a.events(ctx, since)
	if err != nil {
		return r, err
	}
	r.Raised, r.Cleared = len(raised), len(cleared)
	r.NotEvaluated = max(0, r.Rises-r.Raised)
	for _, id := range raised {
		if t := idTime(id); !t.Before(restored) {
			r.Recovery = t.Sub(restored)
			break
		}
	}
	cloud, err := a.atCloud(ctx, since)
	if err != nil {
		return r, err
	}
	for _, id := range append(raised, cleared...) {
		if cloud[id] {
			r.AtCloud++
		} else {
			r.LostAtCloud++
		}
	}
	return r, nil
}

// eachChange calls fn, in order, with every value of key's field in
// voltage:changes from the entry id start on.
func eachChange(ctx context.Context, rdb *redis.Client, start, key, field string, fn func(float64)) error {
	return xrangeAll(ctx, rdb, keyspace.Changes, start, func(m redis.XMessage) {
		if k, _ := m.Values["key"].(string); k != key {
			return
		}
		raw, _ := m.Values["m"].(string)
		msg, err := statestore.DecodeMessage([]byte(raw))
		if err != nil {
			return
		}
		if v, ok := msg.V[field]; ok {
			fn(v)
		}
	})
}

// xrangeAll calls fn for every entry of stream from start on, in order.
func xrangeAll(ctx context.Context, rdb *redis.Client, stream, start string, fn func(redis.XMessage)) error {
	for {
		msgs, err := rdb.XRangeN(ctx, stream, start, "+", 5000).Result()
		if err != nil {
			return fmt.Errorf("XRANGE %s: %w", stream, err)
		}
		for _, m := range msgs {
			fn(m)
		}
		if len(msgs) < 5000 {
			return nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}
