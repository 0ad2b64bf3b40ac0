package rulesrv

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/expression"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/service"
)

// watchdog gives remote setpoints an expiry. A write action with restore_after
// remembers the value its rule wrote; when someone else (the API, the cloud, an
// operator's CLI) then writes the same point, the rule's value is written again
// restore_after later — unless the rule wrote in between. Writes are seen in
// audit:log, where comsrv records every command's outcome.
type watchdog struct {
	rdb     redis.UniversalClient
	log     *slog.Logger
	x       *executor
	rec     *recorder
	metrics *metrics

	mu      sync.Mutex
	targets map[string]*watched // by channel point (expression.ChannelRef)
}

type watched struct {
	rule  *Rule
	a     *Action
	value float64
	timer *time.Timer
}

func newWatchdog(rdb redis.UniversalClient, log *slog.Logger, x *executor, rec *recorder, mt *metrics) *watchdog {
	return &watchdog{rdb: rdb, log: log, x: x, rec: rec, metrics: mt, targets: map[string]*watched{}}
}

// remember records the rule value last written to a's point.
func (w *watchdog) remember(r *Rule, a *Action, v float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := a.Target()
	if old := w.targets[k]; old != nil && old.timer != nil {
		old.timer.Stop()
	}
	w.targets[k] = &watched{rule: r, a: a, value: v}
}

// run follows audit:log until ctx is done.
func (w *watchdog) run(ctx context.Context) {
	last := "$"
	wait := 200 * time.Millisecond
	for ctx.Err() == nil {
		res, err := w.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{keyspace.Audit, last}, Count: 500, Block: time.Second}).Result()
		if err == redis.Nil {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if !service.Sleep(ctx, wait) {
				break
			}
			wait = min(wait*2, 5*time.Second)
			continue
		}
		wait = 200 * time.Millisecond
		for _, s := range res {
			for _, m := range s.Messages {
				last = m.ID
				w.seen(m.Values)
			}
		}
	}
	w.mu.Lock()
	for _, t := range w.targets {
		if t.timer != nil {
			t.timer.Stop()
		}
	}
	w.mu.Unlock()
}

// seen handles one audit entry: a successful command not written by a rule on a
// watched point starts (or restarts) that point's expiry.
func (w *watchdog) seen(f map[string]any) {
	str := func(k string) string { s, _ := f[k].(string); return s }
	if str("action") != "command" || str("result") != string(command.OK) || str("source") == Source {
		return
	}
	ch, err1 := strconv.ParseUint(str("channel"), 10, 32)
	pt, err2 := strconv.ParseUint(str("point"), 10, 32)
	t, err3 := point.ParseType(str("type"))
	if err1 != nil || err2 != nil || err3 != nil {
		return
	}
	k := expression.ChannelRef(uint32(ch), t, point.ID(pt)).String()
	w.mu.Lock()
	defer w.mu.Unlock()
	tw := w.targets[k]
	if tw == nil {
		return
	}
	if tw.timer != nil {
		tw.timer.Stop()
	}
	w.rec.event(tw.rule.ID, "remote_override", map[string]any{"target": k, "value": str("value"), "user": str("user"),
		"source": str("source"), "restore_after": tw.a.Restore.String()})
	tw.timer = time.AfterFunc(tw.a.Restore, func() { w.restore(k, tw) })
}

// restore writes the rule's value again.
func (w *watchdog) restore(k string, tw *watched) {
	w.mu.Lock()
	current := w.targets[k] == tw
	w.mu.Unlock()
	if !current {
		return // the rule wrote again in the meantime
	}
	w.metrics.restores.Inc()
	v := tw.value
	ev := &Evaluation{Rule: tw.rule.ID, TS: time.Now().UnixMilli(), Cause: "watchdog", Result: "restore",
		Path:    []string{fmt.Sprintf("remote value on %s expired after %s", k, tw.a.Restore)},
		Actions: []PlannedAction{{Kind: tw.a.Kind, Target: k, Value: &v, action: tw.a}}}
	w.rec.event(tw.rule.ID, "watchdog_restore", map[string]any{"target": k, "value": v})
	w.x.run(tw.rule, ev)
}
