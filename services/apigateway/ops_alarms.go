package apigateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/danielgtaylor/huma/v2"
)

type alarmListInput struct {
	Severity string `query:"severity" enum:"critical,major,minor,warning,info" doc:"only this severity"`
	Instance string `query:"instance" maxLength:"128"`
	State    string `query:"state" enum:"raised,acknowledged,cleared,shelved,active,unacked"`
	Shelved  string `query:"shelved" enum:"true,false"`
}

type alarmKeyInput struct {
	Key string `path:"key" maxLength:"256" doc:"alarm key"`
}

type alarmAckInput struct {
	Key  string `path:"key" maxLength:"256" doc:"alarm key"`
	Body struct {
		Comment string `json:"comment,omitempty" maxLength:"1000"`
	}
}

type alarmShelveInput struct {
	Key  string `path:"key" maxLength:"256" doc:"alarm key"`
	Body struct {
		Duration string `json:"duration" maxLength:"32" example:"30m" doc:"up to 7 days"`
		Comment  string `json:"comment,omitempty" maxLength:"1000"`
	}
}

type alarmHistoryInput struct {
	From     string `query:"from" maxLength:"40" doc:"RFC 3339 or Unix ms"`
	To       string `query:"to" maxLength:"40" doc:"RFC 3339 or Unix ms"`
	Severity string `query:"severity" enum:"critical,major,minor,warning,info"`
	Instance string `query:"instance" maxLength:"128"`
	Type     string `query:"type" maxLength:"32" doc:"event type: raised, acknowledged, cleared, shelved, escalated, …"`
	Key      string `query:"key" maxLength:"256"`
	Limit    int    `query:"limit" minimum:"1" maximum:"100000" default:"1000"`
}

type alarmRuleInput struct {
	ID string `path:"id" maxLength:"128"`
}

type alarmRuleBody struct {
	Body json.RawMessage `doc:"the rule, as in alarms.yaml (see docs/alarmsrv.md)"`
}

type alarmRulePutInput struct {
	ID   string          `path:"id" maxLength:"128"`
	Body json.RawMessage `doc:"the rule, as in alarms.yaml (see docs/alarmsrv.md)"`
}

func setQ(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}

