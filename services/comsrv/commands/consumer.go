// Package commands is comsrv's side of the command path (DESIGN §5): it reads a
// channel's command stream with the consumer group, validates each command against
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
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
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

// Consumer consumes the command stream of one channel.
type Consumer struct {
	Channel  *config.Channel
	Exec     Executor // nil when the channel is disabled: commands are rejected
	Redis    *redis.Client
	Name     string        // consumer name in the group; stable across restarts
	Timeout  time.Duration // bound for one device write; default 10 s
	ClaimAge time.Duration // entries pending this long at another consumer are taken over; default 60 s
	Log      *slog.Logger
	Metrics  *Metrics
	Hooks    Hooks
}

// AuditMaxLen caps audit:log (approximate trimming).
const AuditMaxLen = 1_000_000

//go:embed claim.lua
var claimSource string

var claimScript = redis.NewScript(claimSource)

// errCrash stops the consumer at a test hook.
var errCrash = errors.New("stopped at test hook")

// Run consumes until ctx is done. Entries this consumer had read but not
// acknowledged before a crash are handled first.
func (c *Consumer) Run(ctx context.Context) error {
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.ClaimAge == 0 {
		c.ClaimAge = time.Minute
	}
	stream := keyspace.ChannelCommands(c.Channel.ID)
	log := c.Log.With("stream", stream)
	wait := 500 * time.Millisecond
	for ctx.Err() == nil {
		err := c.consume(ctx, stream)
		if errors.Is(err, errCrash) || ctx.Err() != nil {
			return nil
		}
		log.Warn("command stream unavailable; retrying", "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(wait*2, 10*time.Second)
	}
	return nil
}

func (c *Consumer) consume(ctx context.Context, stream string) error {
	// Start at 0 so commands written before comsrv ever ran are seen (and expired if old).
	err := c.Redis.XGroupCreateMkStream(ctx, stream, keyspace.CommandGroup, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create consumer group: %w", err)
	}
	// Our own pending entries: read before a crash, never acknowledged. Each one
	// handled is acknowledged, so reading from 0 again yields the rest.
	for {
		n, err := c.readAndHandle(ctx, stream, "0", 0)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
	}
	lastClaim := time.Time{}
	for ctx.Err() == nil {
		if time.Since(lastClaim) > c.ClaimAge/2 {
			if err := c.claimAbandoned(ctx, stream); err != nil {
				return err
			}
			lastClaim = time.Now()
		}
		if _, err := c.readAndHandle(ctx, stream, ">", 2*time.Second); err != nil {
			return err
		}
	}
	return nil
}

func (c *Consumer) readAndHandle(ctx context.Context, stream, from string, block time.Duration) (int, error) {
	args := &redis.XReadGroupArgs{Group: keyspace.CommandGroup, Consumer: c.Name, Streams: []string{stream, from}, Count: 32, Block: block}
	if block == 0 {
		args.Block = -1 // no BLOCK argument: reading history returns at once
	}
	res, err := c.Redis.XReadGroup(ctx, args).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil
		}
		return 0, fmt.Errorf("read commands: %w", err)
	}
	n := 0
	for _, s := range res {
		for _, m := range s.Messages {
			if err := c.handle(ctx, stream, m); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// claimAbandoned takes over entries another consumer (a comsrv that died under a
// different name) read long ago and never acknowledged.
func (c *Consumer) claimAbandoned(ctx context.Context, stream string) error {
	start := "0-0"
	for {
		msgs, next, err := c.Redis.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: stream, Group: keyspace.CommandGroup, Consumer: c.Name, MinIdle: c.ClaimAge, Start: start, Count: 32,
		}).Result()
		if err != nil {
			return fmt.Errorf("claim abandoned commands: %w", err)
		}
		for _, m := range msgs {
			if err := c.handle(ctx, stream, m); err != nil {
				return err
			}
		}
		if next == "0-0" || next == "" || len(msgs) == 0 {
			return nil
		}
		start = next
	}
}

