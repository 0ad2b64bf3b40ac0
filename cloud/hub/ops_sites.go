package hub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/danielgtaylor/huma/v2"

	"github.com/voltageems/voltage/services/hissrv/query"
	"github.com/voltageems/voltage/shared/auth"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/uplink"
)

func itoa(i int) string { return strconv.Itoa(i) }

type sitesOutput struct {
	Body struct {
		Sites []SiteSummary `json:"sites"`
	}
}

type siteInput struct {
	Site string `path:"site" maxLength:"64" pattern:"^[A-Za-z0-9_-]+$"`
}

type siteDetail struct {
	SiteStatus
	Source SourceState `json:"source" doc:"the sourcing of the site's UPLINK stream into the hub"`
}

type siteOutput struct {
	Body siteDetail
}

type valuesInput struct {
	Site string `path:"site" maxLength:"64" pattern:"^[A-Za-z0-9_-]+$"`
	Key  string `query:"key" maxLength:"64" doc:"only this hash, e.g. comsrv:1:T or inst:5:M"`
}

type valuesOutput struct {
	Body struct {
		Site   string  `json:"site"`
		Values []Value `json:"values"`
	}
}

type historyInput struct {
	Site  string   `path:"site" maxLength:"64" pattern:"^[A-Za-z0-9_-]+$"`
	Point []string `query:"point" maxItems:"50" doc:"points as hash:id, e.g. comsrv:1:T:5 or inst:3:M:12; repeat or comma-separate"`
	Start string   `query:"start" doc:"Unix seconds, RFC 3339, now or now-<duration> (now-1h)"`
	End   string   `query:"end" doc:"as start; default now"`
	Step  string   `query:"step" doc:"bucket width (1m, 1h); empty: samples as stored"`
	Agg   string   `query:"agg" enum:"min,max,avg,last,count," doc:"aggregation per bucket (needs a step; default avg)"`
	Tier  string   `query:"tier" doc:"auto (default), raw, 1m or 1h"`
}

type historyOutput struct {
	Body struct {
		Site   string         `json:"site"`
		Series []query.Series `json:"series"`
	}
}

type alarmsInput struct {
	Site string `query:"site" maxLength:"64" doc:"only this site"`
}

type alarmsOutput struct {
	Body struct {
		Alarms []Alarm `json:"alarms"`
	}
}

type siteCommandInput struct {
	Site string `path:"site" maxLength:"64" pattern:"^[A-Za-z0-9_-]+$"`
	Body struct {
		Channel  uint32  `json:"channel,omitempty" doc:"channel point command: the channel"`
		Type     string  `json:"type,omitempty" enum:"C,A," doc:"C = control, A = adjustment"`
		Point    uint32  `json:"point,omitempty"`
		Instance uint32  `json:"instance,omitempty" doc:"instance action: the instance"`
		Action   string  `json:"action,omitempty" maxLength:"64"`
		Value    float64 `json:"value"`
		WaitMS   int64   `json:"wait_ms,omitempty" minimum:"0" maximum:"30000" doc:"how long the site waits for the outcome; default 5000 (the hub waits 5 s longer for the reply)"`
	}
}

type commandReplyOutput struct {
	Body uplink.CommandReply
}

