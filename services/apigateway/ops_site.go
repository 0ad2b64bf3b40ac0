package apigateway

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"

	"github.com/danielgtaylor/huma/v2"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
)

type serviceHealth struct {
	Name     string            `json:"name"`
	Instance string            `json:"instance"`
	Fields   map[string]string `json:"fields" doc:"the heartbeat hash: version, started, …"`
}

type channelStatus struct {
	ID       uint32            `json:"id"`
	Name     string            `json:"name"`
	Protocol string            `json:"protocol"`
	Enabled  bool              `json:"enabled"`
	Status   map[string]string `json:"status" doc:"comsrv's status hash: state (connecting/up/down), last_ok, last_error, polls, errors, rtt_us; empty when comsrv has not reported"`
}

type siteOutput struct {
	Body struct {
		ID       string          `json:"id"`
		Name     string          `json:"name"`
		Services []serviceHealth `json:"services" doc:"services with a live heartbeat"`
		Channels []channelStatus `json:"channels"`
	}
}

type channelsOutput struct {
	Body struct {
		Channels []channelStatus `json:"channels"`
	}
}

type channelInput struct {
	Channel uint32 `path:"channel" minimum:"1"`
}

type channelOutput struct {
	Body channelStatus
}

// channelRuntime is comsrv's own view of a channel it runs.
type channelRuntime struct {
	ID       uint32 `json:"id"`
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
	Enabled  bool   `json:"enabled"`
	State    string `json:"state" doc:"connecting, up, down or disabled"`
	Points   int    `json:"points" doc:"points in the channel's tables"`
}

type comsrvChannelsOutput struct {
	Body []channelRuntime
}

type channelRuntimeOutput struct {
	Body channelRuntime
}

// channelPoint is one point of a channel's point tables with its live value.
type channelPoint struct {
	pointValue
	Name        string   `json:"name" doc:"signal_name of the point table"`
	Unit        string   `json:"unit,omitempty"`
	DataType    string   `json:"data_type,omitempty" doc:"type of the engineering value as written in the table (bool, int, float, …)"`
	Description string   `json:"description,omitempty"`
	Min         *float64 `json:"min,omitempty" doc:"adjustments: the least value comsrv accepts"`
	Max         *float64 `json:"max,omitempty" doc:"adjustments: the greatest value comsrv accepts"`
	Step        *float64 `json:"step,omitempty" doc:"adjustments: the step of the value"`
	ControlType string   `json:"control_type,omitempty" doc:"controls: momentary, latching or pulse"`
}

type channelPointsInput struct {
	Channel uint32 `path:"channel" minimum:"1"`
	Type    string `query:"type" enum:"T,S,C,A," doc:"only points of this type"`
}

type channelPointsOutput struct {
	Body struct {
		Channel uint32         `json:"channel"`
		Points  []channelPoint `json:"points" doc:"in the order of the point tables: T, S, C, A"`
	}
}

