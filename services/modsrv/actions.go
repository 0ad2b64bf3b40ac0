package modsrv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/model"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/redisx"
	"github.com/voltageems/voltage/shared/service"
)

// actionConsumer reads inst:actions with the consumer group "modsrv" and turns
// each action into the command of its routed channel point (DESIGN §5). An entry
// is acknowledged only after its outcome is recorded: a command submitted, or a
// rejection. An entry read by a modsrv that crashed stays pending and is handled
// on the next start (its own under the same consumer name, or claimed from
// another after claimAge) — never lost, never submitted twice: the submitted
// command leaves its channel in cmd:{id}, which a second pass finds.
type actionConsumer struct {
	rdb      redis.UniversalClient
	name     string
	model    func() *model.Model
	log      *slog.Logger
	metrics  *metrics
	claimAge time.Duration
	ready    func(bool)
}

func (a *actionConsumer) run(ctx context.Context) {
	wait := 200 * time.Millisecond
	for ctx.Err() == nil {
		err := a.catchUp(ctx)
		if err == nil {
			a.ready(true)
			err = a.readNew(ctx)
		}
		if ctx.Err() != nil {
			return
		}
		a.ready(false)
		a.log.Warn("action stream unavailable; retrying", "err", err, "retry_in", wait)
		if !service.Sleep(ctx, wait) {
			return
		}
		wait = min(wait*2, 5*time.Second)
	}
}

// catchUp creates the group and handles this consumer's pending entries, then
// abandoned ones of other consumers.
func (a *actionConsumer) catchUp(ctx context.Context) error {
	if err := redisx.EnsureGroup(ctx, a.rdb, keyspace.InstanceActionStream, keyspace.ActionGroup, "0"); err != nil {
		return err
	}
	for {
		res, err := a.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: keyspace.ActionGroup, Consumer: a.name,
			Streams: []string{keyspace.InstanceActionStream, "0"}, Count: 64, Block: -1}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("read pending actions: %w", err)
		}
		n := 0
		for _, s := range res {
			for _, m := range s.Messages {
				if err := a.handle(ctx, m); err != nil {
					return err
				}
				n++
			}
		}
		if n == 0 {
			break
		}
	}
	start := "0-0"
	for {
		msgs, next, err := a.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: keyspace.InstanceActionStream,
			Group: keyspace.ActionGroup, Consumer: a.name, MinIdle: a.claimAge, Start: start, Count: 32}).Result()
		if err != nil {
			return fmt.Errorf("claim abandoned actions: %w", err)
		}
		for _, m := range msgs {
			if err := a.handle(ctx, m); err != nil {
				return err
			}
		}
		if next == "0-0" || next == "" || len(msgs) == 0 {
			return nil
		}
		start = next
	}
}

func (a *actionConsumer) readNew(ctx context.Context) error {
	for {
		res, err := a.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: keyspace.ActionGroup, Consumer: a.name,
			Streams: []string{keyspace.InstanceActionStream, ">"}, Count: 64, Block: 2 * time.Second}).Result()
		switch {
		case errors.Is(err, redis.Nil):
			continue
		case redisx.IsNoGroup(err):
			return err // Redis restarted empty: catchUp recreates the group
		case err != nil:
			return fmt.Errorf("read actions: %w", err)
		}
		for _, s := range res {
			for _, m := range s.Messages {
				if err := a.handle(ctx, m); err != nil {
					return err
				}
			}
		}
	}
}

// handle takes one entry to a recorded outcome.
func (a *actionConsumer) handle(ctx context.Context, m redis.XMessage) error {
	act, perr := command.ParseAction(m.ID, m.Values)
	if perr != nil {
		return a.finish(ctx, m.ID, act, command.Rejected, "malformed action: "+perr.Error())
	}
	// Submitted before a crash that lost only the acknowledgement?
	ch, err := a.rdb.HGet(ctx, keyspace.Command(act.ID), "channel").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("check action %s: %w", act.ID, err)
	}
	if ch != "" {
		rt, _, _, _ := a.check(act)
		return a.ack(ctx, m.ID, act, rt)
	}
	rt, def, status, reason := a.check(act)
	if status != "" {
		return a.finish(ctx, m.ID, act, status, reason)
	}
	cmd := command.Command{ID: act.ID, Channel: rt.Channel, Type: rt.ChannelType, Point: rt.ChannelPoint, Value: act.Value,
		Source: act.Source, User: act.User, TS: act.TS, Expires: act.Deadline()}
	if _, err := command.Submit(ctx, a.rdb, cmd); err != nil {
		return err
	}
	a.metrics.actions.WithLabelValues("submitted").Inc()
	a.log.Info("action submitted", "id", act.ID, "instance", rt.Instance.Name, "action", def.Name, "value", act.Value,
		"channel", rt.Channel, "type", rt.ChannelType.String(), "point", rt.ChannelPoint)
	return a.ack(ctx, m.ID, act, rt)
}

