package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/voltageems/voltage/shared/auth"
	"github.com/voltageems/voltage/shared/subjects"
)

// The cloud's audit trail (DESIGN §11: everything an operator does is recorded):
// logins, user changes and commands to sites, one message each in the stream
// subjects.CloudAuditStream, kept a year. A site records a cloud command in its
// own audit:log too, with the cloud user.

// AuditEntry is one audited action.
type AuditEntry struct {
	Seq    uint64            `json:"seq"`
	TS     int64             `json:"ts" doc:"Unix ms"`
	Action string            `json:"action" doc:"login, login_failed, logout, user_created, user_deleted, command"`
	User   string            `json:"user"`
	Site   string            `json:"site,omitempty"`
	Fields map[string]string `json:"fields,omitempty"`
}

func (h *hub) openAudit(ctx context.Context) error {
	var b backoff
	for {
		_, err := h.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: subjects.CloudAuditStream, Description: "VoltageEMS cloud audit trail",
			Subjects: []string{subjects.CloudAudit}, Storage: jetstream.FileStorage,
			MaxAge: 365 * 24 * time.Hour, MaxMsgs: 10_000_000, Discard: jetstream.DiscardOld,
		})
		if err == nil {
			return nil
		}
		h.log.Warn("cannot create the audit stream; retrying", "stream", subjects.CloudAuditStream, "err", err)
		if !sleep(ctx, b.next()) {
			return fmt.Errorf("create stream %s: %w", subjects.CloudAuditStream, err)
		}
	}
}

// audit records an action; fields are key, value pairs. A record that cannot be
// written is logged (the action itself already happened).
func (h *hub) audit(ctx context.Context, action, user, site string, fields ...string) {
	e := AuditEntry{TS: time.Now().UnixMilli(), Action: action, User: user, Site: site}
	if len(fields) > 0 {
		e.Fields = map[string]string{}
		for i := 0; i+1 < len(fields); i += 2 {
			e.Fields[fields[i]] = fields[i+1]
		}
	}
	b, _ := json.Marshal(e)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if _, err := h.js.Publish(ctx, subjects.CloudAudit, b); err != nil {
		h.log.Warn("audit record not written", "action", action, "user", user, "site", site, "err", err)
	}
}

// recentAudit returns up to limit entries, newest first.
func (h *hub) recentAudit(ctx context.Context, limit int) ([]AuditEntry, error) {
	str, err := h.js.Stream(ctx, subjects.CloudAuditStream)
	if err != nil {
		return nil, err
	}
	info, err := str.Info(ctx)
	if err != nil {
		return nil, err
	}
	out := []AuditEntry{}
	for seq := info.State.LastSeq; seq >= info.State.FirstSeq && seq > 0 && len(out) < limit; seq-- {
		m, err := str.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var e AuditEntry
		if json.Unmarshal(m.Data, &e) != nil {
			continue
		}
		e.Seq = seq
		out = append(out, e)
	}
	return out, nil
}

type auditInput struct {
	Limit int `query:"limit" minimum:"1" maximum:"1000" default:"100"`
}

type auditOutput struct {
	Body struct {
		Entries []AuditEntry `json:"entries"`
	}
}

func (a *api) registerAudit(hapi huma.API) {
	op(hapi, auth.Admin, huma.Operation{
		OperationID: "audit", Method: http.MethodGet, Path: "/audit", Tags: []string{"audit"},
		Summary: "The cloud's audit trail, newest first: logins, user changes, commands to sites",
	}, func(ctx context.Context, in *auditInput) (*auditOutput, error) {
		es, err := a.h.recentAudit(ctx, in.Limit)
		if err != nil {
			return nil, huma.Error503ServiceUnavailable("the audit stream does not answer")
		}
		out := &auditOutput{}
		out.Body.Entries = es
		return out, nil
	})
}
