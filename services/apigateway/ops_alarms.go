package apigateway

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/danielgtaylor/huma/v2"

	"github.com/voltageems/voltage/services/alarmsrv"
)

// alarmEvent is an entry of the alarm history (schema AlarmEvent).
type alarmEvent alarmsrv.Event

// alarmRule is an alarm rule as in alarms.yaml (schema AlarmRule).
type alarmRule alarmsrv.RuleDoc

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
	Body alarmRule `doc:"the rule, as in alarms.yaml (see docs/alarmsrv.md)"`
}

type alarmRulePutInput struct {
	ID   string    `path:"id" maxLength:"128"`
	Body alarmRule `doc:"the rule, as in alarms.yaml (see docs/alarmsrv.md); its id is the path's"`
}

func setQ(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}

func (s *server) registerAlarms(api huma.API) {
	op(s, api, Viewer, huma.Operation{
		OperationID: "listAlarms", Method: http.MethodGet, Path: "/alarms", Tags: []string{"alarms"},
		Summary:   "Active alarms, newest first",
		Responses: encodedAs(api, []alarmsrv.Alarm{}, "Alarms"),
	}, func(ctx context.Context, in *alarmListInput) (*jsonOutput, error) {
		q := url.Values{}
		setQ(q, "severity", in.Severity)
		setQ(q, "instance", in.Instance)
		setQ(q, "state", in.State)
		setQ(q, "shelved", in.Shelved)
		return s.forward(ctx, "alarmsrv", "/alarms", q)
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "alarmHistory", Method: http.MethodGet, Path: "/alarms/history", Tags: []string{"alarms"},
		Summary:   "Alarm events by time range, oldest first",
		Responses: encodedAs(api, []alarmEvent{}, "AlarmEvents"),
	}, func(ctx context.Context, in *alarmHistoryInput) (*jsonOutput, error) {
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
		return s.forward(ctx, "alarmsrv", "/history", q)
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "getAlarm", Method: http.MethodGet, Path: "/alarms/{key}", Tags: []string{"alarms"},
		Summary: "One active alarm", Errors: []int{http.StatusNotFound},
		Responses: encodedAs(api, alarmsrv.Alarm{}, "Alarm"),
	}, func(ctx context.Context, in *alarmKeyInput) (*jsonOutput, error) {
		return s.forward(ctx, "alarmsrv", "/alarms/"+url.PathEscape(in.Key), nil)
	})
	op(s, api, Operator, huma.Operation{
		OperationID: "ackAlarm", Method: http.MethodPost, Path: "/alarms/{key}/ack", Tags: []string{"alarms"},
		Summary: "Acknowledge an alarm (recorded in audit:log by alarmsrv)", Errors: []int{http.StatusNotFound, http.StatusConflict},
		Responses: encodedAs(api, alarmsrv.Alarm{}, "Alarm"),
	}, func(ctx context.Context, in *alarmAckInput) (*jsonOutput, error) {
		return s.forwardSend(ctx, "alarmsrv", http.MethodPost, "/alarms/"+url.PathEscape(in.Key)+"/ack", in.Body, http.StatusOK)
	})
	op(s, api, Engineer, huma.Operation{
		OperationID: "shelveAlarm", Method: http.MethodPost, Path: "/alarms/{key}/shelve", Tags: []string{"alarms"},
		Summary: "Shelve an alarm for a while", Errors: []int{http.StatusNotFound, http.StatusBadRequest},
		Responses: encodedAs(api, alarmsrv.Alarm{}, "Alarm"),
	}, func(ctx context.Context, in *alarmShelveInput) (*jsonOutput, error) {
		return s.forwardSend(ctx, "alarmsrv", http.MethodPost, "/alarms/"+url.PathEscape(in.Key)+"/shelve", in.Body, http.StatusOK)
	})
	op(s, api, Engineer, huma.Operation{
		OperationID: "unshelveAlarm", Method: http.MethodPost, Path: "/alarms/{key}/unshelve", Tags: []string{"alarms"},
		Summary: "Unshelve an alarm", Errors: []int{http.StatusNotFound, http.StatusConflict},
		Responses: encodedAs(api, alarmsrv.Alarm{}, "Alarm"),
	}, func(ctx context.Context, in *alarmAckInput) (*jsonOutput, error) {
		return s.forwardSend(ctx, "alarmsrv", http.MethodPost, "/alarms/"+url.PathEscape(in.Key)+"/unshelve", in.Body, http.StatusOK)
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "listAlarmRules", Method: http.MethodGet, Path: "/alarm-rules", Tags: []string{"alarms"},
		Summary:   "Alarm rules as written in alarms.yaml",
		Responses: encodedAs(api, []alarmRule{}, "AlarmRules"),
	}, func(ctx context.Context, _ *struct{}) (*jsonOutput, error) {
		return s.forward(ctx, "alarmsrv", "/rules", nil)
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "getAlarmRule", Method: http.MethodGet, Path: "/alarm-rules/{id}", Tags: []string{"alarms"},
		Summary: "One alarm rule", Errors: []int{http.StatusNotFound},
		Responses: encodedAs(api, alarmRule{}, "AlarmRule"),
	}, func(ctx context.Context, in *alarmRuleInput) (*jsonOutput, error) {
		return s.forward(ctx, "alarmsrv", "/rules/"+url.PathEscape(in.ID), nil)
	})
	op(s, api, Engineer, huma.Operation{
		OperationID: "createAlarmRule", Method: http.MethodPost, Path: "/alarm-rules", Tags: []string{"alarms"},
		Summary: "Add an alarm rule (alarms.yaml is validated as a whole)", DefaultStatus: http.StatusCreated,
		Errors:    []int{http.StatusConflict, http.StatusUnprocessableEntity},
		Responses: documented(api, http.StatusCreated, alarmRule{}, "AlarmRule"),
	}, func(ctx context.Context, in *alarmRuleBody) (*jsonOutput, error) {
		return s.forwardSend(ctx, "alarmsrv", http.MethodPost, "/rules", in.Body, http.StatusCreated)
	})
	op(s, api, Engineer, huma.Operation{
		OperationID: "putAlarmRule", Method: http.MethodPut, Path: "/alarm-rules/{id}", Tags: []string{"alarms"},
		Summary: "Replace an alarm rule", Errors: []int{http.StatusNotFound, http.StatusUnprocessableEntity},
		Responses: encodedAs(api, alarmRule{}, "AlarmRule"),
	}, func(ctx context.Context, in *alarmRulePutInput) (*jsonOutput, error) {
		return s.forwardSend(ctx, "alarmsrv", http.MethodPut, "/rules/"+url.PathEscape(in.ID), in.Body, http.StatusOK)
	})
	op(s, api, Engineer, huma.Operation{
		OperationID: "deleteAlarmRule", Method: http.MethodDelete, Path: "/alarm-rules/{id}", Tags: []string{"alarms"},
		Summary: "Delete an alarm rule", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *alarmRuleInput) (*deletedOutput, error) {
		return s.forwardDelete(ctx, "alarmsrv", "/rules/"+url.PathEscape(in.ID))
	})
}