// check resolves the action and checks it against the product's limits.
func (a *actionConsumer) check(act command.Action) (*model.Route, *model.PointDef, command.Status, string) {
	m := a.model()
	if m == nil {
		return nil, nil, command.Rejected, "modsrv has no model loaded"
	}
	inst := m.Instance(act.Instance)
	if inst == nil {
		return nil, nil, command.Rejected, fmt.Sprintf("no instance %d", act.Instance)
	}
	def := inst.Product.ActionByName(act.Action)
	if def == nil {
		if n, err := strconv.ParseUint(act.Action, 10, 32); err == nil {
			def = inst.Product.Action(uint32(n))
		}
	}
	if def == nil {
		return nil, nil, command.Rejected, fmt.Sprintf("product %s of instance %s has no action %q", inst.Product.ID, inst.Name, act.Action)
	}
	rt := m.ActionRoute(inst.ID, def.ID)
	if rt == nil {
		return nil, def, command.Rejected, fmt.Sprintf("action %s of instance %s is not routed to a channel point", def.Name, inst.Name)
	}
	if reason := checkLimits(def, act.Value); reason != "" {
		return rt, def, command.Rejected, fmt.Sprintf("action %s of instance %s: %s", def.Name, inst.Name, reason)
	}
	if d := act.Deadline(); d > 0 {
		if now := time.Now().UnixMilli(); now > d {
			return rt, def, command.Expired, fmt.Sprintf("expired %s before modsrv took it", time.Duration(now-d)*time.Millisecond)
		}
	}
	return rt, def, "", ""
}

// checkLimits applies the product's limits; "" when v is acceptable.
func checkLimits(def *model.PointDef, v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "value is not a finite number"
	case def.Type == model.TypeBool && v != 0 && v != 1:
		return fmt.Sprintf("takes 0 or 1, not %s", point.FormatValue(v))
	case def.Type == model.TypeInt && v != math.Trunc(v):
		return fmt.Sprintf("takes a whole number, not %s", point.FormatValue(v))
	case def.Min != nil && v < *def.Min:
		return fmt.Sprintf("value %s is below the minimum %s", point.FormatValue(v), point.FormatValue(*def.Min))
	case def.Max != nil && v > *def.Max:
		return fmt.Sprintf("value %s is above the maximum %s", point.FormatValue(v), point.FormatValue(*def.Max))
	}
	if def.Step != nil && *def.Step > 0 {
		base := 0.0
		if def.Min != nil {
			base = *def.Min
		}
		steps := (v - base) / *def.Step
		if math.Abs(steps-math.Round(steps)) > 1e-9 {
			return fmt.Sprintf("value %s is not a multiple of the step %s", point.FormatValue(v), point.FormatValue(*def.Step))
		}
	}
	return ""
}

// finish records a final outcome of an action that never became a command and
// acknowledges it, in one transaction.
func (a *actionConsumer) finish(ctx context.Context, entryID string, act command.Action, st command.Status, reason string) error {
	a.metrics.actions.WithLabelValues(string(st)).Inc()
	a.log.Warn("action not executed", "id", act.ID, "instance", act.Instance, "action", act.Action, "value", act.Value, "status", st, "reason", reason)
	pipe := a.rdb.TxPipeline()
	command.QueueActionOutcome(ctx, pipe, act, st, reason)
	pipe.XAck(ctx, keyspace.InstanceActionStream, keyspace.ActionGroup, entryID)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("record action %s: %w", act.ID, err)
	}
	return nil
}

// ack records the commanded value in inst:{id}:A and acknowledges the entry.
func (a *actionConsumer) ack(ctx context.Context, entryID string, act command.Action, rt *model.Route) error {
	pipe := a.rdb.TxPipeline()
	if rt != nil {
		pipe.HSet(ctx, keyspace.InstanceActions(rt.Instance.ID), strconv.FormatUint(uint64(rt.Point), 10), point.FormatValue(act.Value))
	}
	pipe.XAck(ctx, keyspace.InstanceActionStream, keyspace.ActionGroup, entryID)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("acknowledge action %s: %w", act.ID, err)
	}
	return nil
}
