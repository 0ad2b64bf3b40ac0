package apigateway

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/voltageems/voltage/services/rulesrv"
)

// ruleEvaluation is the answer of a dry run (schema RuleEvaluation).
type ruleEvaluation rulesrv.Evaluation

type ruleIDInput struct {
	ID string `path:"id" maxLength:"128"`
}

type ruleBodyInput struct {
	Body rulesrv.RuleFile `doc:"the rule as JSON, with the keys of a rule file (see docs/rulesrv.md)"`
}

type rulePutInput struct {
	ID   string           `path:"id" maxLength:"128"`
	Body rulesrv.RuleFile `doc:"the rule as JSON, with the keys of a rule file (see docs/rulesrv.md)"`
}

type ruleExecInput struct {
	ID    string `path:"id" maxLength:"128"`
	Count int    `query:"count" minimum:"1" maximum:"1000" default:"50"`
}

type ruleEventsInput struct {
	Rule  string `query:"rule" maxLength:"128"`
	Count int    `query:"count" minimum:"1" maximum:"1000" default:"50"`
}

func (s *server) registerRules(api huma.API) {
	tags := []string{"rules"}
	op(s, api, Viewer, huma.Operation{
		OperationID: "listRules", Method: http.MethodGet, Path: "/rules", Tags: tags,
		Summary:   "Automation rules with their status",
		Responses: encodedAs(api, []rulesrv.RuleView{}, "RuleViews"),
	}, func(ctx context.Context, _ *struct{}) (*jsonOutput, error) {
		return s.forward(ctx, "rulesrv", "/rules", nil)
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "getRule", Method: http.MethodGet, Path: "/rules/{id}", Tags: tags,
		Summary: "One rule: definition, status and last execution", Errors: []int{http.StatusNotFound},
		Responses: encodedAs(api, rulesrv.RuleView{}, "RuleView"),
	}, func(ctx context.Context, in *ruleIDInput) (*jsonOutput, error) {
		return s.forward(ctx, "rulesrv", "/rules/"+url.PathEscape(in.ID), nil)
	})
	op(s, api, Engineer, huma.Operation{
		OperationID: "createRule", Method: http.MethodPost, Path: "/rules", Tags: tags,
		Summary: "Create a rule", DefaultStatus: http.StatusCreated,
		Errors:    []int{http.StatusBadRequest, http.StatusConflict, http.StatusUnprocessableEntity},
		Responses: documented(api, http.StatusCreated, rulesrv.RuleView{}, "RuleView"),
	}, func(ctx context.Context, in *ruleBodyInput) (*jsonOutput, error) {
		return s.forwardSend(ctx, "rulesrv", http.MethodPost, "/rules", in.Body, http.StatusCreated)
	})
	op(s, api, Engineer, huma.Operation{
		OperationID: "putRule", Method: http.MethodPut, Path: "/rules/{id}", Tags: tags,
		Summary: "Replace (or create) a rule", Errors: []int{http.StatusBadRequest, http.StatusUnprocessableEntity},
		Responses: encodedAs(api, rulesrv.RuleView{}, "RuleView"),
	}, func(ctx context.Context, in *rulePutInput) (*jsonOutput, error) {
		return s.forwardSend(ctx, "rulesrv", http.MethodPut, "/rules/"+url.PathEscape(in.ID), in.Body, http.StatusOK)
	})
	op(s, api, Engineer, huma.Operation{
		OperationID: "deleteRule", Method: http.MethodDelete, Path: "/rules/{id}", Tags: tags,
		Summary: "Delete a rule", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *ruleIDInput) (*deletedOutput, error) {
		return s.forwardDelete(ctx, "rulesrv", "/rules/"+url.PathEscape(in.ID))
	})
	for _, action := range []string{"enable", "disable"} {
		op(s, api, Engineer, huma.Operation{
			OperationID: action + "Rule", Method: http.MethodPost, Path: "/rules/{id}/" + action, Tags: tags,
			Summary: strings.ToUpper(action[:1]) + action[1:] + " a rule (written into its file)", Errors: []int{http.StatusNotFound},
			Responses: encodedAs(api, rulesrv.RuleView{}, "RuleView"),
		}, func(ctx context.Context, in *ruleIDInput) (*jsonOutput, error) {
			return s.forwardSend(ctx, "rulesrv", http.MethodPost, "/rules/"+url.PathEscape(in.ID)+"/"+action, nil, http.StatusOK)
		})
	}
	op(s, api, Engineer, huma.Operation{
		OperationID: "dryRunRule", Method: http.MethodPost, Path: "/rules/{id}/dry-run", Tags: tags,
		Summary: "Evaluate a rule against the live values without acting", Errors: []int{http.StatusNotFound},
		Responses: encodedAs(api, ruleEvaluation{}, "RuleEvaluation"),
	}, func(ctx context.Context, in *ruleIDInput) (*jsonOutput, error) {
		return s.forwardSend(ctx, "rulesrv", http.MethodPost, "/rules/"+url.PathEscape(in.ID)+"/dry-run", nil, http.StatusOK)
	})
	op(s, api, Engineer, huma.Operation{
		OperationID: "dryRunNewRule", Method: http.MethodPost, Path: "/rules-dry-run", Tags: tags,
		Summary: "Validate and evaluate a rule that is not saved", Errors: []int{http.StatusBadRequest, http.StatusUnprocessableEntity},
		Responses: encodedAs(api, ruleEvaluation{}, "RuleEvaluation"),
	}, func(ctx context.Context, in *ruleBodyInput) (*jsonOutput, error) {
		return s.forwardSend(ctx, "rulesrv", http.MethodPost, "/dry-run", in.Body, http.StatusOK)
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "ruleExecutions", Method: http.MethodGet, Path: "/rules/{id}/executions", Tags: tags,
		Summary: "A rule's last execution and its recent events", Errors: []int{http.StatusNotFound},
		Responses: encodedAs(api, rulesrv.RuleExecutions{}, "RuleExecutions"),
	}, func(ctx context.Context, in *ruleExecInput) (*jsonOutput, error) {
		q := url.Values{}
		if in.Count > 0 {
			q.Set("count", strconv.Itoa(in.Count))
		}
		return s.forward(ctx, "rulesrv", "/rules/"+url.PathEscape(in.ID)+"/executions", q)
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "ruleEvents", Method: http.MethodGet, Path: "/rule-events", Tags: tags,
		Summary:   "What rules did, newest first",
		Responses: encodedAs(api, []rulesrv.RuleEvent{}, "RuleEvents"),
	}, func(ctx context.Context, in *ruleEventsInput) (*jsonOutput, error) {
		q := url.Values{}
		setQ(q, "rule", in.Rule)
		if in.Count > 0 {
			q.Set("count", strconv.Itoa(in.Count))
		}
		return s.forward(ctx, "rulesrv", "/events", q)
	})
}