func (a *api) registerSites(hapi huma.API) {
	op(hapi, auth.Viewer, huma.Operation{
		OperationID: "listSites", Method: http.MethodGet, Path: "/sites", Tags: []string{"sites"},
		Summary: "The sites you reach, with status and key figures",
	}, a.listSites)
	op(hapi, auth.Viewer, huma.Operation{
		OperationID: "getSite", Method: http.MethodGet, Path: "/sites/{site}", Tags: []string{"sites"},
		Summary: "A site's status: registry entry, last heartbeat, sourcing", Errors: []int{http.StatusNotFound},
	}, a.getSite)
	op(hapi, auth.Viewer, huma.Operation{
		OperationID: "siteValues", Method: http.MethodGet, Path: "/sites/{site}/values", Tags: []string{"sites"},
		Summary: "The latest value of every point the site sent up", Errors: []int{http.StatusNotFound},
	}, a.siteValues)
	op(hapi, auth.Viewer, huma.Operation{
		OperationID: "siteHistory", Method: http.MethodGet, Path: "/sites/{site}/history", Tags: []string{"history"},
		Summary:     "A range of one or more points of a site from the cloud history",
		Description: "The parameters are hissrv's /history/range ones.",
		Errors:      []int{http.StatusNotFound, http.StatusUnprocessableEntity, http.StatusNotImplemented},
	}, a.siteHistory)
	op(hapi, auth.Viewer, huma.Operation{
		OperationID: "fleetAlarms", Method: http.MethodGet, Path: "/alarms", Tags: []string{"alarms"},
		Summary: "Active alarms of every site you reach",
	}, a.fleetAlarms)
	op(hapi, auth.Operator, huma.Operation{
		OperationID: "siteCommand", Method: http.MethodPost, Path: "/sites/{site}/commands", Tags: []string{"commands"},
		Summary: "Send a command to a site and wait for its reply",
		Description: "A channel point command (channel, type, point) or an instance action (instance, action), " +
			"sent on ems.{site}.down.cmd. The site checks it against its own allow-list of remotely " +
			"controllable points; the answer is its result. 503 when the site is not connected, 504 when it " +
			"did not answer in time (the command may still have run).",
		Errors: []int{http.StatusNotFound, http.StatusUnprocessableEntity, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout},
	}, a.siteCommand)
}

// siteFor checks that the caller reaches site and that the hub knows it. A site
// outside the caller's scope is 403 whether it exists or not.
func (a *api) siteFor(ctx context.Context, id string) (*siteState, error) {
	if err := subjects.ValidSiteID(id); err != nil {
		return nil, huma.Error422UnprocessableEntity(err.Error())
	}
	if !caller(ctx).user.CoversSite(id) {
		return nil, huma.Error403Forbidden("site " + id + " is not in your scope")
	}
	s := a.h.reg.get(id)
	if s == nil {
		return nil, huma.Error404NotFound("no site " + id)
	}
	return s, nil
}

func (a *api) listSites(ctx context.Context, _ *struct{}) (*sitesOutput, error) {
	me := caller(ctx).user
	out := &sitesOutput{}
	out.Body.Sites = []SiteSummary{}
	for _, s := range a.h.reg.list() {
		if me.CoversSite(s.id) {
			out.Body.Sites = append(out.Body.Sites, a.h.reg.summary(s))
		}
	}
	return out, nil
}

func (a *api) getSite(ctx context.Context, in *siteInput) (*siteOutput, error) {
	s, err := a.siteFor(ctx, in.Site)
	if err != nil {
		return nil, err
	}
	src, err := a.h.sourceState(ctx, s.id)
	if err != nil {
		src.Error = err.Error()
	}
	return &siteOutput{Body: siteDetail{SiteStatus: a.h.reg.status(s), Source: src}}, nil
}

func (a *api) siteValues(ctx context.Context, in *valuesInput) (*valuesOutput, error) {
	s, err := a.siteFor(ctx, in.Site)
	if err != nil {
		return nil, err
	}
	out := &valuesOutput{}
	out.Body.Site, out.Body.Values = s.id, s.values(in.Key)
	return out, nil
}

