package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/uplink"
)

// Source is the command source the downlink writes ("cloud", DESIGN §5).
const Source = "cloud"

// Limits of the downlink.
const (
	MaxRequestBytes    = 16 << 10 // a command request is a few hundred bytes
	MaxCommandsWaiting = 64       // requests handled at once; more are rejected as busy
	maxIDLen           = 64
)

// RunDownlink answers command requests on ems.{site}.down.cmd until ctx is done,
// then lets the requests in hand finish.
func (b *Bridge) RunDownlink(ctx context.Context) error {
	var wg sync.WaitGroup
	slots := make(chan struct{}, MaxCommandsWaiting)
	sub, err := b.o.NATS.Subscribe(subjects.DownCommand(b.site), func(m *nats.Msg) {
		if m.Reply == "" {
			// A command is a request: without a reply subject nobody would learn
			// its outcome, so it is not executed.
			b.log.Warn("downlink: command without a reply subject ignored", "subject", m.Subject, "bytes", len(m.Data))
			return
		}
		select {
		case slots <- struct{}{}:
		default:
			b.reply(m, rejected(uplink.Command{}, fmt.Sprintf("the site is handling %d commands already; try again", MaxCommandsWaiting)))
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			b.reply(m, b.handleCommand(ctx, m.Data))
		}()
	})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", subjects.DownCommand(b.site), err)
	}
	// The subscription is known to the server once a round trip went through.
	if err := b.o.NATS.Flush(); err != nil {
		b.log.Warn("downlink: flush after subscribing", "err", err)
	}
	b.downOnce.Do(func() { close(b.downReady) })
	<-ctx.Done()
	_ = sub.Unsubscribe()
	wg.Wait()
	return nil
}

func (b *Bridge) reply(m *nats.Msg, r command.Result) {
	data, _ := json.Marshal(uplink.CommandReply{Site: b.site, Result: r})
	if err := m.Respond(data); err != nil {
		b.log.Warn("downlink: reply not sent", "id", r.ID, "err", err)
	}
}

// rejected is the reply to a command the edge refuses.
func rejected(c uplink.Command, reason string) command.Result {
	return command.Result{ID: c.ID, Channel: c.Channel, Type: c.Type, Point: c.Point,
		Status: command.Rejected, Error: reason, DoneTS: time.Now().UnixMilli()}
}

// HandleCommand checks one request, writes it through DESIGN §5 and waits for its
// outcome; the result is the reply (status rejected with the reason when refused).
func (b *Bridge) handleCommand(ctx context.Context, data []byte) command.Result {
	c, err := parseCommand(data)
	if err != nil {
		b.audit(ctx, "command_rejected", c.User, "id", c.ID, "reason", err.Error())
		return rejected(c, err.Error())
	}
	cfg := b.Config()
	dl := &cfg.Downlink
	wait := time.Duration(c.WaitMS) * time.Millisecond
	if c.WaitMS == 0 {
		wait = time.Duration(dl.DefaultWaitMS) * time.Millisecond
	}
	wait = min(wait, time.Duration(dl.MaxWaitMS)*time.Millisecond)

	kind, target := "command", ""
	var t point.Type
	if c.Action != "" {
		kind, target = "action", fmt.Sprintf("%d/%s", c.Instance, c.Action)
		if !dl.allowsAction(c.Instance, c.Action) {
			reason := fmt.Sprintf("instance %d action %q is not on this site's allow-list of remotely controllable points (edge/uplink.yaml downlink.allow)", c.Instance, c.Action)
			b.audit(ctx, "command_rejected", c.User, "id", c.ID, "kind", kind, "target", target, "reason", reason)
			return rejected(c, reason)
		}
	} else {
		t, _ = point.ParseType(c.Type) // checked by parseCommand
		c.Type = t.String()
		target = fmt.Sprintf("%d:%s:%d", c.Channel, t, c.Point)
		reason := ""
		switch ch := b.o.Site.Channel(c.Channel); {
		case !dl.allowsPoint(c.Channel, t, c.Point):
			reason = fmt.Sprintf("channel %d %s point %d is not on this site's allow-list of remotely controllable points (edge/uplink.yaml downlink.allow)", c.Channel, t, c.Point)
		case ch == nil:
			reason = fmt.Sprintf("no channel %d on this site", c.Channel)
		case ch.Point(t, point.ID(c.Point)) == nil:
			reason = fmt.Sprintf("channel %d has no %s point %d", c.Channel, t, c.Point)
		}
		if reason != "" {
			b.audit(ctx, "command_rejected", c.User, "id", c.ID, "kind", kind, "target", target, "reason", reason)
			return rejected(c, reason)
		}
	}

	// A request the site already has (the cloud retried after a lost reply) is
	// not executed again: its reply is the first one's result.
	known := false
	if c.ID != "" {
		n, err := b.o.Redis.Exists(ctx, keyspace.Command(c.ID)).Result()
		if err != nil {
			return rejected(c, "the site's state store does not answer; the command was not sent")
		}
		known = n > 0
	}
	id := c.ID
	if !known {
		if c.Action != "" {
			id, err = command.SubmitAction(ctx, b.o.Redis, command.Action{ID: c.ID, Instance: c.Instance, Action: c.Action,
				Value: c.Value, Source: Source, User: c.User})
		} else {
			id, err = command.Submit(ctx, b.o.Redis, command.Command{ID: c.ID, Channel: c.Channel, Type: t, Point: point.ID(c.Point),
				Value: c.Value, Source: Source, User: c.User})
		}
		if err != nil {
			b.log.Warn("downlink: command not queued", "target", target, "err", err)
			return rejected(c, "the command could not be queued: the site's state store does not answer")
		}
		b.audit(ctx, "command_submitted", c.User, "id", id, "kind", kind, "target", target, "value", point.FormatValue(c.Value))
	}
	return b.outcome(ctx, c, id, wait)
}

