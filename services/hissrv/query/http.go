// Package query is hissrv's read side: the history API (a range of points with a
// step and an aggregation, the latest value, CSV export) and a Prometheus-
// compatible API (/api/v1/query, query_range, labels, series) evaluated by the
// PromQL engine over the embedded store, so Grafana's Prometheus datasource
// charts history directly.
package query

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/voltageems/voltage/shared/httpapi"
)

// API serves both APIs.
type API struct {
	History *History
	Prom    *Prom
	Log     *slog.Logger
}

// Register adds the routes to mux-like h.
func (a *API) Register(handle func(pattern string, h http.Handler)) {
	handle("GET /history/range", http.HandlerFunc(a.rangeHandler))
	handle("GET /history/latest", http.HandlerFunc(a.latestHandler))
	handle("GET /history/export.csv", http.HandlerFunc(a.exportHandler))
	a.Prom.Register(handle)
}

// RangeAnswer is the answer of GET /history/range: one series per point, in the
// order asked. The gateway documents its public API with it.
type RangeAnswer struct {
	Points []Series `json:"points"`
}

// LatestAnswer is the answer of GET /history/latest.
type LatestAnswer struct {
	Points []Latest `json:"points"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fail maps an error to its status: 404 for a point without history, 400 for
// anything the request got wrong, 503 when the store failed.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error, bad bool) {
	status := http.StatusServiceUnavailable
	var many errTooMany
	switch {
	case bad || errors.As(err, &many):
		status = http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		status = http.StatusServiceUnavailable
	default:
		a.Log.Warn("history query failed", "url", r.URL.String(), "err", err)
	}
	httpapi.Problem(w, status, "", err.Error())
}

func (a *API) parseRange(w http.ResponseWriter, r *http.Request) (RangeRequest, bool) {
	req, err := ParseRange(r.URL.Query(), a.History.now(), a.History.TierNames())
	if err != nil {
		a.fail(w, r, err, true)
		return req, false
	}
	return req, true
}

func (a *API) rangeHandler(w http.ResponseWriter, r *http.Request) {
	req, ok := a.parseRange(w, r)
	if !ok {
		return
	}
	series, err := a.History.Range(r.Context(), req)
	if err != nil {
		a.fail(w, r, err, false)
		return
	}
	writeJSON(w, http.StatusOK, RangeAnswer{Points: series})
}

func (a *API) latestHandler(w http.ResponseWriter, r *http.Request) {
	pts, err := parsePoints(r.URL.Query())
	if err != nil {
		a.fail(w, r, err, true)
		return
	}
	out, err := a.History.Latest(r.Context(), pts)
	if err != nil {
		a.fail(w, r, err, false)
		return
	}
	writeJSON(w, http.StatusOK, LatestAnswer{Points: out})
}

// exportHandler writes the range answer as CSV: time (RFC 3339, UTC, ms),
// unix_ms, point, value — one row per point and time.
func (a *API) exportHandler(w http.ResponseWriter, r *http.Request) {
	req, ok := a.parseRange(w, r)
	if !ok {
		return
	}
	series, err := a.History.Range(r.Context(), req)
	if err != nil {
		a.fail(w, r, err, false)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="history.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"time", "unix_ms", "point", "value"})
	for _, s := range series {
		for _, v := range s.Values {
			ms := int64(v[0])
			_ = cw.Write([]string{
				time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00"),
				strconv.FormatInt(ms, 10), s.Point,
				strconv.FormatFloat(v[1], 'f', -1, 64),
			})
		}
	}
	cw.Flush()
}
