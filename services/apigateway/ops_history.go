package apigateway

import (
	"context"
	"net/http"
	"net/url"

	"github.com/danielgtaylor/huma/v2"

	"github.com/voltageems/voltage/services/hissrv/query"
)

// historyRangeBody is the answer of historyRange (schema HistoryRangeBody).
type historyRangeBody query.RangeAnswer

// historyLatestBody is the answer of historyLatest (schema HistoryLatestBody).
type historyLatestBody query.LatestAnswer

type historyInput struct {
	Point []string `query:"point" required:"true" maxItems:"100" doc:"point names as hissrv knows them (repeat or comma-separate)"`
	Start string   `query:"start" maxLength:"40" doc:"Unix seconds, RFC 3339, now or now-<duration>"`
	End   string   `query:"end" maxLength:"40" doc:"default now"`
	Step  string   `query:"step" maxLength:"20" doc:"bucket width (e.g. 1m); without: the stored samples"`
	Agg   string   `query:"agg" enum:"avg,min,max,last,sum,count"`
	Tier  string   `query:"tier" maxLength:"32" doc:"auto (default), raw or a tier name"`
}

func (h *historyInput) query() url.Values {
	q := url.Values{}
	for _, p := range h.Point {
		q.Add("point", p)
	}
	setQ(q, "start", h.Start)
	setQ(q, "end", h.End)
	setQ(q, "step", h.Step)
	setQ(q, "agg", h.Agg)
	setQ(q, "tier", h.Tier)
	return q
}

type latestInput struct {
	Point []string `query:"point" required:"true" maxItems:"100"`
}

type csvOutput struct {
	ContentType        string `header:"Content-Type"`
	ContentDisposition string `header:"Content-Disposition"`
	Body               []byte
}

func (s *server) registerHistory(api huma.API) {
	op(s, api, Viewer, huma.Operation{
		OperationID: "historyRange", Method: http.MethodGet, Path: "/history/range", Tags: []string{"history"},
		Summary: "Stored values of points over a time range", Errors: []int{http.StatusBadRequest, http.StatusNotFound},
		Responses: encodedAs(api, historyRangeBody{}, "HistoryRangeBody"),
	}, func(ctx context.Context, in *historyInput) (*jsonOutput, error) {
		return s.forward(ctx, "hissrv", "/history/range", in.query())
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "historyLatest", Method: http.MethodGet, Path: "/history/latest", Tags: []string{"history"},
		Summary: "The newest stored value of points", Errors: []int{http.StatusBadRequest, http.StatusNotFound},
		Responses: encodedAs(api, historyLatestBody{}, "HistoryLatestBody"),
	}, func(ctx context.Context, in *latestInput) (*jsonOutput, error) {
		q := url.Values{}
		for _, p := range in.Point {
			q.Add("point", p)
		}
		return s.forward(ctx, "hissrv", "/history/latest", q)
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "historyCSV", Method: http.MethodGet, Path: "/history/export.csv", Tags: []string{"history"},
		Summary: "History as CSV: time,unix_ms,point,value", Errors: []int{http.StatusBadRequest, http.StatusNotFound},
		Responses: map[string]*huma.Response{"200": {Description: "CSV", Content: map[string]*huma.MediaType{"text/csv": {Schema: &huma.Schema{Type: "string"}}}}},
	}, func(ctx context.Context, in *historyInput) (*csvOutput, error) {
		up, err := s.svc.call(ctx, "hissrv", http.MethodGet, "/history/export.csv", in.query(), nil, caller(ctx).User)
		if err != nil {
			return nil, err
		}
		return &csvOutput{ContentType: "text/csv; charset=utf-8", ContentDisposition: `attachment; filename="history.csv"`, Body: up.Body}, nil
	})
}
