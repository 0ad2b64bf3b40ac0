package modsrv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/expression"
	"github.com/voltageems/voltage/shared/httpapi"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/model"
	"github.com/voltageems/voltage/shared/obs"
	"github.com/voltageems/voltage/shared/point"
)

// routes adds the internal API (docs/modsrv.md). It is what the gateway uses.
func (s *server) routes(srv *obs.Server) {
	srv.Handle("GET /products", http.HandlerFunc(s.listProducts))
	srv.Handle("GET /products/{id}", http.HandlerFunc(s.getProduct))
	srv.Handle("GET /instances", http.HandlerFunc(s.listInstances))
	srv.Handle("GET /instances/{id}", http.HandlerFunc(s.getInstance))
	srv.Handle("POST /instances/{id}/actions/{action}", http.HandlerFunc(s.postAction))
	srv.Handle("GET /routing", http.HandlerFunc(s.listRouting))
	srv.Handle("GET /validation", http.HandlerFunc(s.validation))
	srv.Handle("GET /calculations", http.HandlerFunc(s.calculations))
	srv.Handle("GET /functions", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, expression.Functions())
	}))
}

// withModel runs f with the running model, or answers 503.
func (s *server) withModel(w http.ResponseWriter, f func(m *model.Model)) {
	m := s.model()
	if m == nil {
		httpapi.Problem(w, http.StatusServiceUnavailable, "No model", "modsrv has not loaded a model")
		return
	}
	f(m)
}

func (s *server) listProducts(w http.ResponseWriter, _ *http.Request) {
	s.withModel(w, func(m *model.Model) {
		out := make([]*model.Product, 0, len(m.Products))
		for _, id := range m.ProductIDs() {
			out = append(out, m.Products[id])
		}
		httpapi.WriteJSON(w, http.StatusOK, out)
	})
}

func (s *server) getProduct(w http.ResponseWriter, r *http.Request) {
	s.withModel(w, func(m *model.Model) {
		p := m.Products[r.PathValue("id")]
		if p == nil {
			httpapi.Problem(w, http.StatusNotFound, "Unknown product", fmt.Sprintf("no product %q; the products are %v", r.PathValue("id"), m.ProductIDs()))
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, p)
	})
}

// InstanceView is an instance with its live values: the answer of GET
// /instances (a list) and GET /instances/{id}. The gateway documents its public
// API with these types, so a change here shows in openapi/.
type InstanceView struct {
	ID           uint32            `json:"id"`
	Name         string            `json:"name"`
	Product      string            `json:"product"`
	Parent       string            `json:"parent,omitempty"`
	Description  string            `json:"description,omitempty"`
	Properties   map[string]any    `json:"properties"`
	Measurements []MeasurementView `json:"measurements"`
	Actions      []ActionView      `json:"actions"`
}

// MeasurementView is one measurement of an instance with its live value.
type MeasurementView struct {
	ID      uint32   `json:"id"`
	Name    string   `json:"name"`
	Unit    string   `json:"unit,omitempty"`
	Value   *float64 `json:"value"` // null: never written
	TS      int64    `json:"ts,omitempty"`
	Quality string   `json:"quality,omitempty"`
	Source  string   `json:"source"` // route, calculation or none
}

// ActionView is one action of an instance with its limits and the last
// commanded value.
type ActionView struct {
	ID        uint32   `json:"id"`
	Name      string   `json:"name"`
	Unit      string   `json:"unit,omitempty"`
	Type      string   `json:"type"`
	Min       *float64 `json:"min,omitempty"`
	Max       *float64 `json:"max,omitempty"`
	Step      *float64 `json:"step,omitempty"`
	Commanded *float64 `json:"last_commanded"`
	Routed    bool     `json:"routed"`
}

