// Package commands is comsrv's side of the command path (DESIGN §5): a Dispatcher
// reads every channel's command stream with the consumer group, and each channel's
// Worker validates its commands against
// the point table, executes it through the channel's link queue, and records the
// outcome — result hash, cmd:result, audit:log and XACK in one transaction — so a
// command is never lost and never executed twice, even across a crash.
package commands

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/redisx"
)

// Executor writes a value to a point of one channel, through its link queue.
type Executor interface {
	Execute(ctx context.Context, p *config.Point, v float64) error
}

// Hooks let tests stop a consumer at the exact points where a crash matters. A hook
// returning true makes the consumer stop there at once, as if the process died.
type Hooks struct {
	AfterRead    func(c command.Command) bool
	AfterExecute func(c command.Command) bool
}

// Worker takes the commands of one channel to their outcomes, one at a time, in
// the order they arrived. Entries come from the Dispatcher, from the channel's own
// pending list at start, and from entries abandoned by other consumers.
type Worker struct {
	Channel  *config.Channel
	Exec     Executor // nil when the channel is disabled: commands are rejected
	Redis    *redis.Client
	Name     string        // consumer name in the group; stable across restarts
	Timeout  time.Duration // bound for one device write; default 10 s
	ClaimAge time.Duration // entries pending this long at another consumer are taken over; default 60 s
	Log      *slog.Logger
	Metrics  *Metrics
	Hooks    Hooks

	queue    chan redis.XMessage
	overflow atomic.Bool // an entry was left in the pending list because the queue was full
}

//go:embed claim.lua
var claimSource string

var claimScript = redis.NewScript(claimSource)

// errCrash stops the consumer at a test hook.
var errCrash = errors.New("stopped at test hook")

// queueSize bounds the entries read for a channel but not yet handled; when it is
// full the dispatcher waits, and the entries wait in Redis.
const queueSize = 32

// Run handles the channel's commands until ctx is done or a test hook stops it.
// It first handles what this consumer read before a crash and never acknowledged,
// then registers with d for new entries.
func (w *Worker) Run(ctx context.Context, d *Dispatcher) error {
	if w.Timeout == 0 {
		w.Timeout = 10 * time.Second
	}
	if w.ClaimAge == 0 {
		w.ClaimAge = time.Minute
	}
	w.queue = make(chan redis.XMessage, queueSize)
	stream := keyspace.ChannelCommands(w.Channel.ID)
	log := w.Log.With("stream", stream)
	wait := 500 * time.Millisecond
	for ctx.Err() == nil {
		err := w.catchUp(ctx, stream)
		if err == nil {
			break
		}
		if errors.Is(err, errCrash) {
			return nil
		}
		log.Warn("command stream unavailable; retrying", "err", err, "retry_in", wait)
		if !sleep(ctx, wait) {
			return nil
		}
		wait = min(wait*2, 10*time.Second)
	}
	d.register(w.Channel.ID, w)
	defer d.unregister(w.Channel.ID, w)

	claim := time.NewTicker(w.ClaimAge / 2)
	defer claim.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case m := <-w.queue:
			err = w.handle(ctx, stream, m)
			if err == nil && len(w.queue) == 0 && w.overflow.Swap(false) {
				err = w.handlePending(ctx, stream) // entries the full queue turned away
			}
		case <-claim.C:
			err = w.claimAbandoned(ctx, stream)
		}
		if errors.Is(err, errCrash) || ctx.Err() != nil {
			return nil
		}
		if err != nil {
			// The entry stays pending; the next claim round or restart takes it again.
			log.Warn("command not handled; it stays pending", "err", err)
		}
	}
}

// deliver hands an entry read by the dispatcher to the worker.
//
// It never blocks the dispatcher, which serves every channel: when the queue is
// full the entry stays in the channel's pending list and the worker reads it from
// there once it has caught up.
func (w *Worker) deliver(m redis.XMessage) {
	select {
	case w.queue <- m:
	default:
		w.overflow.Store(true)
	}
}

// catchUp creates the consumer group if needed and handles the entries this
// consumer had read but not acknowledged (a crash), and abandoned ones of others.
func (w *Worker) catchUp(ctx context.Context, stream string) error {
	// Start at 0 so commands written before comsrv ever ran are seen (and expired if old).
	if err := redisx.EnsureGroup(ctx, w.Redis, stream, keyspace.CommandGroup, "0"); err != nil {
		return err
	}
	if err := w.handlePending(ctx, stream); err != nil {
		return err
	}
	return w.claimAbandoned(ctx, stream)
}