func (s *server) registerAlarms(api huma.API) {
	op(s, api, Viewer, huma.Operation{
		OperationID: "listAlarms", Method: http.MethodGet, Path: "/alarms", Tags: []string{"alarms"},
		Summary: "Active alarms, newest first",
	}, func(ctx context.Context, in *alarmListInput) (*rawOutput, error) {
		q := url.Values{}
		setQ(q, "severity", in.Severity)
		setQ(q, "instance", in.Instance)
		setQ(q, "state", in.State)
		setQ(q, "shelved", in.Shelved)
		return s.raw(ctx, "alarmsrv", "/alarms", q)
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "alarmHistory", Method: http.MethodGet, Path: "/alarms/history", Tags: []string{"alarms"},
		Summary: "Alarm events by time range, oldest first",
	}, func(ctx context.Context, in *alarmHistoryInput) (*rawOutput, error) {
		q := url.Values{}
		setQ(q, "from", in.From)
		setQ(q, "to", in.To)
		setQ(q, "severity", in.Severity)
		setQ(q, "instance", in.Instance)
		setQ(q, "type", in.Type)
		setQ(q, "key", in.Key)
		if in.Limit > 0 {
			q.Set("limit", strconv.Itoa(in.Limit))
		}
		return s.raw(ctx, "alarmsrv", "/history", q)
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "getAlarm", Method: http.MethodGet, Path: "/alarms/{key}", Tags: []string{"alarms"},
		Summary: "One active alarm", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *alarmKeyInput) (*rawOutput, error) {
		return s.raw(ctx, "alarmsrv", "/alarms/"+url.PathEscape(in.Key), nil)
	})
	op(s, api, Operator, huma.Operation{
		OperationID: "ackAlarm", Method: http.MethodPost, Path: "/alarms/{key}/ack", Tags: []string{"alarms"},
		Summary: "Acknowledge an alarm (recorded in audit:log by alarmsrv)", Errors: []int{http.StatusNotFound, http.StatusConflict},
	}, func(ctx context.Context, in *alarmAckInput) (*rawOutput, error) {
		return s.post(ctx, "alarmsrv", "/alarms/"+url.PathEscape(in.Key)+"/ack", in.Body)
	})
	op(s, api, Engineer, huma.Operation{
		OperationID: "shelveAlarm", Method: http.MethodPost, Path: "/alarms/{key}/shelve", Tags: []string{"alarms"},
		Summary: "Shelve an alarm for a while", Errors: []int{http.StatusNotFound, http.StatusBadRequest},
	}, func(ctx context.Context, in *alarmShelveInput) (*rawOutput, error) {
		return s.post(ctx, "alarmsrv", "/alarms/"+url.PathEscape(in.Key)+"/shelve", in.Body)
	})
	op(s, api, Engineer, huma.Operation{
		OperationID: "unshelveAlarm", Method: http.MethodPost, Path: "/alarms/{key}/unshelve", Tags: []string{"alarms"},
		Summary: "Unshelve an alarm", Errors: []int{http.StatusNotFound, http.StatusConflict},
	}, func(ctx context.Context, in *alarmAckInput) (*rawOutput, error) {
		return s.post(ctx, "alarmsrv", "/alarms/"+url.PathEscape(in.Key)+"/unshelve", in.Body)
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "listAlarmRules", Method: http.MethodGet, Path: "/alarm-rules", Tags: []string{"alarms"},
		Summary: "Alarm rules as written in alarms.yaml",
	}, func(ctx context.Context, _ *struct{}) (*rawOutput, error) {
		return s.raw(ctx, "alarmsrv", "/rules", nil)
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "getAlarmRule", Method: http.MethodGet, Path: "/alarm-rules/{id}", Tags: []string{"alarms"},
		Summary: "One alarm rule", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *alarmRuleInput) (*rawOutput, error) {
		return s.raw(ctx, "alarmsrv", "/rules/"+url.PathEscape(in.ID), nil)
	})
	op(s, api, Engineer, huma.Operation{
		OperationID: "createAlarmRule", Method: http.MethodPost, Path: "/alarm-rules", Tags: []string{"alarms"},
		Summary: "Add an alarm rule (alarms.yaml is validated as a whole)", DefaultStatus: http.StatusCreated,
		Errors: []int{http.StatusConflict, http.StatusUnprocessableEntity},
	}, func(ctx context.Context, in *alarmRuleBody) (*rawOutput, error) {
		return s.send(ctx, "alarmsrv", http.MethodPost, "/rules", in.Body)
	})
	op(s, api, Engineer, huma.Operation{
		OperationID: "putAlarmRule", Method: http.MethodPut, Path: "/alarm-rules/{id}", Tags: []string{"alarms"},
		Summary: "Replace an alarm rule", Errors: []int{http.StatusNotFound, http.StatusUnprocessableEntity},
	}, func(ctx context.Context, in *alarmRulePutInput) (*rawOutput, error) {
		return s.send(ctx, "alarmsrv", http.MethodPut, "/rules/"+url.PathEscape(in.ID), in.Body)
	})
	op(s, api, Engineer, huma.Operation{
		OperationID: "deleteAlarmRule", Method: http.MethodDelete, Path: "/alarm-rules/{id}", Tags: []string{"alarms"},
		Summary: "Delete an alarm rule", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *alarmRuleInput) (*rawOutput, error) {
		return s.send(ctx, "alarmsrv", http.MethodDelete, "/rules/"+url.PathEscape(in.ID), nil)
	})
}

// post forwards body to service for the caller.
func (s *server) post(ctx context.Context, service, path string, body any) (*rawOutput, error) {
	return s.send(ctx, service, http.MethodPost, path, body)
}

func (s *server) send(ctx context.Context, service, method, path string, body any) (*rawOutput, error) {
	up, err := s.svc.call(ctx, service, method, path, nil, body, caller(ctx).User)
	if err != nil {
		return nil, err
	}
	if len(up.Body) == 0 || !json.Valid(up.Body) {
		return &rawOutput{Body: json.RawMessage(`{}`)}, nil
	}
	return &rawOutput{Body: up.Body}, nil
}
