package apigateway

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/voltageems/voltage/shared/keyspace"
)

type auditInput struct {
	Limit  int    `query:"limit" minimum:"1" maximum:"1000" default:"100"`
	Before string `query:"before" maxLength:"40" pattern:"^[0-9]+-[0-9]+$" doc:"cursor: entries older than this id (next_before of the previous page)"`
}

type auditEntry struct {
	ID     string            `json:"id" doc:"stream id"`
	Fields map[string]string `json:"fields" doc:"ts, action, user, source and what the action was about"`
}

type auditOutput struct {
	Body struct {
		Entries    []auditEntry `json:"entries"`
		NextBefore string       `json:"next_before,omitempty"`
	}
}

func (s *server) registerAudit(api huma.API) {
	op(s, api, Admin, huma.Operation{
		OperationID: "auditLog", Method: http.MethodGet, Path: "/audit", Tags: []string{"audit"},
		Summary: "Who did what, newest first: logins, commands, acknowledgements, configuration changes",
	}, func(ctx context.Context, in *auditInput) (*auditOutput, error) {
		limit := in.Limit
		if limit <= 0 {
			limit = 100
		}
		end := "+"
		if in.Before != "" {
			end = "(" + in.Before
		}
		msgs, err := s.rdb.XRevRangeN(ctx, keyspace.Audit, end, "-", int64(limit)).Result()
		if err != nil {
			return nil, huma.Error503ServiceUnavailable("the state store does not answer")
		}
		out := &auditOutput{}
		out.Body.Entries = make([]auditEntry, 0, len(msgs))
		for _, m := range msgs {
			f := make(map[string]string, len(m.Values))
			for k, v := range m.Values {
				f[k] = str(v)
			}
			out.Body.Entries = append(out.Body.Entries, auditEntry{ID: m.ID, Fields: f})
		}
		if len(msgs) == limit {
			out.Body.NextBefore = msgs[len(msgs)-1].ID
		}
		return out, nil
	})
}
