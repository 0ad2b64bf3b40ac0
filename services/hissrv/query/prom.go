package query

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
)

// Prom is the Prometheus-compatible HTTP API (the subset Grafana's Prometheus
// datasource uses) over a queryable store.
type Prom struct {
	Engine    *promql.Engine
	Queryable storage.Queryable
	Parser    parser.Parser
	Timeout   time.Duration
	Now       func() time.Time
	Log       *slog.Logger
}

// NewProm builds the API with a PromQL engine sized for an edge box.
func NewProm(q storage.Queryable, log *slog.Logger) *Prom {
	p := parser.NewParser(parser.Options{})
	eng := promql.NewEngine(promql.EngineOpts{
		Logger:               log,
		MaxSamples:           5_000_000,
		Timeout:              30 * time.Second,
		LookbackDelta:        5 * time.Minute,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		Parser:               p,
	})
	return &Prom{Engine: eng, Queryable: q, Parser: p, Timeout: 30 * time.Second, Now: time.Now, Log: log}
}

// Register adds the routes.
func (p *Prom) Register(handle func(pattern string, h http.Handler)) {
	for _, m := range []string{"GET", "POST"} {
		handle(m+" /api/v1/query", http.HandlerFunc(p.query))
		handle(m+" /api/v1/query_range", http.HandlerFunc(p.queryRange))
		handle(m+" /api/v1/labels", http.HandlerFunc(p.labelNames))
		handle(m+" /api/v1/series", http.HandlerFunc(p.series))
	}
	handle("GET /api/v1/label/{name}/values", http.HandlerFunc(p.labelValues))
	handle("GET /api/v1/status/buildinfo", http.HandlerFunc(p.buildInfo))
	handle("GET /api/v1/metadata", http.HandlerFunc(p.metadata))
}

type apiError struct {
	status int
	typ    string
	err    error
}

func badData(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "bad_data", fmt.Errorf(format, args...)}
}

func (p *Prom) respond(w http.ResponseWriter, data any, warnings []string) {
	w.Header().Set("Content-Type", "application/json")
	body := map[string]any{"status": "success", "data": data}
	if len(warnings) > 0 {
		body["warnings"] = warnings
	}
	_ = json.NewEncoder(w).Encode(body)
}

func (p *Prom) respondError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "error", "errorType": e.typ, "error": e.err.Error()})
}

func (p *Prom) form(r *http.Request) *apiError {
	r.Body = http.MaxBytesReader(nil, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		return badData("parse form: %v", err)
	}
	return nil
}

func (p *Prom) timeParam(r *http.Request, name string, def time.Time) (time.Time, *apiError) {
	v := r.Form.Get(name)
	if v == "" {
		return def, nil
	}
	t, err := ParseTime(v, p.Now())
	if err != nil {
		return time.Time{}, badData("invalid parameter %q: %v", name, err)
	}
	return t, nil
}

