package apigateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/danielgtaylor/huma/v2"
	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/services/modsrv"
	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/model"
	"github.com/voltageems/voltage/shared/point"
)

// Forwarded operations answer the internal service's JSON as it is (a
// jsonOutput, never decoded and encoded again); the spec documents the type the
// service encodes, which it exports for this (encodedAs, documented). The
// services' types and the spec cannot drift: TestForwardedAnswersMatchSchemas
// validates live answers against the served spec.

// forwarded answers body, an internal service's JSON, with status.
func forwarded(status int, body []byte) *jsonOutput {
	return &jsonOutput{Body: func(ctx huma.Context) {
		ctx.SetHeader("Content-Type", "application/json")
		ctx.SetStatus(status)
		_, _ = ctx.BodyWriter().Write(body)
	}}
}

// documented is encodedAs for an operation answering status (200 or 201).
func documented(api huma.API, status int, body any, name string) map[string]*huma.Response {
	r := encodedAs(api, body, name)
	if status != http.StatusOK {
		r[strconv.Itoa(status)] = r["200"]
		delete(r, "200")
	}
	return r
}

// deletedOutput is the answer of a forwarded DELETE: an empty object.
type deletedOutput struct {
	Body struct{}
}

type instanceInput struct {
	Instance string `path:"instance" maxLength:"128" doc:"instance id or name"`
}

type productInput struct {
	Product string `path:"product" maxLength:"128"`
}

type measurementsOutput struct {
	Body struct {
		Instance     uint32       `json:"instance"`
		Measurements []pointValue `json:"measurements" doc:"point = measurement id"`
	}
}

type actionInput struct {
	Instance string `path:"instance" maxLength:"128" doc:"instance id or name"`
	Action   string `path:"action" maxLength:"128" doc:"action name or id, as the product defines it"`
	Body     struct {
		Value  float64 `json:"value" doc:"engineering value (0 or 1 for a bool action)"`
		WaitMS *int    `json:"wait_ms,omitempty" minimum:"0" maximum:"30000" doc:"wait up to this long for the outcome (default 10000)"`
	}
}

func (s *server) registerInstances(api huma.API) {
	op(s, api, Viewer, huma.Operation{
		OperationID: "listProducts", Method: http.MethodGet, Path: "/products", Tags: []string{"instances"},
		Summary:   "Products (thing models) with properties, measurements and actions",
		Responses: encodedAs(api, []model.Product{}, "Products"),
	}, func(ctx context.Context, _ *struct{}) (*jsonOutput, error) {
		return s.forward(ctx, "modsrv", "/products", nil)
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "getProduct", Method: http.MethodGet, Path: "/products/{product}", Tags: []string{"instances"},
		Summary: "One product", Errors: []int{http.StatusNotFound},
		Responses: encodedAs(api, model.Product{}, "Product"),
	}, func(ctx context.Context, in *productInput) (*jsonOutput, error) {
		return s.forward(ctx, "modsrv", "/products/"+url.PathEscape(in.Product), nil)
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "listInstances", Method: http.MethodGet, Path: "/instances", Tags: []string{"instances"},
		Summary:   "Instances with live measurement values and actions",
		Responses: encodedAs(api, []modsrv.InstanceView{}, "Instances"),
	}, func(ctx context.Context, _ *struct{}) (*jsonOutput, error) {
		return s.forward(ctx, "modsrv", "/instances", nil)
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "getInstance", Method: http.MethodGet, Path: "/instances/{instance}", Tags: []string{"instances"},
		Summary: "One instance with live values", Errors: []int{http.StatusNotFound},
		Responses: encodedAs(api, modsrv.InstanceView{}, "InstanceView"),
	}, func(ctx context.Context, in *instanceInput) (*jsonOutput, error) {
		return s.forward(ctx, "modsrv", "/instances/"+url.PathEscape(in.Instance), nil)
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "getMeasurements", Method: http.MethodGet, Path: "/instances/{instance}/measurements", Tags: []string{"instances"},
		Summary: "An instance's realtime measurements, straight from the state store", Errors: []int{http.StatusNotFound},
	}, s.measurements)
	op(s, api, Operator, huma.Operation{
		OperationID: "runAction", Method: http.MethodPost, Path: "/instances/{instance}/actions/{action}", Tags: []string{"instances"},
		Summary:     "Run an instance action",
		Description: "modsrv checks the product's limits and routes it to the channel point; the answer is the result (status pending when it did not end within wait_ms).",
		Errors:      []int{http.StatusNotFound},
	}, s.runAction)
	op(s, api, Viewer, huma.Operation{
		OperationID: "listCalculations", Method: http.MethodGet, Path: "/calculations", Tags: []string{"instances"},
		Summary:   "Calculations: expressions, inputs, order, last errors",
		Responses: encodedAs(api, modsrv.CalculationGraph{}, "CalculationGraph"),
	}, func(ctx context.Context, _ *struct{}) (*jsonOutput, error) {
		return s.forward(ctx, "modsrv", "/calculations", nil)
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "getRouting", Method: http.MethodGet, Path: "/routing", Tags: []string{"instances"},
		Summary:   "Routes between channel points and instance measurements/actions",
		Responses: encodedAs(api, []modsrv.RouteView{}, "Routes"),
	}, func(ctx context.Context, _ *struct{}) (*jsonOutput, error) {
		return s.forward(ctx, "modsrv", "/routing", nil)
	})
}

