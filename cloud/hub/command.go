package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/uplink"
)

// Command errors the API maps to HTTP statuses.
var (
	// ErrSiteUnreachable: nothing answers on the site's command subject (the link
	// is down or the edge does not serve commands).
	ErrSiteUnreachable = errors.New("site unreachable: no responder on its command subject")
	// ErrCommandTimeout: the site did not reply in time; the command may still run.
	ErrCommandTimeout = errors.New("the site did not reply in time; the command may still have been executed")
)

// DefaultCommandTimeout is how long the hub waits for a reply beyond the command's
// own wait_ms.
const DefaultCommandTimeout = 5 * time.Second

// DefaultCommandWaitMS is the wait_ms the API sends when the caller gives none.
const DefaultCommandWaitMS = 5000

// sendCommand sends cmd to site as a request on ems.{site}.down.cmd and waits for
// its CommandReply. The reply subject is ems.{site}.reply.{token}, inside the
// site's permission scope, so a site's credentials never need the hub's inboxes.
func (h *hub) sendCommand(ctx context.Context, site string, cmd uplink.Command) (uplink.CommandReply, error) {
	if cmd.ID == "" {
		cmd.ID = nuid.Next()
	}
	body, err := json.Marshal(cmd)
	if err != nil {
		return uplink.CommandReply{}, fmt.Errorf("encode command: %w", err)
	}
	reply := subjects.CommandReply(site, nuid.Next())
	sub, err := h.nc.SubscribeSync(reply)
	if err != nil {
		return uplink.CommandReply{}, fmt.Errorf("subscribe to %s: %w", reply, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	wait := DefaultCommandTimeout + time.Duration(cmd.WaitMS)*time.Millisecond
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	// The subscription must be known to the server (and so to the leaf) before the
	// request goes out.
	if err := h.nc.FlushWithContext(ctx); err != nil {
		return uplink.CommandReply{}, fmt.Errorf("flush: %w", err)
	}
	if err := h.nc.PublishMsg(&nats.Msg{Subject: subjects.DownCommand(site), Reply: reply, Data: body}); err != nil {
		return uplink.CommandReply{}, fmt.Errorf("publish command: %w", err)
	}
	m, err := sub.NextMsgWithContext(ctx)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		h.metrics.commands.WithLabelValues(site, "unreachable").Inc()
		return uplink.CommandReply{}, ErrSiteUnreachable
	case errors.Is(err, context.DeadlineExceeded):
		h.metrics.commands.WithLabelValues(site, "timeout").Inc()
		return uplink.CommandReply{}, ErrCommandTimeout
	case err != nil:
		return uplink.CommandReply{}, fmt.Errorf("wait for the reply: %w", err)
	}
	var r uplink.CommandReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		h.metrics.commands.WithLabelValues(site, "bad_reply").Inc()
		return uplink.CommandReply{}, fmt.Errorf("site %s sent an unreadable reply: %w", site, err)
	}
	h.metrics.commands.WithLabelValues(site, "replied").Inc()
	return r, nil
}