func (p *Prom) ctx(r *http.Request) (context.Context, context.CancelFunc, *apiError) {
	timeout := p.Timeout
	if v := r.Form.Get("timeout"); v != "" {
		d, err := ParseDuration(v)
		if err != nil {
			return nil, nil, badData("invalid parameter \"timeout\": %v", err)
		}
		timeout = min(timeout, d)
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	return ctx, cancel, nil
}

func (p *Prom) query(w http.ResponseWriter, r *http.Request) {
	if e := p.form(r); e != nil {
		p.respondError(w, e)
		return
	}
	ts, e := p.timeParam(r, "time", p.Now())
	if e != nil {
		p.respondError(w, e)
		return
	}
	ctx, cancel, e := p.ctx(r)
	if e != nil {
		p.respondError(w, e)
		return
	}
	defer cancel()
	qs := r.Form.Get("query")
	if qs == "" {
		p.respondError(w, badData("invalid parameter \"query\": empty"))
		return
	}
	q, err := p.Engine.NewInstantQuery(ctx, p.Queryable, nil, qs, ts)
	if err != nil {
		p.respondError(w, badData("invalid parameter \"query\": %v", err))
		return
	}
	p.exec(ctx, w, q)
}

func (p *Prom) queryRange(w http.ResponseWriter, r *http.Request) {
	if e := p.form(r); e != nil {
		p.respondError(w, e)
		return
	}
	start, e := p.timeParam(r, "start", time.Time{})
	if e == nil && start.IsZero() {
		e = badData("invalid parameter \"start\": missing")
	}
	if e != nil {
		p.respondError(w, e)
		return
	}
	end, e := p.timeParam(r, "end", time.Time{})
	if e == nil && end.IsZero() {
		e = badData("invalid parameter \"end\": missing")
	}
	if e != nil {
		p.respondError(w, e)
		return
	}
	if end.Before(start) {
		p.respondError(w, badData("invalid parameter \"end\": end timestamp must not be before start time"))
		return
	}
	step, err := ParseDuration(r.Form.Get("step"))
	if err != nil || step <= 0 {
		p.respondError(w, badData("invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer"))
		return
	}
	if end.Sub(start)/step > MaxPoints {
		p.respondError(w, badData("exceeded maximum resolution of %d points per timeseries. Try decreasing the query resolution (?step=XX)", MaxPoints))
		return
	}
	ctx, cancel, e := p.ctx(r)
	if e != nil {
		p.respondError(w, e)
		return
	}
	defer cancel()
	q, err := p.Engine.NewRangeQuery(ctx, p.Queryable, nil, r.Form.Get("query"), start, end, step)
	if err != nil {
		p.respondError(w, badData("invalid parameter \"query\": %v", err))
		return
	}
	p.exec(ctx, w, q)
}

func (p *Prom) exec(ctx context.Context, w http.ResponseWriter, q promql.Query) {
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		p.respondError(w, queryError(res.Err))
		return
	}
	var buf bytes.Buffer
	if err := writeValue(&buf, res.Value); err != nil {
		p.respondError(w, &apiError{http.StatusInternalServerError, "internal", err})
		return
	}
	warnings, _ := res.Warnings.AsStrings("", 10, 10)
	p.respond(w, json.RawMessage(buf.Bytes()), warnings)
}

func queryError(err error) *apiError {
	var (
		canceled promql.ErrQueryCanceled
		timeout  promql.ErrQueryTimeout
		samples  promql.ErrTooManySamples
		stor     promql.ErrStorage
	)
	switch {
	case errors.As(err, &canceled), errors.Is(err, context.Canceled):
		return &apiError{http.StatusServiceUnavailable, "canceled", err}
	case errors.As(err, &timeout), errors.Is(err, context.DeadlineExceeded):
		return &apiError{http.StatusServiceUnavailable, "timeout", err}
	case errors.As(err, &samples):
		return &apiError{http.StatusUnprocessableEntity, "execution", err}
	case errors.As(err, &stor):
		return &apiError{http.StatusInternalServerError, "internal", err}
	}
	return &apiError{http.StatusUnprocessableEntity, "execution", err}
}

// writeValue renders a PromQL result the way Prometheus' API does.
func writeValue(buf *bytes.Buffer, v parser.Value) error {
	type vec struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}
	type mat struct {
		Metric map[string]string `json:"metric"`
		Values [][2]any          `json:"values"`
	}
	var out any
	switch v := v.(type) {
	case promql.Vector:
		r := make([]vec, 0, len(v))
		for _, s := range v {
			if s.H != nil {
				continue
			}
			r = append(r, vec{Metric: s.Metric.Map(), Value: pair(s.T, s.F)})
		}
		out = map[string]any{"resultType": "vector", "result": r}
	case promql.Matrix:
		r := make([]mat, 0, len(v))
		for _, s := range v {
			m := mat{Metric: s.Metric.Map(), Values: make([][2]any, 0, len(s.Floats))}
			for _, f := range s.Floats {
				m.Values = append(m.Values, pair(f.T, f.F))
			}
			r = append(r, m)
		}
		out = map[string]any{"resultType": "matrix", "result": r}
	case promql.Scalar:
		out = map[string]any{"resultType": "scalar", "result": pair(v.T, v.V)}
	case promql.String:
		out = map[string]any{"resultType": "string", "result": [2]any{float64(v.T) / 1000, v.V}}
	default:
		return fmt.Errorf("unexpected result type %T", v)
	}
	return json.NewEncoder(buf).Encode(out)
}

func pair(t int64, f float64) [2]any {
	return [2]any{json.Number(strconv.FormatFloat(float64(t)/1000, 'f', -1, 64)), formatFloat(f)}
}