// views reads the live values of insts in one round trip.
func (s *server) views(ctx context.Context, m *model.Model, insts []*model.Instance) ([]InstanceView, error) {
	type reads struct{ v, ts, q, a *redis.MapStringStringCmd }
	pipe := s.rdb.Pipeline()
	rs := make([]reads, len(insts))
	for i, inst := range insts {
		rs[i] = reads{pipe.HGetAll(ctx, keyspace.InstanceMeasurements(inst.ID)), pipe.HGetAll(ctx, keyspace.InstanceMeasurementTimestamps(inst.ID)),
			pipe.HGetAll(ctx, keyspace.InstanceMeasurementQuality(inst.ID)), pipe.HGetAll(ctx, keyspace.InstanceActions(inst.ID))}
	}
	if len(insts) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, err
		}
	}
	out := make([]InstanceView, len(insts))
	for i, inst := range insts {
		v := InstanceView{ID: inst.ID, Name: inst.Name, Product: inst.Product.ID, Description: inst.Description,
			Properties: inst.Properties, Measurements: []MeasurementView{}, Actions: []ActionView{}}
		if inst.Parent != nil {
			v.Parent = inst.Parent.Name
		}
		vals, tss, qs, acts := rs[i].v.Val(), rs[i].ts.Val(), rs[i].q.Val(), rs[i].a.Val()
		for _, d := range inst.Product.Measurements {
			id := strconv.FormatUint(uint64(d.ID), 10)
			pv := MeasurementView{ID: d.ID, Name: d.Name, Unit: d.Unit, Source: "none"}
			switch {
			case m.MeasurementRoute(inst.ID, d.ID) != nil:
				pv.Source = "route"
			case m.CalculationOf(inst.ID, d.ID) != nil:
				pv.Source = "calculation"
			}
			if text, ok := vals[id]; ok {
				if f, err := strconv.ParseFloat(text, 64); err == nil {
					pv.Value = &f
					pv.Quality = point.Good.String()
					if q, ok := qs[id]; ok {
						pv.Quality = q
					}
					pv.TS, _ = strconv.ParseInt(tss[id], 10, 64)
				}
			}
			v.Measurements = append(v.Measurements, pv)
		}
		for _, d := range inst.Product.Actions {
			av := ActionView{ID: d.ID, Name: d.Name, Unit: d.Unit, Type: d.Type, Min: d.Min, Max: d.Max, Step: d.Step,
				Routed: m.ActionRoute(inst.ID, d.ID) != nil}
			if text, ok := acts[strconv.FormatUint(uint64(d.ID), 10)]; ok {
				if f, err := strconv.ParseFloat(text, 64); err == nil {
					av.Commanded = &f
				}
			}
			v.Actions = append(v.Actions, av)
		}
		out[i] = v
	}
	return out, nil
}

func (s *server) listInstances(w http.ResponseWriter, r *http.Request) {
	s.withModel(w, func(m *model.Model) {
		views, err := s.views(r.Context(), m, m.Instances)
		if err != nil {
			httpapi.Problem(w, http.StatusServiceUnavailable, "Redis unavailable", err.Error())
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, views)
	})
}

// instanceParam finds the instance named by {id}: its id or its name.
func instanceParam(m *model.Model, r *http.Request) *model.Instance {
	ref := r.PathValue("id")
	if n, err := strconv.ParseUint(ref, 10, 32); err == nil {
		return m.Instance(uint32(n))
	}
	return m.InstanceByName(ref)
}

func (s *server) getInstance(w http.ResponseWriter, r *http.Request) {
	s.withModel(w, func(m *model.Model) {
		inst := instanceParam(m, r)
		if inst == nil {
			httpapi.Problem(w, http.StatusNotFound, "Unknown instance", fmt.Sprintf("no instance with id or name %q", r.PathValue("id")))
			return
		}
		views, err := s.views(r.Context(), m, []*model.Instance{inst})
		if err != nil {
			httpapi.Problem(w, http.StatusServiceUnavailable, "Redis unavailable", err.Error())
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, views[0])
	})
}

type actionRequest struct {
	Value *float64 `json:"value"`
	User  string   `json:"user"`
}

// postAction submits an instance action through the command path and waits for
// its outcome.
func (s *server) postAction(w http.ResponseWriter, r *http.Request) {
	s.withModel(w, func(m *model.Model) {
		inst := instanceParam(m, r)
		if inst == nil {
			httpapi.Problem(w, http.StatusNotFound, "Unknown instance", fmt.Sprintf("no instance with id or name %q", r.PathValue("id")))
			return
		}
		var req actionRequest
		if err := httpapi.ReadJSON(r, &req, 64<<10); err != nil {
			httpapi.Problem(w, http.StatusBadRequest, "Bad request body", `want {"value": <number>[, "user": "..."]}: `+err.Error())
			return
		}
		if req.Value == nil {
			httpapi.Problem(w, http.StatusBadRequest, "Bad request body", `"value" is required`)
			return
		}
		id, err := command.SubmitAction(r.Context(), s.rdb, command.Action{Instance: inst.ID, Action: r.PathValue("action"),
			Value: *req.Value, Source: "api", User: req.User})
		if err != nil {
			httpapi.Problem(w, http.StatusServiceUnavailable, "Action not submitted", err.Error())
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ActionTimeout)
		defer cancel()
		res, err := command.Wait(ctx, s.rdb, id)
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			httpapi.Problem(w, http.StatusGatewayTimeout, "No outcome yet",
				fmt.Sprintf("action %s was submitted but had no outcome within %s; GET cmd %s later", id, s.cfg.ActionTimeout, id))
		case err != nil:
			httpapi.Problem(w, http.StatusServiceUnavailable, "Outcome unknown", err.Error())
		case res.Status == command.OK:
			httpapi.WriteJSON(w, http.StatusOK, res)
		case res.Status == command.Rejected:
			httpapi.Problem(w, http.StatusUnprocessableEntity, "Action rejected", res.Error)
		case res.Status == command.Expired:
			httpapi.Problem(w, http.StatusGatewayTimeout, "Action expired", res.Error)
		default:
			httpapi.Problem(w, http.StatusBadGateway, "Action failed", res.Error)
		}
	})
}

