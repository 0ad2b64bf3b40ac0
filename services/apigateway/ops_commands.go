package apigateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
)

// maxWait bounds how long a request waits for a command's outcome.
const maxWait = 30 * time.Second

type commandInput struct {
	Body struct {
		Channel uint32  `json:"channel" minimum:"1"`
		Type    string  `json:"type" enum:"C,A" doc:"C = control (0/1), A = adjustment (setpoint)"`
		Point   uint32  `json:"point"`
		Value   float64 `json:"value" doc:"engineering value"`
		WaitMS  int     `json:"wait_ms,omitempty" minimum:"0" maximum:"30000" doc:"wait up to this long for the outcome; 0 answers at once (status pending)"`
		ID      string  `json:"id,omitempty" minLength:"8" maxLength:"64" pattern:"^[A-Za-z0-9_.:-]+$" doc:"your own id for this command, to send it again safely after a lost answer: an id already used (within 24 h) for the same command is not sent again, the answer is that command's outcome; for a different command it is 409"`
	}
}

type commandResult struct {
	ID      string `json:"id"`
	Channel uint32 `json:"channel,omitempty"`
	Type    string `json:"type,omitempty"`
	Point   uint32 `json:"point,omitempty"`
	Status  string `json:"status" enum:"pending,executing,ok,failed,expired,rejected"`
	Error   string `json:"error,omitempty"`
	DoneTS  int64  `json:"done_ts,omitempty" doc:"Unix ms of the outcome"`
}

func resultView(r command.Result) commandResult {
	return commandResult{ID: r.ID, Channel: r.Channel, Type: r.Type, Point: r.Point, Status: string(r.Status), Error: r.Error, DoneTS: r.DoneTS}
}

type commandOutput struct {
	Body commandResult
}

type commandIDInput struct {
	ID string `path:"id" maxLength:"64" pattern:"^[A-Za-z0-9_.:-]+$"`
}

type recentInput struct {
	Limit int `query:"limit" minimum:"1" maximum:"1000" default:"50"`
}

type recentCommand struct {
	ID      string `json:"id"`
	User    string `json:"user"`
	TS      int64  `json:"ts" doc:"Unix ms when submitted"`
	Kind    string `json:"kind" enum:"command,action"`
	Target  string `json:"target" doc:"channel:type:point, or instance/action"`
	Value   string `json:"value"`
	AuditID string `json:"audit_id" doc:"id of the audit:log entry"`
}

type recentOutput struct {
	Body struct {
		Commands []recentCommand `json:"commands"`
	}
}

func (s *server) registerCommands(api huma.API) {
	op(s, api, Operator, huma.Operation{
		OperationID: "sendCommand", Method: http.MethodPost, Path: "/commands", Tags: []string{"commands"},
		Summary: "Send a control or adjustment command to a channel point",
		Description: "comsrv checks the point and its limits and executes it in order with the polling; the answer is the result (status pending without wait_ms). " +
			"With your own id, a retry after a lost answer (a timeout, a restarted gateway) does not run the command twice.",
		DefaultStatus: http.StatusAccepted, Errors: []int{http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity},
	}, s.sendCommand)
	op(s, api, Viewer, huma.Operation{
		OperationID: "getCommand", Method: http.MethodGet, Path: "/commands/{id}", Tags: []string{"commands"},
		Summary: "The result of a command or an instance action", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *commandIDInput) (*commandOutput, error) {
		r, err := command.Get(ctx, s.rdb, in.ID)
		if errors.Is(err, redis.Nil) {
			return nil, huma.Error404NotFound("no command " + in.ID + " (results are kept 24 h)")
		}
		if err != nil {
			return nil, huma.Error503ServiceUnavailable("the state store does not answer")
		}
		return &commandOutput{Body: resultView(r)}, nil
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "recentCommands", Method: http.MethodGet, Path: "/commands", Tags: []string{"commands"},
		Summary: "Commands and actions recently sent through the API, newest first",
	}, s.recentCommands)
}