// handle takes one entry to an outcome. It returns an error only when the outcome
// could not be recorded (Redis gone) or at a crash hook; the entry then stays
// pending and is handled again.
func (c *Consumer) handle(ctx context.Context, stream string, m redis.XMessage) error {
	cmd, perr := command.Parse(c.Channel.ID, m.ID, m.Values)
	if c.Hooks.AfterRead != nil && c.Hooks.AfterRead(cmd) {
		return errCrash
	}
	if perr != nil {
		return c.record(ctx, stream, m.ID, cmd, command.Rejected, "malformed command: "+perr.Error())
	}
	if status, reason := c.validate(cmd); status != "" {
		return c.record(ctx, stream, m.ID, cmd, status, reason)
	}
	prev, err := claimScript.Run(ctx, c.Redis, []string{keyspace.Command(cmd.ID)},
		string(command.Executing), time.Now().UnixMilli(), int64(command.ResultTTL.Seconds())).Text()
	if err != nil {
		return fmt.Errorf("claim command %s: %w", cmd.ID, err)
	}
	switch st := command.Status(prev); {
	case st.Final():
		// Executed and recorded before, only the acknowledgement was lost.
		return c.ack(ctx, stream, m.ID)
	case st == command.Executing:
		// A previous comsrv died while this command was on the device: it may or may
		// not have been applied. Repeating it could apply it twice, so it fails.
		return c.record(ctx, stream, m.ID, cmd, command.Failed,
			"outcome unknown: comsrv stopped while the command was being written to the device; not repeated")
	}
	wctx, cancel := context.WithTimeout(ctx, c.Timeout+time.Duration(c.Channel.Point(cmd.Type, cmd.Point).PulseDurationMS)*time.Millisecond)
	err = c.Exec.Execute(wctx, c.Channel.Point(cmd.Type, cmd.Point), cmd.Value)
	cancel()
	if c.Hooks.AfterExecute != nil && c.Hooks.AfterExecute(cmd) {
		return errCrash
	}
	if err != nil {
		return c.record(ctx, stream, m.ID, cmd, command.Failed, err.Error())
	}
	return c.record(ctx, stream, m.ID, cmd, command.OK, "")
}

// validate returns a non-empty status when cmd must not reach the device.
func (c *Consumer) validate(cmd command.Command) (command.Status, string) {
	if c.Exec == nil {
		return command.Rejected, fmt.Sprintf("channel %d is disabled", c.Channel.ID)
	}
	if !cmd.Type.Writable() {
		return command.Rejected, fmt.Sprintf("%s points are read-only; commands go to control (C) or adjustment (A) points", cmd.Type.Name())
	}
	p := c.Channel.Point(cmd.Type, cmd.Point)
	if p == nil {
		return command.Rejected, fmt.Sprintf("channel %d has no %s point %d", c.Channel.ID, cmd.Type.Name(), cmd.Point)
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
func (c *Consumer) record(ctx context.Context, stream, entryID string, cmd command.Command, st command.Status, reason string) error {
	res := command.Result{ID: cmd.ID, Channel: c.Channel.ID, Type: cmd.Type.String(), Point: cmd.Point, Status: st, Error: reason, DoneTS: time.Now().UnixMilli()}
	payload, _ := json.Marshal(res)
	c.Metrics.observe(c.Channel.ID, st)
	log := c.Log.With("command", cmd.ID, "type", cmd.Type.String(), "point", cmd.Point, "value", cmd.Value, "status", st)
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
		pipe := c.Redis.TxPipeline()
		k := keyspace.Command(cmd.ID)
		pipe.HSet(rctx, k, "status", string(st), "error", reason, "done_ts", res.DoneTS,
			"channel", c.Channel.ID, "type", cmd.Type.String(), "point", cmd.Point,
			"value", point.FormatValue(cmd.Value), "source", cmd.Source, "user", cmd.User)
		pipe.Expire(rctx, k, command.ResultTTL)
		pipe.Publish(rctx, keyspace.CommandResult, payload)
		pipe.XAdd(rctx, &redis.XAddArgs{Stream: keyspace.Audit, MaxLen: AuditMaxLen, Approx: true, Values: map[string]any{
			"ts": res.DoneTS, "action": "command", "user": cmd.User, "source": cmd.Source, "id": cmd.ID,
			"channel": c.Channel.ID, "type": cmd.Type.String(), "point": cmd.Point,
			"value": point.FormatValue(cmd.Value), "result": string(st), "error": reason,
		}})
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

func (c *Consumer) ack(ctx context.Context, stream, entryID string) error {
	if err := c.Redis.XAck(ctx, stream, keyspace.CommandGroup, entryID).Err(); err != nil {
		return fmt.Errorf("ack %s: %w", entryID, err)
	}
	return nil
}