// handlePending handles every entry this consumer has read and not acknowledged.
// An entry handled twice (also delivered by the dispatcher meanwhile) is harmless:
// the second time finds its outcome recorded and only acknowledges it.
func (w *Worker) handlePending(ctx context.Context, stream string) error {
	for {
		res, err := w.Redis.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: keyspace.CommandGroup, Consumer: w.Name, Streams: []string{stream, "0"}, Count: 64, Block: -1,
		}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("read pending commands: %w", err)
		}
		n := 0
		for _, s := range res {
			for _, m := range s.Messages {
				if err := w.handle(ctx, stream, m); err != nil {
					return err
				}
				n++
			}
		}
		if n == 0 { // each handled entry is acknowledged, so reading from 0 again yields the rest
			return nil
		}
	}
}

// claimAbandoned takes over entries that have been pending for ClaimAge: read by a
// comsrv that died under another name, or left behind by a reload.
func (w *Worker) claimAbandoned(ctx context.Context, stream string) error {
	start := "0-0"
	for {
		msgs, next, err := w.Redis.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: stream, Group: keyspace.CommandGroup, Consumer: w.Name, MinIdle: w.ClaimAge, Start: start, Count: 32,
		}).Result()
		if err != nil {
			return fmt.Errorf("claim abandoned commands: %w", err)
		}
		for _, m := range msgs {
			if err := w.handle(ctx, stream, m); err != nil {
				return err
			}
		}
		if next == "0-0" || next == "" || len(msgs) == 0 {
			return nil
		}
		start = next
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// handle takes one entry to an outcome. It returns an error only when the outcome
// could not be recorded (Redis gone) or at a crash hook; the entry then stays
// pending and is handled again.
func (w *Worker) handle(ctx context.Context, stream string, m redis.XMessage) error {
	cmd, perr := command.Parse(w.Channel.ID, m.ID, m.Values)
	if w.Hooks.AfterRead != nil && w.Hooks.AfterRead(cmd) {
		return errCrash
	}
	if perr != nil {
		return w.record(ctx, stream, m.ID, cmd, command.Rejected, "malformed command: "+perr.Error())
	}
	if status, reason := w.validate(cmd); status != "" {
		return w.record(ctx, stream, m.ID, cmd, status, reason)
	}
	prev, err := claimScript.Run(ctx, w.Redis, []string{keyspace.Command(cmd.ID)},
		string(command.Executing), time.Now().UnixMilli(), int64(command.ResultTTL.Seconds())).Text()
	if err != nil {
		return fmt.Errorf("claim command %s: %w", cmd.ID, err)
	}
	switch st := command.Status(prev); {
	case st.Final():
		// Executed and recorded before, only the acknowledgement was lost.
		return w.ack(ctx, stream, m.ID)
	case st == command.Executing:
		// A previous comsrv died while this command was on the device: it may or may
		// not have been applied. Repeating it could apply it twice, so it fails.
		return w.record(ctx, stream, m.ID, cmd, command.Failed,
			"outcome unknown: comsrv stopped while the command was being written to the device; not repeated")
	}
	wctx, cancel := context.WithTimeout(ctx, w.Timeout+time.Duration(w.Channel.Point(cmd.Type, cmd.Point).PulseDurationMS)*time.Millisecond)
	err = w.Exec.Execute(wctx, w.Channel.Point(cmd.Type, cmd.Point), cmd.Value)
	cancel()
	if w.Hooks.AfterExecute != nil && w.Hooks.AfterExecute(cmd) {
		return errCrash
	}
	if err != nil {
		return w.record(ctx, stream, m.ID, cmd, command.Failed, err.Error())
	}
	return w.record(ctx, stream, m.ID, cmd, command.OK, "")
}