// outcome is the command's result after waiting up to wait for it to be final.
func (b *Bridge) outcome(ctx context.Context, c uplink.Command, id string, wait time.Duration) command.Result {
	if wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, wait)
		r, err := command.Wait(wctx, b.o.Redis, id)
		cancel()
		if err == nil {
			return r
		}
	}
	r, err := command.Get(context.WithoutCancel(ctx), b.o.Redis, id)
	if err != nil {
		return command.Result{ID: id, Channel: c.Channel, Type: c.Type, Point: c.Point, Status: command.Pending}
	}
	return r
}

// audit appends to audit:log as the gateway does, with source "cloud". A failed
// write is logged: the command has happened and must not be undone by it.
func (b *Bridge) audit(ctx context.Context, action, user string, fields ...any) {
	values := append([]any{"ts", time.Now().UnixMilli(), "action", action, "user", user, "source", Source}, fields...)
	err := b.o.Redis.XAdd(context.WithoutCancel(ctx), &redis.XAddArgs{
		Stream: keyspace.Audit, MaxLen: command.AuditMaxLen, Approx: true, Values: values,
	}).Err()
	if err != nil {
		b.log.Error("downlink: audit write failed", "action", action, "user", user, "err", err)
	}
}

// parseCommand decodes and checks a request. The command comes back even with an
// error, as far as it was read, for the reply.
func parseCommand(data []byte) (uplink.Command, error) {
	var c uplink.Command
	if len(data) > MaxRequestBytes {
		return c, fmt.Errorf("malformed request: %d bytes, more than %d", len(data), MaxRequestBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return uplink.Command{}, fmt.Errorf("malformed request: want a JSON command object: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return uplink.Command{}, errors.New("malformed request: data after the JSON command object")
	}
	if !validID(c.ID) {
		bad := c.ID
		c.ID = ""
		return c, fmt.Errorf("invalid command: id %q: want 1..%d letters, digits, '-', '_' or '.'", bad, maxIDLen)
	}
	switch {
	case c.User == "":
		return c, errors.New("invalid command: user is required (the cloud user, for the site's audit log)")
	case c.WaitMS < 0:
		return c, fmt.Errorf("invalid command: wait_ms %d is negative", c.WaitMS)
	case c.Action != "" && (c.Channel != 0 || c.Type != "" || c.Point != 0):
		return c, errors.New("invalid command: give either channel, type and point, or instance and action — not both")
	case c.Action != "" && c.Instance == 0:
		return c, errors.New("invalid command: an action needs its instance")
	case c.Action == "" && c.Instance != 0:
		return c, errors.New("invalid command: instance given without an action")
	case c.Action == "" && c.Type == "":
		return c, errors.New("invalid command: give channel, type (C or A) and point, or instance and action")
	}
	if c.Action == "" {
		t, err := point.ParseType(c.Type)
		if err != nil || !t.Writable() {
			return c, fmt.Errorf("invalid command: type %q: commands go to C (control) or A (adjustment) points", c.Type)
		}
	}
	return c, nil
}

// validID reports whether id ("" = none given) can name cmd:{id}.
func validID(id string) bool {
	if len(id) > maxIDLen {
		return false
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return false
		}
	}
	return true
}