func (s *server) sendCommand(ctx context.Context, in *commandInput) (*commandOutput, error) {
	b := in.Body
	ch := s.cfg.Site.Channel(b.Channel)
	if ch == nil {
		return nil, huma.Error404NotFound(fmt.Sprintf("no channel %d", b.Channel))
	}
	t, err := point.ParseType(b.Type)
	if err != nil || (t != point.Control && t != point.Adjustment) {
		return nil, huma.Error422UnprocessableEntity("type: commands go to C or A points")
	}
	if ch.Point(t, b.Point) == nil {
		return nil, huma.Error404NotFound(fmt.Sprintf("channel %d has no %s point %d", b.Channel, t, b.Point))
	}
	me := caller(ctx)
	c := command.Command{ID: b.ID, Channel: b.Channel, Type: t, Point: b.Point, Value: b.Value, Source: "api", User: me.User}
	id, created := b.ID, true
	if id == "" {
		id, err = command.Submit(ctx, s.rdb, c)
	} else {
		created, err = command.SubmitOnce(ctx, s.rdb, c)
	}
	switch {
	case errors.Is(err, command.ErrIDInUse):
		return nil, huma.Error409Conflict("id " + id + " is already used for a different command (ids are kept 24 h)")
	case err != nil:
		return nil, huma.Error503ServiceUnavailable("the command could not be queued: the state store does not answer")
	case !created: // a retry: the first submission was audited
		return s.outcome(ctx, id, b.WaitMS)
	}
	s.audit(ctx, "command_submitted", me.User, "id", id, "kind", "command",
		"target", fmt.Sprintf("%d:%s:%d", b.Channel, t, b.Point), "value", point.FormatValue(b.Value))
	return s.outcome(ctx, id, b.WaitMS)
}

// outcome answers a submitted command: its result after waiting up to waitMS.
func (s *server) outcome(ctx context.Context, id string, waitMS int) (*commandOutput, error) {
	if waitMS > 0 {
		wctx, cancel := context.WithTimeout(ctx, min(time.Duration(waitMS)*time.Millisecond, maxWait))
		r, err := command.Wait(wctx, s.rdb, id)
		cancel()
		if err == nil {
			return &commandOutput{Body: resultView(r)}, nil
		}
	}
	r, err := command.Get(ctx, s.rdb, id)
	if err != nil {
		return &commandOutput{Body: commandResult{ID: id, Status: string(command.Pending)}}, nil
	}
	return &commandOutput{Body: resultView(r)}, nil
}

func (s *server) recentCommands(ctx context.Context, in *recentInput) (*recentOutput, error) {
	limit := in.Limit
	if limit <= 0 {
		limit = 50
	}
	out := &recentOutput{}
	out.Body.Commands = []recentCommand{}
	end := "+"
	// Scan the audit log backwards in pages; bounded so a log without commands
	// does not make the request read a million entries.
	for scanned := 0; scanned < 20_000 && len(out.Body.Commands) < limit; {
		msgs, err := s.rdb.XRevRangeN(ctx, keyspace.Audit, end, "-", 1000).Result()
		if err != nil {
			return nil, huma.Error503ServiceUnavailable("the state store does not answer")
		}
		for _, m := range msgs {
			if m.Values["action"] != "command_submitted" || m.Values["source"] != "api" {
				continue
			}
			ts, _ := strconv.ParseInt(str(m.Values["ts"]), 10, 64)
			out.Body.Commands = append(out.Body.Commands, recentCommand{
				ID: str(m.Values["id"]), User: str(m.Values["user"]), TS: ts, Kind: str(m.Values["kind"]),
				Target: str(m.Values["target"]), Value: str(m.Values["value"]), AuditID: m.ID,
			})
			if len(out.Body.Commands) == limit {
				break
			}
		}
		scanned += len(msgs)
		if len(msgs) < 1000 {
			break
		}
		end = "(" + msgs[len(msgs)-1].ID
	}
	return out, nil
}