func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// matchers reads match[] selectors.
func (p *Prom) matchers(r *http.Request) ([][]*labels.Matcher, *apiError) {
	var out [][]*labels.Matcher
	for _, s := range r.Form["match[]"] {
		ms, err := p.Parser.ParseMetricSelector(s)
		if err != nil {
			return nil, badData("invalid parameter \"match[]\": %v", err)
		}
		out = append(out, ms)
	}
	return out, nil
}

func (p *Prom) rangeParams(r *http.Request) (int64, int64, *apiError) {
	start, e := p.timeParam(r, "start", time.UnixMilli(math.MinInt64/2))
	if e != nil {
		return 0, 0, e
	}
	end, e := p.timeParam(r, "end", time.UnixMilli(math.MaxInt64/2))
	if e != nil {
		return 0, 0, e
	}
	if end.Before(start) {
		return 0, 0, badData("invalid parameter \"end\": end timestamp must not be before start time")
	}
	return start.UnixMilli(), end.UnixMilli(), nil
}

func (p *Prom) labelNames(w http.ResponseWriter, r *http.Request) {
	p.labels(w, r, "")
}

func (p *Prom) labelValues(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !model.LabelName(name).IsValidLegacy() {
		p.respondError(w, badData("invalid label name: %q", name))
		return
	}
	p.labels(w, r, name)
}

// labels lists label names (name == "") or the values of one label.
func (p *Prom) labels(w http.ResponseWriter, r *http.Request, name string) {
	if e := p.form(r); e != nil {
		p.respondError(w, e)
		return
	}
	mint, maxt, e := p.rangeParams(r)
	if e != nil {
		p.respondError(w, e)
		return
	}
	sets, e := p.matchers(r)
	if e != nil {
		p.respondError(w, e)
		return
	}
	q, err := p.Queryable.Querier(mint, maxt)
	if err != nil {
		p.respondError(w, &apiError{http.StatusInternalServerError, "internal", err})
		return
	}
	defer q.Close()
	if len(sets) == 0 {
		sets = [][]*labels.Matcher{nil}
	}
	seen := map[string]bool{}
	for _, ms := range sets {
		var vals []string
		if name == "" {
			vals, _, err = q.LabelNames(r.Context(), nil, ms...)
		} else {
			vals, _, err = q.LabelValues(r.Context(), name, nil, ms...)
		}
		if err != nil {
			p.respondError(w, &apiError{http.StatusInternalServerError, "internal", err})
			return
		}
		for _, v := range vals {
			seen[v] = true
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	p.respond(w, out, nil)
}

func (p *Prom) series(w http.ResponseWriter, r *http.Request) {
	if e := p.form(r); e != nil {
		p.respondError(w, e)
		return
	}
	sets, e := p.matchers(r)
	if e == nil && len(sets) == 0 {
		e = badData("no match[] parameter provided")
	}
	if e != nil {
		p.respondError(w, e)
		return
	}
	mint, maxt, e := p.rangeParams(r)
	if e != nil {
		p.respondError(w, e)
		return
	}
	q, err := p.Queryable.Querier(mint, maxt)
	if err != nil {
		p.respondError(w, &apiError{http.StatusInternalServerError, "internal", err})
		return
	}
	defer q.Close()
	hints := &storage.SelectHints{Start: mint, End: maxt, Func: "series"}
	seen := map[string]bool{}
	out := []map[string]string{}
	for _, ms := range sets {
		set := q.Select(r.Context(), false, hints, ms...)
		for set.Next() {
			ls := set.At().Labels()
			if k := ls.String(); !seen[k] {
				seen[k] = true
				out = append(out, ls.Map())
			}
			if len(out) > 100_000 {
				p.respondError(w, badData("more than 100000 series match; narrow match[]"))
				return
			}
		}
		if err := set.Err(); err != nil {
			p.respondError(w, &apiError{http.StatusInternalServerError, "internal", err})
			return
		}
	}
	p.respond(w, out, nil)
}

func (p *Prom) buildInfo(w http.ResponseWriter, _ *http.Request) {
	// Grafana reads the version to pick the features it uses.
	p.respond(w, map[string]string{"version": "3.0.0", "application": "voltage-hissrv", "revision": "", "branch": "", "goVersion": ""}, nil)
}

func (p *Prom) metadata(w http.ResponseWriter, _ *http.Request) {
	p.respond(w, map[string]any{}, nil)
}