func (a *api) siteHistory(ctx context.Context, in *historyInput) (*historyOutput, error) {
	s, err := a.siteFor(ctx, in.Site)
	if err != nil {
		return nil, err
	}
	v := url.Values{"point": in.Point}
	for k, val := range map[string]string{"start": in.Start, "end": in.End, "step": in.Step, "agg": in.Agg, "tier": in.Tier} {
		if val != "" {
			v.Set(k, val)
		}
	}
	series, err := a.h.historyRange(ctx, s.id, v)
	var bad badRequest
	switch {
	case errors.As(err, &bad):
		return nil, huma.Error422UnprocessableEntity(bad.Error())
	case errors.Is(err, query.ErrNotFound):
		return nil, huma.Error404NotFound(err.Error())
	case errors.Is(err, errNoHistory):
		return nil, huma.NewError(http.StatusNotImplemented, err.Error())
	case err != nil:
		a.log.Warn("history query failed", "site", s.id, "err", err)
		return nil, huma.Error503ServiceUnavailable("the history store cannot answer now")
	}
	out := &historyOutput{}
	out.Body.Site, out.Body.Series = s.id, series
	return out, nil
}

func (a *api) fleetAlarms(ctx context.Context, in *alarmsInput) (*alarmsOutput, error) {
	out := &alarmsOutput{}
	out.Body.Alarms = []Alarm{}
	if in.Site != "" {
		s, err := a.siteFor(ctx, in.Site)
		if err != nil {
			return nil, err
		}
		out.Body.Alarms = s.activeAlarms()
		return out, nil
	}
	me := caller(ctx).user
	for _, s := range a.h.reg.list() {
		if me.CoversSite(s.id) {
			out.Body.Alarms = append(out.Body.Alarms, s.activeAlarms()...)
		}
	}
	return out, nil
}

func (a *api) siteCommand(ctx context.Context, in *siteCommandInput) (*commandReplyOutput, error) {
	s, err := a.siteFor(ctx, in.Site)
	if err != nil {
		return nil, err
	}
	b := in.Body
	pointCmd := b.Channel != 0 || b.Type != "" || b.Point != 0
	action := b.Instance != 0 || b.Action != ""
	switch {
	case pointCmd == action:
		return nil, huma.Error422UnprocessableEntity("give either channel, type and point, or instance and action")
	case pointCmd && (b.Channel == 0 || b.Type == ""):
		return nil, huma.Error422UnprocessableEntity("a point command needs channel, type (C or A) and point")
	case action && (b.Instance == 0 || b.Action == ""):
		return nil, huma.Error422UnprocessableEntity("an instance action needs instance and action")
	}
	if b.WaitMS == 0 {
		// Explicit, so the hub's own wait (wait_ms + 5 s) always outlasts the site's,
		// whatever default the site has.
		b.WaitMS = DefaultCommandWaitMS
	}
	me := caller(ctx)
	cmd := uplink.Command{Channel: b.Channel, Type: b.Type, Point: b.Point, Instance: b.Instance, Action: b.Action,
		Value: b.Value, User: me.User, WaitMS: b.WaitMS}
	reply, err := a.h.sendCommand(ctx, s.id, cmd)
	target := fmt.Sprintf("%d:%s:%d", b.Channel, b.Type, b.Point)
	if action {
		target = fmt.Sprintf("%d/%s", b.Instance, b.Action)
	}
	outcome := string(reply.Result.Status)
	if err != nil {
		outcome = err.Error()
	}
	a.h.audit(ctx, "command", me.User, s.id, "id", reply.Result.ID, "target", target,
		"value", strconv.FormatFloat(b.Value, 'f', -1, 64), "outcome", outcome)
	switch {
	case errors.Is(err, ErrSiteUnreachable):
		return nil, huma.Error503ServiceUnavailable("site " + s.id + " is not connected or does not take commands")
	case errors.Is(err, ErrCommandTimeout):
		return nil, huma.Error504GatewayTimeout(err.Error())
	case err != nil:
		a.log.Warn("command failed", "site", s.id, "err", err)
		return nil, huma.Error502BadGateway(err.Error())
	}
	a.log.Info("command sent to site", "site", s.id, "user", me.User, "channel", b.Channel, "type", b.Type,
		"point", b.Point, "instance", b.Instance, "action", b.Action, "value", b.Value, "status", reply.Result.Status)
	return &commandReplyOutput{Body: reply}, nil
}