// validate returns a non-empty status when cmd must not reach the device.
func (w *Worker) validate(cmd command.Command) (command.Status, string) {
	if w.Exec == nil {
		return command.Rejected, fmt.Sprintf("channel %d is disabled", w.Channel.ID)
	}
	if !cmd.Type.Writable() {
		return command.Rejected, fmt.Sprintf("%s points are read-only; commands go to control (C) or adjustment (A) points", cmd.Type.Name())
	}
	p := w.Channel.Point(cmd.Type, cmd.Point)
	if p == nil {
		return command.Rejected, fmt.Sprintf("channel %d has no %s point %d", w.Channel.ID, cmd.Type.Name(), cmd.Point)
	}
	if math.IsNaN(cmd.Value) || math.IsInf(cmd.Value, 0) {
		return command.Rejected, "value is not a finite number"
	}
	if cmd.Type == point.Control && cmd.Value != 0 && cmd.Value != 1 {
		return command.Rejected, fmt.Sprintf("control point %d takes 0 or 1, not %s", p.ID, point.FormatValue(cmd.Value))
	}
	if p.Min != nil && cmd.Value < *p.Min {
		return command.Rejected, fmt.Sprintf("value %s is below the minimum %s of adjustment point %d", point.FormatValue(cmd.Value), point.FormatValue(*p.Min), p.ID)
	}
	if p.Max != nil && cmd.Value > *p.Max {
		return command.Rejected, fmt.Sprintf("value %s is above the maximum %s of adjustment point %d", point.FormatValue(cmd.Value), point.FormatValue(*p.Max), p.ID)
	}
	if p.Step != nil && *p.Step > 0 {
		base := 0.0
		if p.Min != nil {
			base = *p.Min
		}
		steps := (cmd.Value - base) / *p.Step
		if math.Abs(steps-math.Round(steps)) > 1e-9 {
			return command.Rejected, fmt.Sprintf("value %s is not a multiple of step %s", point.FormatValue(cmd.Value), point.FormatValue(*p.Step))
		}
	}
	if d := cmd.Deadline(); d > 0 {
		if now := time.Now().UnixMilli(); now > d {
			return command.Expired, fmt.Sprintf("expired %s before comsrv took it", time.Duration(now-d)*time.Millisecond)
		}
	}
	return "", ""
}

// record stores the outcome, publishes it, audits it and acknowledges the entry in
// one MULTI, retrying while Redis is away so the outcome is never dropped.
func (w *Worker) record(ctx context.Context, stream, entryID string, cmd command.Command, st command.Status, reason string) error {
	res := command.Result{ID: cmd.ID, Channel: w.Channel.ID, Type: cmd.Type.String(), Point: cmd.Point, Status: st, Error: reason, DoneTS: time.Now().UnixMilli()}
	payload, _ := json.Marshal(res)
	w.Metrics.observe(w.Channel.ID, st)
	log := w.Log.With("command", cmd.ID, "type", cmd.Type.String(), "point", cmd.Point, "value", cmd.Value, "status", st)
	if reason != "" {
		log = log.With("reason", reason)
	}
	if st == command.OK {
		log.Info("command executed")
	} else {
		log.Warn("command not executed")
	}
	wait := 200 * time.Millisecond
	for {
		rctx := context.WithoutCancel(ctx) // an outcome is recorded even while stopping
		pipe := w.Redis.TxPipeline()
		k := keyspace.Command(cmd.ID)
		pipe.HSet(rctx, k, "status", string(st), "error", reason, "done_ts", res.DoneTS,
			"channel", w.Channel.ID, "type", cmd.Type.String(), "point", cmd.Point,
			"value", point.FormatValue(cmd.Value), "source", cmd.Source, "user", cmd.User)
		pipe.Expire(rctx, k, command.ResultTTL)
		pipe.Publish(rctx, keyspace.CommandResult, payload)
		pipe.XAdd(rctx, command.Audit(map[string]any{
			"ts": res.DoneTS, "action": "command", "user": cmd.User, "source": cmd.Source, "id": cmd.ID,
			"channel": w.Channel.ID, "type": cmd.Type.String(), "point": cmd.Point,
			"value": point.FormatValue(cmd.Value), "result": string(st), "error": reason,
		}))
		pipe.XAck(rctx, stream, keyspace.CommandGroup, entryID)
		_, err := pipe.Exec(rctx)
		if err == nil {
			return nil
		}
		log.Warn("cannot record command outcome; retrying", "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			// Stopping: the entry stays pending with status executing, and the next
			// start resolves it without running it again.
			return ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, 5*time.Second)
	}
}

func (w *Worker) ack(ctx context.Context, stream, entryID string) error {
	if err := w.Redis.XAck(ctx, stream, keyspace.CommandGroup, entryID).Err(); err != nil {
		return fmt.Errorf("ack %s: %w", entryID, err)
	}
	return nil
}