// forward GETs path of service for the caller and answers its JSON as it is.
func (s *server) forward(ctx context.Context, service, path string, q url.Values) (*jsonOutput, error) {
	b, err := s.svc.getJSON(ctx, service, path, q, caller(ctx).User)
	if err != nil {
		return nil, err
	}
	return forwarded(http.StatusOK, b), nil
}

// forwardSend sends body (nil: none) to service for the caller and answers its
// JSON as it is, with status (what the operation documents).
func (s *server) forwardSend(ctx context.Context, service, method, path string, body any, status int) (*jsonOutput, error) {
	up, err := s.svc.call(ctx, service, method, path, nil, body, caller(ctx).User)
	if err != nil {
		return nil, err
	}
	if !json.Valid(up.Body) {
		return nil, huma.Error502BadGateway(service + " answered something that is not JSON")
	}
	return forwarded(status, up.Body), nil
}

// forwardDelete sends a DELETE to service for the caller; its answer (204) has
// no body, the public one is an empty object.
func (s *server) forwardDelete(ctx context.Context, service, path string) (*deletedOutput, error) {
	if _, err := s.svc.call(ctx, service, http.MethodDelete, path, nil, nil, caller(ctx).User); err != nil {
		return nil, err
	}
	return &deletedOutput{}, nil
}

// instanceID resolves an instance id or name.
func (s *server) instanceID(ctx context.Context, ref string) (uint32, error) {
	if n, err := strconv.ParseUint(ref, 10, 32); err == nil {
		return uint32(n), nil
	}
	v, err := s.rdb.HGet(ctx, keyspace.InstanceNames, ref).Result()
	if errors.Is(err, redis.Nil) {
		return 0, huma.Error404NotFound("no instance " + ref)
	}
	if err != nil {
		return 0, huma.Error503ServiceUnavailable("the state store does not answer")
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, huma.Error404NotFound("no instance " + ref)
	}
	return uint32(n), nil
}

func (s *server) measurements(ctx context.Context, in *instanceInput) (*measurementsOutput, error) {
	id, err := s.instanceID(ctx, in.Instance)
	if err != nil {
		return nil, err
	}
	pipe := s.rdb.Pipeline()
	rd := queueRead(ctx, pipe, instanceFamily(id), nil)
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, huma.Error503ServiceUnavailable("the state store does not answer")
	}
	vals, err := rd.result(pointValue{})
	if err != nil {
		return nil, huma.Error503ServiceUnavailable("the state store does not answer")
	}
	out := &measurementsOutput{}
	out.Body.Instance, out.Body.Measurements = id, vals
	return out, nil
}

func (s *server) runAction(ctx context.Context, in *actionInput) (*commandOutput, error) {
	id, err := s.instanceID(ctx, in.Instance)
	if err != nil {
		return nil, err
	}
	me := caller(ctx)
	cid, err := command.SubmitAction(ctx, s.rdb, command.Action{Instance: id, Action: in.Action, Value: in.Body.Value, Source: "api", User: me.User})
	if err != nil {
		return nil, huma.Error503ServiceUnavailable("the action could not be queued: the state store does not answer")
	}
	s.audit(ctx, "command_submitted", me.User, "id", cid, "kind", "action",
		"target", strconv.FormatUint(uint64(id), 10)+"/"+in.Action, "value", point.FormatValue(in.Body.Value))
	wait := 10_000
	if in.Body.WaitMS != nil {
		wait = *in.Body.WaitMS
	}
	return s.outcome(ctx, cid, wait)
}