// RouteView is one route between a channel point and an instance point (GET
// /routing answers a list).
type RouteView struct {
	Instance     string `json:"instance"`
	InstanceID   uint32 `json:"instance_id"`
	Kind         string `json:"instance_type"`
	Point        uint32 `json:"instance_point_id"`
	Name         string `json:"instance_point"`
	Channel      uint32 `json:"channel_id"`
	ChannelType  string `json:"channel_type"`
	ChannelPoint uint32 `json:"channel_point_id"`
	Description  string `json:"description,omitempty"`
	Source       string `json:"source"` // file:line
}

func (s *server) listRouting(w http.ResponseWriter, _ *http.Request) {
	s.withModel(w, func(m *model.Model) {
		out := make([]RouteView, 0, len(m.Routes))
		for _, rt := range m.Routes {
			name := ""
			if rt.Kind == model.Action {
				name = rt.Instance.Product.Action(rt.Point).Name
			} else {
				name = rt.Instance.Product.Measurement(rt.Point).Name
			}
			out = append(out, RouteView{Instance: rt.Instance.Name, InstanceID: rt.Instance.ID, Kind: string(rune(rt.Kind)), Point: rt.Point,
				Name: name, Channel: rt.Channel, ChannelType: rt.ChannelType.String(), ChannelPoint: rt.ChannelPoint,
				Description: rt.Description, Source: rt.Pos.String()})
		}
		httpapi.WriteJSON(w, http.StatusOK, out)
	})
}

func (s *server) validation(w http.ResponseWriter, _ *http.Request) {
	s.withModel(w, func(m *model.Model) {
		r := m.Report
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{
			"orphans":               nonNil(r.UnroutedChannelPoints),
			"unrouted_measurements": nonNil(r.UnroutedMeasurements),
			"unrouted_actions":      nonNil(r.UnroutedActions),
			"warnings":              nonNil(r.Warnings),
			"products":              len(m.Products),
			"instances":             len(m.Instances),
			"routes":                len(m.Routes),
			"calculations":          len(m.Calculations),
		})
	})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// CalculationView is one calculation: a node of the calculation graph.
type CalculationView struct {
	Name        string   `json:"name"`
	Instance    string   `json:"instance"`
	Measurement string   `json:"measurement"`
	Expression  string   `json:"expression"`
	Description string   `json:"description,omitempty"`
	Functions   []string `json:"functions"`
	Inputs      []string `json:"inputs"`
	Stateful    bool     `json:"stateful"`
	Order       int      `json:"order"`
	Evaluations uint64   `json:"evaluations"`
	Failures    uint64   `json:"failures"`
	LastError   string   `json:"last_error,omitempty"`
}

// CalculationEdge is an input of a calculation: an edge of the graph.
type CalculationEdge struct {
	From string `json:"from"` // an instance measurement (instance.measurement)
	To   string `json:"to"`   // the calculation reading it
}

// CalculationGraph is the answer of GET /calculations: the calculations, their
// inputs and the order they run in (fields in the order a map encoded them).
type CalculationGraph struct {
	Edges []CalculationEdge `json:"edges"`
	Nodes []CalculationView `json:"nodes"`
	Order []string          `json:"order"`
}

// calculations serves the graph: nodes, edges and topological order.
func (s *server) calculations(w http.ResponseWriter, _ *http.Request) {
	e := s.engine()
	if e == nil {
		httpapi.Problem(w, http.StatusServiceUnavailable, "No model", "modsrv has not loaded a model")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	nodes := make([]CalculationView, 0, len(e.g.nodes))
	edges := []CalculationEdge{}
	order := make([]string, 0, len(e.g.nodes))
	for _, n := range e.g.nodes {
		c := n.c
		v := CalculationView{Name: c.Name, Instance: c.Instance.Name, Measurement: c.Instance.Product.Measurement(c.Point).Name,
			Expression: c.Expression, Description: c.Description, Functions: nonNil(c.Program.Functions()), Inputs: []string{},
			Stateful: c.Program.Stateful(), Order: n.rank, Evaluations: n.evals, Failures: n.fails, LastError: n.err}
		for _, in := range c.Program.Inputs() {
			v.Inputs = append(v.Inputs, in.String())
			edges = append(edges, CalculationEdge{From: in.String(), To: c.Name})
		}
		nodes = append(nodes, v)
		order = append(order, c.Name)
	}
	sort.SliceStable(edges, func(i, j int) bool { return edges[i].To < edges[j].To })
	httpapi.WriteJSON(w, http.StatusOK, CalculationGraph{Edges: edges, Nodes: nodes, Order: order})
}
