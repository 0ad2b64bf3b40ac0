package rulesrv

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
)

// EventsMaxLen caps rule:events (approximate trimming).
const EventsMaxLen = 100_000

// recordQueue bounds the records waiting to be written. When Redis is slow or
// away the newest records are dropped and counted, never the engine blocked.
const recordQueue = 8192

func execKey(id string) string { return keyspace.RuleExecution(id) }

// ActionOutcome is what one action did.
type ActionOutcome struct {
	Kind      ActionKind `json:"kind"`
	Target    string     `json:"target,omitempty"`
	Value     *float64   `json:"value,omitempty"`
	Status    string     `json:"status"` // ok, failed, rejected, expired, submitted, timeout, error, skipped, sent
	Error     string     `json:"error,omitempty"`
	CommandID string     `json:"command_id,omitempty"`
	MS        int64      `json:"ms"`
}

// RecordedState is the state field of rule:{id}:exec: the rule's state and the
// fingerprint of the definition it belongs to (a changed rule starts afresh).
type RecordedState struct {
	RuleState
	Fingerprint string `json:"fingerprint"`
}

// record is one write to rule:{id}:exec and rule:events.
type record struct {
	rule   string
	exec   map[string]any // fields of rule:{id}:exec
	events []map[string]any
}

// recorder writes execution records from its own goroutine, in order.
type recorder struct {
	rdb     redis.UniversalClient
	log     *slog.Logger
	metrics *metrics
	queue   chan record
	wg      sync.WaitGroup
}

func newRecorder(rdb redis.UniversalClient, log *slog.Logger, mt *metrics) *recorder {
	return &recorder{rdb: rdb, log: log, metrics: mt, queue: make(chan record, recordQueue)}
}

func (r *recorder) add(rec record) {
	select {
	case r.queue <- rec:
	default:
		r.metrics.recordsDropped.Inc()
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return `"unencodable: ` + err.Error() + `"`
	}
	return string(b)
}

// evaluation records an evaluation: the inputs seen, the path taken, the result.
func (r *recorder) evaluation(ev *Evaluation, st RuleState, fingerprint string) {
	state := RecordedState{st, fingerprint}
	r.add(record{rule: ev.Rule,
		exec: map[string]any{"ts": ev.TS, "result": ev.Result, "error": ev.Reason, "cause": ev.Cause,
			"variables": mustJSON(ev.Inputs), "path": mustJSON(ev.Path), "actions": mustJSON(ev.Actions),
			"state": mustJSON(state)},
		events: []map[string]any{{"rule": ev.Rule, "ts": ev.TS, "kind": ev.Result, "reason": ev.Reason,
			"cause": ev.Cause, "inputs": mustJSON(ev.Inputs), "path": mustJSON(ev.Path)}},
	})
}

// outcomes records what the actions of a firing did.
func (r *recorder) outcomes(rule string, firedTS int64, result string, outs []ActionOutcome) {
	status := "ok"
	for _, o := range outs {
		switch o.Status {
		case "ok", "submitted", "sent":
		default:
			status = "failed"
		}
	}
	rec := record{rule: rule, exec: map[string]any{"outcome": mustJSON(outs), "outcome_status": status, "outcome_ts": time.Now().UnixMilli()}}
	for _, o := range outs {
		rec.events = append(rec.events, map[string]any{"rule": rule, "ts": time.Now().UnixMilli(), "kind": "action",
			"fired_ts": firedTS, "of": result, "outcome": mustJSON(o)})
	}
	r.add(rec)
}

// event records one free-form event (conflicts, watchdog restores).
func (r *recorder) event(rule, kind string, fields map[string]any) {
	ev := map[string]any{"rule": rule, "ts": time.Now().UnixMilli(), "kind": kind}
	for k, v := range fields {
		ev[k] = v
	}
	r.add(record{rule: rule, events: []map[string]any{ev}})
}

// run writes records until ctx is done, then what is queued (bounded by a second).
func (r *recorder) run(ctx context.Context) {
	batch := make([]record, 0, 256)
	for {
		select {
		case <-ctx.Done():
			deadline := time.Now().Add(time.Second)
			for time.Now().Before(deadline) {
				select {
				case rec := <-r.queue:
					batch = append(batch[:0], rec)
					r.write(context.WithoutCancel(ctx), batch)
				default:
					return
				}
			}
			return
		case rec := <-r.queue:
			batch = append(batch[:0], rec)
		drain:
			for len(batch) < cap(batch) {
				select {
				case rec := <-r.queue:
					batch = append(batch, rec)
				default:
					break drain
				}
			}
			r.write(ctx, batch)
		}
	}
}

func (r *recorder) write(ctx context.Context, batch []record) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	pipe := r.rdb.Pipeline()
	for _, rec := range batch {
		if len(rec.exec) > 0 {
			pipe.HSet(wctx, execKey(rec.rule), rec.exec)
		}
		for _, ev := range rec.events {
			pipe.XAdd(wctx, &redis.XAddArgs{Stream: keyspace.RuleEvents, MaxLen: EventsMaxLen, Approx: true, Values: ev})
		}
	}
	if _, err := pipe.Exec(wctx); err != nil {
		r.metrics.recordsDropped.Add(float64(len(batch)))
		r.log.Warn("cannot write execution records", "records", len(batch), "err", err)
	}
}
