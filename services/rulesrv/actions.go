package rulesrv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/notify"
	"github.com/voltageems/voltage/shared/webhook"
)

// MaxInFlight bounds the firings whose actions run at the same time; up to
// MaxQueued more wait for a slot (a resync may fire every rule at once). A
// firing beyond both is recorded as failed rather than queued without bound.
const (
	MaxInFlight = 256
	MaxQueued   = 16384
)

type job struct {
	r  *Rule
	ev *Evaluation
}

// StopGrace is how long running actions may take to finish once rulesrv stops.
const StopGrace = 2 * time.Second

// Source is the command source rulesrv writes (cmd:{id}, audit:log).
const Source = "rule"

// executor runs the actions of firings, each firing in its own goroutine (at most
// MaxInFlight), its actions in order, each bounded by its timeout.
type executor struct {
	ctx     context.Context
	rdb     redis.UniversalClient
	log     *slog.Logger
	metrics *metrics
	rec     *recorder
	hc      *http.Client
	watch   *watchdog
	sem     chan struct{}
	queue   chan job
	wg      sync.WaitGroup

	mu   sync.Mutex
	busy map[string][]job // rules with a firing running → their firings waiting
}

func newExecutor(ctx context.Context, rdb redis.UniversalClient, log *slog.Logger, mt *metrics, rec *recorder) *executor {
	return &executor{ctx: ctx, rdb: rdb, log: log, metrics: mt, rec: rec, hc: &http.Client{}, sem: make(chan struct{}, MaxInFlight), queue: make(chan job, MaxQueued), busy: map[string][]job{}}
}

// dispatch starts queued firings as slots free up, until ctx is done; firings
// still queued then are recorded as not run. The firings of one rule run one
// after the other, in the order they fired, so a newer setpoint of a rule is
// never overtaken by an older one.
func (x *executor) dispatch(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case j := <-x.queue:
					x.refuse(j, "rulesrv stopped before the action ran")
				default:
					return
				}
			}
		case j := <-x.queue:
			x.mu.Lock()
			if q, busy := x.busy[j.r.ID]; busy {
				if len(q) >= maxPerRule {
					x.mu.Unlock()
					x.refuse(j, "too many firings of this rule waiting for its earlier actions")
					continue
				}
				x.busy[j.r.ID] = append(q, j)
				x.mu.Unlock()
				continue
			}
			x.busy[j.r.ID] = nil
			x.mu.Unlock()
			select {
			case x.sem <- struct{}{}:
			case <-ctx.Done():
				x.refuse(j, "rulesrv stopped before the action ran")
				continue
			}
			x.wg.Add(1)
			go func() {
				defer x.wg.Done()
				defer func() { <-x.sem }()
				x.chain(j)
			}()
		}
	}
}

// maxPerRule bounds the firings of one rule waiting behind its running one.
const maxPerRule = 1024

// chain runs j and then every firing of the same rule that queued meanwhile.
func (x *executor) chain(j job) {
	for {
		outs := make([]ActionOutcome, 0, len(j.ev.Actions))
		for _, pa := range j.ev.Actions {
			outs = append(outs, x.do(j.r, j.ev, pa))
		}
		x.rec.outcomes(j.r.ID, j.ev.TS, j.ev.Result, outs)
		x.mu.Lock()
		q := x.busy[j.r.ID]
		if len(q) == 0 {
			delete(x.busy, j.r.ID)
			x.mu.Unlock()
			return
		}
		j, x.busy[j.r.ID] = q[0], q[1:]
		x.mu.Unlock()
	}
}

func (x *executor) refuse(j job, why string) {
	outs := make([]ActionOutcome, len(j.ev.Actions))
	for i, pa := range j.ev.Actions {
		outs[i] = ActionOutcome{Kind: pa.Kind, Target: pa.Target, Value: pa.Value, Status: "error", Error: why}
		x.metrics.actions.WithLabelValues(string(pa.Kind), "error").Inc()
	}
	x.rec.outcomes(j.r.ID, j.ev.TS, j.ev.Result, outs)
}

// run starts the planned actions of ev (a firing or a reset).
func (x *executor) run(r *Rule, ev *Evaluation) {
	if len(ev.Actions) == 0 {
		return
	}
	select {
	case x.queue <- job{r, ev}:
	default:
		x.refuse(job{r, ev}, "too many actions queued")
	}
}

// wait waits for the running actions (bounded by their timeouts).
func (x *executor) wait() { x.wg.Wait() }

func (x *executor) do(r *Rule, ev *Evaluation, pa PlannedAction) (out ActionOutcome) {
	a := pa.action
	out = ActionOutcome{Kind: pa.Kind, Target: pa.Target, Value: pa.Value}
	start := time.Now()
	defer func() {
		out.MS = time.Since(start).Milliseconds()
		x.metrics.actions.WithLabelValues(string(pa.Kind), out.Status).Inc()
		x.metrics.actionDuration.Observe(time.Since(start).Seconds())
	}()
	if pa.Skip != "" {
		out.Status, out.Error = "skipped", pa.Skip
		if pa.Value != nil {
			x.metrics.conflicts.Inc()
			x.log.Info("rule write skipped", "rule", r.ID, "target", pa.Target, "reason", pa.Skip)
		}
		return out
	}
	// An action may finish for up to StopGrace after rulesrv was asked to stop, so
	// a command already submitted usually gets its outcome recorded; then it is
	// abandoned (the command expires with the action's timeout anyway).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(x.ctx), a.Timeout)
	defer cancel()
	stopWatch := context.AfterFunc(x.ctx, func() { time.AfterFunc(StopGrace, cancel) }) // a late cancel is harmless
	defer stopWatch()
	var err error
	switch a.Kind {
	case KindInstanceAction, KindCommand, KindVirtual:
		out.CommandID, out.Status, err = x.write(ctx, r, a, *pa.Value)
		if err == nil && out.Status == string(command.OK) && a.Restore > 0 && x.watch != nil {
			x.watch.remember(r, a, *pa.Value)
		}
	case KindEvent:
		_, err = x.rdb.XAdd(ctx, &redis.XAddArgs{Stream: keyspace.RuleEvents, MaxLen: EventsMaxLen, Approx: true, Values: map[string]any{
			"rule": r.ID, "ts": ev.TS, "kind": "event", "name": a.Event.Name, "message": a.Event.Message, "of": ev.Result,
			"inputs": mustJSON(ev.Inputs)}}).Result()
		out.Status = "sent"
	case KindWebhook:
		err = x.webhook(ctx, r, ev, a)
		out.Status = "sent"
	case KindNotify:
		_, err = notify.Send(ctx, x.rdb, notify.Request{Severity: a.Notify.Severity, Title: a.Notify.Title,
			Message: a.Notify.Message, Source: "rule:" + r.ID, Instance: a.Notify.Instance, TS: ev.TS})
		out.Status = "sent"
	}
	if err != nil {
		out.Error = err.Error()
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			out.Status = "timeout"
		case out.Status == "" || out.Status == "sent" || out.Status == string(command.Pending) || out.Status == "submitted":
			out.Status = "error"
		}
	}
	return out
}

// write submits a command (DESIGN §5) and, unless the action says wait: false,
// waits for its outcome. The command expires with the action's timeout, so it
// never reaches a device after the rule stopped waiting for it.
func (x *executor) write(ctx context.Context, r *Rule, a *Action, v float64) (id, status string, err error) {
	now := time.Now()
	expires := now.Add(a.Timeout).UnixMilli()
	if a.Kind == KindInstanceAction {
		id, err = command.SubmitAction(ctx, x.rdb, command.Action{Instance: a.Instance, Action: a.ActionName, Value: v,
			Source: Source, User: "rule:" + r.ID, TS: now.UnixMilli(), Expires: expires})
	} else {
		id, err = command.Submit(ctx, x.rdb, command.Command{Channel: a.Channel, Type: a.Type, Point: a.Point, Value: v,
			Source: Source, User: "rule:" + r.ID, TS: now.UnixMilli(), Expires: expires})
	}
	if err != nil {
		return "", "error", fmt.Errorf("submit: %w", err)
	}
	if !a.Wait {
		return id, "submitted", nil
	}
	res, err := command.Wait(ctx, x.rdb, id)
	if err != nil {
		return id, "timeout", fmt.Errorf("no outcome within %s: %w", a.Timeout, err)
	}
	if res.Status != command.OK {
		return id, string(res.Status), errors.New(res.Error)
	}
	return id, string(res.Status), nil
}

func (x *executor) webhook(ctx context.Context, r *Rule, ev *Evaluation, a *Action) error {
	attempts := a.Webhook.Attempts
	if attempts == 0 {
		attempts = 3
	}
	c, err := webhook.New(webhook.Config{URL: a.Webhook.URL, Secret: a.Webhook.Secret, Headers: a.Webhook.Headers,
		Timeout: min(a.Timeout, webhook.DefaultTimeout), MaxAttempts: attempts}, x.hc)
	if err != nil {
		return err
	}
	body := map[string]any{"rule": r.ID, "name": r.File.Name, "result": ev.Result, "ts": ev.TS, "inputs": ev.Inputs, "path": ev.Path}
	return c.PostJSON(ctx, fmt.Sprintf("rule:%s:%d:%s", r.ID, ev.TS, ev.Result), body)
}
