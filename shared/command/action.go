package command

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
)

// Instance actions (DESIGN §5): a producer asks an instance to do something
// (SubmitAction); modsrv reads inst:actions with its consumer group, checks the
// action against the product's limits and submits the command of the routed
// channel point with the same id, so the producer waits on cmd:{id} with Wait
// exactly as for a channel command. An action modsrv refuses ends as Rejected
// with the reason.

// ActionStreamMaxLen caps inst:actions (approximate trimming). Entries are
// acknowledged within milliseconds, so the cap only bounds the history kept.
const ActionStreamMaxLen = 100_000

// Action is one entry of inst:actions.
type Action struct {
	ID       string  // the command id: the result lives in cmd:{ID}
	Instance uint32  // instance id
	Action   string  // action name or id, as the product defines it
	Value    float64 // engineering value (0 or 1 for a bool action)
	Source   string  // api, rule, cloud, cli, ...
	User     string  // who asked
	TS       int64   // Unix ms when submitted
	Expires  int64   // Unix ms after which it must not be executed; 0 = TS + DefaultMaxAge
}

// Fields renders a as stream entry fields.
func (a Action) Fields() map[string]any {
	return map[string]any{
		"id": a.ID, "instance": strconv.FormatUint(uint64(a.Instance), 10), "action": a.Action,
		"value": point.FormatValue(a.Value), "source": a.Source, "user": a.User,
		"ts": strconv.FormatInt(a.TS, 10), "expires": strconv.FormatInt(a.Expires, 10),
	}
}

// ParseAction reads an entry of inst:actions. streamID is the id when the entry
// has none. The error says which field is wrong; the returned Action still holds
// what could be read (its ID above all, to record the rejection).
func ParseAction(streamID string, f map[string]any) (Action, error) {
	a := Action{ID: str(f["id"]), Action: str(f["action"]), Source: str(f["source"]), User: str(f["user"])}
	if a.ID == "" {
		a.ID = streamID
	}
	n, err := strconv.ParseUint(str(f["instance"]), 10, 32)
	if err != nil {
		return a, fmt.Errorf("field instance: %q is not an instance id", str(f["instance"]))
	}
	a.Instance = uint32(n)
	if a.Action == "" {
		return a, fmt.Errorf("field action: missing")
	}
	if a.Value, err = strconv.ParseFloat(str(f["value"]), 64); err != nil || math.IsNaN(a.Value) || math.IsInf(a.Value, 0) {
		return a, fmt.Errorf("field value: %q is not a finite number", str(f["value"]))
	}
	if a.TS, err = optInt(f["ts"]); err != nil {
		return a, fmt.Errorf("field ts: %w", err)
	}
	if a.Expires, err = optInt(f["expires"]); err != nil {
		return a, fmt.Errorf("field expires: %w", err)
	}
	return a, nil
}

// Deadline is the Unix ms after which a must not run.
func (a Action) Deadline() int64 {
	return Command{TS: a.TS, Expires: a.Expires}.Deadline()
}

// SubmitAction records cmd:{id} as pending and appends the action to
// inst:actions, in one transaction. It fills ID and TS when empty and returns the
// id; Wait(ctx, rdb, id) then gives the outcome.
func SubmitAction(ctx context.Context, rdb redis.UniversalClient, a Action) (string, error) {
	if a.ID == "" {
		a.ID = NewID()
	}
	if a.TS == 0 {
		a.TS = time.Now().UnixMilli()
	}
	if a.Action == "" {
		return "", fmt.Errorf("action %s: no action named", a.ID)
	}
	if math.IsNaN(a.Value) || math.IsInf(a.Value, 0) {
		return "", fmt.Errorf("action %s: value %v is not a finite number", a.ID, a.Value)
	}
	pipe := rdb.TxPipeline()
	pipe.HSet(ctx, keyspace.Command(a.ID), "status", string(Pending), "instance", a.Instance,
		"action", a.Action, "value", point.FormatValue(a.Value), "ts", a.TS)
	pipe.Expire(ctx, keyspace.Command(a.ID), ResultTTL)
	pipe.XAdd(ctx, &redis.XAddArgs{Stream: keyspace.InstanceActionStream, MaxLen: ActionStreamMaxLen, Approx: true, Values: a.Fields()})
	if _, err := pipe.Exec(ctx); err != nil {
		return "", fmt.Errorf("submit action %s to instance %d: %w", a.ID, a.Instance, err)
	}
	return a.ID, nil
}

// QueueActionOutcome adds to pipe what records a final outcome of an action that
// never became a channel command (rejected or expired): cmd:{id}, the message on
// cmd:result and the audit:log entry. The caller adds its XACK and executes pipe
// as one transaction.
func QueueActionOutcome(ctx context.Context, pipe redis.Pipeliner, a Action, st Status, reason string) Result {
	res := Result{ID: a.ID, Status: st, Error: reason, DoneTS: time.Now().UnixMilli()}
	payload, _ := json.Marshal(res)
	k := keyspace.Command(a.ID)
	pipe.HSet(ctx, k, "status", string(st), "error", reason, "done_ts", res.DoneTS,
		"instance", a.Instance, "action", a.Action, "value", point.FormatValue(a.Value),
		"source", a.Source, "user", a.User)
	pipe.Expire(ctx, k, ResultTTL)
	pipe.Publish(ctx, keyspace.CommandResult, payload)
	pipe.XAdd(ctx, Audit(map[string]any{
		"ts": res.DoneTS, "action": "instance_action", "user": a.User, "source": a.Source, "id": a.ID,
		"instance": a.Instance, "name": a.Action, "value": point.FormatValue(a.Value),
		"result": string(st), "error": reason,
	}))
	return res
}