func (s *server) registerSite(api huma.API) {
	op(s, api, Viewer, huma.Operation{
		OperationID: "getSite", Method: http.MethodGet, Path: "/site", Tags: []string{"site"},
		Summary: "Site status: identity, running services, channel links",
	}, func(ctx context.Context, _ *struct{}) (*siteOutput, error) {
		out := &siteOutput{}
		out.Body.ID, out.Body.Name = s.cfg.Site.Site.Site.ID, s.cfg.Site.Site.Site.Name
		svcs, err := s.services(ctx)
		if err != nil {
			return nil, err
		}
		chs, err := s.channels(ctx)
		if err != nil {
			return nil, err
		}
		out.Body.Services, out.Body.Channels = svcs, chs
		return out, nil
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "listChannels", Method: http.MethodGet, Path: "/channels", Tags: []string{"channels"},
		Summary: "Channels of the site with their link status",
	}, func(ctx context.Context, _ *struct{}) (*channelsOutput, error) {
		chs, err := s.channels(ctx)
		if err != nil {
			return nil, err
		}
		out := &channelsOutput{}
		out.Body.Channels = chs
		return out, nil
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "getChannel", Method: http.MethodGet, Path: "/channels/{channel}", Tags: []string{"channels"},
		Summary: "One channel with its link status", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *channelInput) (*channelOutput, error) {
		chs, err := s.channels(ctx)
		if err != nil {
			return nil, err
		}
		for _, c := range chs {
			if c.ID == in.Channel {
				return &channelOutput{Body: c}, nil
			}
		}
		return nil, huma.Error404NotFound("no channel " + itoa(in.Channel))
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "comsrvChannels", Method: http.MethodGet, Path: "/channels/runtime", Tags: []string{"channels"},
		Summary: "comsrv's own view of its running channels (as GET /channels of comsrv answers it)", Errors: []int{http.StatusBadGateway},
	}, func(ctx context.Context, _ *struct{}) (*comsrvChannelsOutput, error) {
		b, err := s.svc.getJSON(ctx, "comsrv", "/channels", nil, caller(ctx).User)
		if err != nil {
			return nil, err
		}
		out := &comsrvChannelsOutput{}
		if err := json.Unmarshal(b, &out.Body); err != nil {
			return nil, huma.Error502BadGateway("comsrv answered channels in an unknown shape")
		}
		return out, nil
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "channelPoints", Method: http.MethodGet, Path: "/channels/{channel}/points", Tags: []string{"channels"},
		Summary:     "A channel's points: name, unit, limits and live value",
		Description: "The point tables of the channel as the site folder defines them, each with its realtime value, quality and timestamp (value null and quality missing for a point never read).",
		Errors:      []int{http.StatusNotFound},
	}, func(ctx context.Context, in *channelPointsInput) (*channelPointsOutput, error) {
		ch := s.cfg.Site.Channel(in.Channel)
		if ch == nil {
			return nil, huma.Error404NotFound("no channel " + itoa(in.Channel))
		}
		var defs []config.Point
		var refs []pointRef
		for _, t := range point.Types {
			if in.Type != "" && in.Type != t.String() {
				continue
			}
			for _, p := range ch.Points[t] {
				defs = append(defs, p)
				refs = append(refs, pointRef{Channel: ch.ID, Type: t.String(), Point: uint32(p.ID)})
			}
		}
		out := &channelPointsOutput{}
		out.Body.Channel, out.Body.Points = ch.ID, make([]channelPoint, len(defs))
		if len(refs) == 0 {
			return out, nil
		}
		vals, err := s.readPoints(ctx, refs)
		if err != nil {
			return nil, err
		}
		for i, d := range defs {
			out.Body.Points[i] = channelPoint{pointValue: vals[i], Name: d.Name, Unit: d.Unit, DataType: d.DataType,
				Description: d.Description, Min: d.Min, Max: d.Max, Step: d.Step, ControlType: d.ControlType}
		}
		return out, nil
	})
	control := func(role Role, id, verb, summary, desc string) {
		op(s, api, role, huma.Operation{
			OperationID: id, Method: http.MethodPost, Path: "/channels/{channel}/" + verb, Tags: []string{"channels"},
			Summary: summary, Description: desc,
			Errors: []int{http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity, http.StatusBadGateway},
		}, func(ctx context.Context, in *channelInput) (*channelRuntimeOutput, error) {
			up, err := s.svc.call(ctx, "comsrv", http.MethodPost, "/channels/"+itoa(in.Channel)+"/"+verb, nil, nil, caller(ctx).User)
			if err != nil {
				return nil, err
			}
			out := &channelRuntimeOutput{}
			if err := json.Unmarshal(up.Body, &out.Body); err != nil {
				return nil, huma.Error502BadGateway("comsrv answered in an unknown shape")
			}
			return out, nil
		})
	}
	control(Engineer, "enableChannel", "enable", "Enable a channel (written into channels.yaml)",
		"Sets enabled: true for the channel in comsrv/channels.yaml, keeping the rest of the file, and applies it. "+
			"Refused (422) when the site folder does not load with the change; the file is then left as it was. Recorded in audit:log by comsrv.")
	control(Engineer, "disableChannel", "disable", "Disable a channel (written into channels.yaml)",
		"Sets enabled: false and stops the channel's link; its commands are rejected while it is disabled. Recorded in audit:log by comsrv.")
	control(Operator, "restartChannel", "restart", "Restart a channel's link",
		"Drops the channel's connection and starts it again (a stuck device, a changed network). 409 for a disabled channel. Recorded in audit:log by comsrv.")
}

func (s *server) services(ctx context.Context) ([]serviceHealth, error) {
	var keys []string
	iter := s.rdb.Scan(ctx, 0, keyspace.ServiceHeartbeatPattern, 100).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, huma.Error503ServiceUnavailable("the state store does not answer")
	}
	sort.Strings(keys)
	pipe := s.rdb.Pipeline()
	cmds := make([]interface{ Val() map[string]string }, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HGetAll(ctx, k)
	}
	if len(keys) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, huma.Error503ServiceUnavailable("the state store does not answer")
		}
	}
	out := make([]serviceHealth, 0, len(keys))
	for i, k := range keys {
		name, inst, ok := keyspace.ParseServiceHeartbeat(k)
		if !ok || len(cmds[i].Val()) == 0 {
			continue
		}
		out = append(out, serviceHealth{Name: name, Instance: inst, Fields: cmds[i].Val()})
	}
	return out, nil
}

func (s *server) channels(ctx context.Context) ([]channelStatus, error) {
	chs := s.cfg.Site.Channels
	pipe := s.rdb.Pipeline()
	cmds := make([]interface{ Val() map[string]string }, len(chs))
	for i := range chs {
		cmds[i] = pipe.HGetAll(ctx, keyspace.ChannelStatus(chs[i].ID))
	}
	if len(chs) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, huma.Error503ServiceUnavailable("the state store does not answer")
		}
	}
	out := make([]channelStatus, len(chs))
	for i := range chs {
		st := cmds[i].Val()
		if st == nil {
			st = map[string]string{}
		}
		// comsrv marks a disabled channel in its status, also one disabled through
		// the API after the gateway read channels.yaml.
		enabled := chs[i].Enabled
		if state, ok := st["state"]; ok {
			enabled = state != "disabled"
		}
		out[i] = channelStatus{ID: chs[i].ID, Name: chs[i].Name, Protocol: chs[i].Protocol, Enabled: enabled, Status: st}
	}
	return out, nil
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }
