package hissrv_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/testharness"
)

type rangeAnswer struct {
	Points []struct {
		Point  string       `json:"point"`
		Tier   string       `json:"tier"`
		Values [][2]float64 `json:"values"`
	} `json:"points"`
}

type promAnswer struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
			Values [][2]any          `json:"values"`
		} `json:"result"`
	} `json:"data"`
}

// TestEveryChangeIsInHistory writes change batches as comsrv does (channel
// telemetry with a per-point time, signals, an instance) to a site without
// hissrv.yaml, and finds every sample in history with its sample time and value,
// counted, through the range API, the CSV export and PromQL.
func TestEveryChangeIsInHistory(t *testing.T) {
	s := newSite(t, "", 0)
	h := s.run()
	ctx := context.Background()
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Minute).UnixMilli()
	p := newProducer(s.rdb, 0, start)
	const steps, nT = 300, 20
	for i := range steps {
		if err := p.writeStep(ctx, i, nT); err != nil {
			t.Fatal(err)
		}
	}
	s.caughtUp("embedded", 60*time.Second)

	from, to := strconv.FormatInt(start/1000-60, 10), strconv.FormatInt(start/1000+steps+60, 10)
	found := 0
	for name, want := range p.got {
		var a rangeAnswer
		if code := getJSON(t, query(h.url, "/history/range", "point", name, "start", from, "end", to), &a); code != http.StatusOK {
			t.Fatalf("range of %s: status %d", name, code)
		}
		got := a.Points[0].Values
		if len(got) != len(want) {
			t.Errorf("%s: %d samples in history, %d written", name, len(got), len(want))
		}
		for _, v := range got {
			ts := int64(v[0])
			w, ok := want[ts]
			switch {
			case !ok:
				t.Errorf("%s: sample at %d was never written", name, ts)
			case w != v[1]:
				t.Errorf("%s at %d: %g, written %g", name, ts, v[1], w)
			default:
				found++
			}
		}
	}
	if found != p.got.total() {
		t.Fatalf("found %d of %d samples", found, p.got.total())
	}
	t.Logf("%d samples of %d points found with their times and values", found, len(p.got))

	// Latest, with the quality of the newest sample (point 2 is stale every 50th step).
	var latest struct {
		Points []struct {
			Point   string  `json:"point"`
			TS      int64   `json:"ts"`
			Value   float64 `json:"value"`
			Quality string  `json:"quality"`
		} `json:"points"`
	}
	getJSON(t, query(h.url, "/history/latest", "point", "comsrv:1:T:2,comsrv:1:T:3"), &latest)
	last := start + (steps-1)*1000
	if len(latest.Points) != 2 || latest.Points[0].TS != last || latest.Points[0].Value != value(2, steps-1) ||
		latest.Points[0].Quality != "stale" || latest.Points[1].Quality != "good" {
		t.Errorf("latest: %+v", latest.Points)
	}

	// Aggregated: counts per minute add up to every sample of the point.
	var agg rangeAnswer
	getJSON(t, query(h.url, "/history/range", "point", "comsrv:1:T:3", "start", from, "end", to, "step", "60s", "agg", "count"), &agg)
	sum := 0.0
	for _, v := range agg.Points[0].Values {
		sum += v[1]
	}
	if sum != steps {
		t.Errorf("per-minute counts add up to %g, want %d: %v", sum, steps, agg.Points[0].Values)
	}

	// CSV export.
	resp, err := http.Get(query(h.url, "/history/export.csv", "point", "inst:5:M:12", "start", from, "end", to))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil || len(rows) != steps+1 || strings.Join(rows[0], ",") != "time,unix_ms,point,value" {
		t.Fatalf("csv: %d rows, %v", len(rows), err)
	}
	if rows[1][2] != "inst:5:M:12" || rows[1][1] != strconv.FormatInt(start, 10) || rows[1][3] != strconv.FormatFloat(value(12, 0), 'f', -1, 64) {
		t.Errorf("csv first row %v", rows[1])
	}

	// PromQL, as Grafana sends it.
	var pa promAnswer
	q := fmt.Sprintf(`count_over_time(voltage_point{kind="channel",channel="1",type="T",point="3"}[%ds])`, steps+10)
	code := getJSON(t, query(h.url, "/api/v1/query", "query", q, "time", strconv.FormatInt(start/1000+steps, 10)), &pa)
	if code != 200 || pa.Status != "success" || len(pa.Data.Result) != 1 || pa.Data.Result[0].Value[1] != strconv.Itoa(steps) {
		t.Errorf("PromQL count_over_time: %d %+v", code, pa)
	}
	pa = promAnswer{}
	code = getJSON(t, query(h.url, "/api/v1/query_range", "query", `voltage_point{channel="1",point="1"}`,
		"start", from, "end", to, "step", "30"), &pa)
	if code != 200 || pa.Data.ResultType != "matrix" || len(pa.Data.Result) != 1 || len(pa.Data.Result[0].Values) < 10 {
		t.Errorf("PromQL range: %d %+v", code, pa)
	}

	// What Grafana's query builder asks: label names, values, series, build info.
	var names struct {
		Status string   `json:"status"`
		Data   []string `json:"data"`
	}
	getJSON(t, h.url+"/api/v1/labels", &names)
	if strings.Join(names.Data, ",") != "__name__,channel,instance,kind,point,site,type" {
		t.Errorf("labels: %+v", names)
	}
	// The hour bucket closes at the first tick after hissrv caught up.
	testharness.Eventually(t, 30*time.Second, func() error {
		getJSON(t, h.url+"/api/v1/label/__name__/values", &names)
		if strings.Join(names.Data, ",") != "voltage_point,voltage_point:avg_1h,voltage_point:avg_1m,voltage_point:count_1h,voltage_point:count_1m,"+
			"voltage_point:last_1h,voltage_point:last_1m,voltage_point:max_1h,voltage_point:max_1m,voltage_point:min_1h,voltage_point:min_1m,voltage_point_quality" {
			return fmt.Errorf("metric names: %+v", names)
		}
		return nil
	})
	testharness.Eventually(t, 30*time.Second, func() error {
		pa = promAnswer{}
		getJSON(t, query(h.url, "/api/v1/query", "query", `sum_over_time(voltage_point:count_1h{channel="1",point="4"}[3h])`, "time", to), &pa)
		if len(pa.Data.Result) != 1 || pa.Data.Result[0].Value[1] != strconv.Itoa(steps) {
			return fmt.Errorf("hour tier count: %+v", pa)
		}
		return nil
	})
	getJSON(t, query(h.url, "/api/v1/label/point/values", "match[]", `voltage_point{channel="2"}`), &names)
	if strings.Join(names.Data, ",") != "1" {
		t.Errorf("point values of channel 2: %+v", names)
	}
	var series struct {
		Data []map[string]string `json:"data"`
	}
	getJSON(t, query(h.url, "/api/v1/series", "match[]", `voltage_point{kind="instance"}`), &series)
	if len(series.Data) != 1 || series.Data[0]["instance"] != "5" || series.Data[0]["point"] != "12" || series.Data[0]["site"] != "test-site" {
		t.Errorf("series: %+v", series)
	}
	if code := getJSON(t, h.url+"/api/v1/status/buildinfo", nil); code != 200 {
		t.Errorf("buildinfo: %d", code)
	}
}

// TestBadQueriesAreRefusedWithTheReason checks every kind of bad request gets a
// 4xx and a message naming the problem.
func TestBadQueriesAreRefusedWithTheReason(t *testing.T) {
	s := newSite(t, "", 0)
	h := s.run()
	ctx := context.Background()
	start := time.Now().Add(-time.Hour).Truncate(time.Minute).UnixMilli()
	p := newProducer(s.rdb, 0, start)
	for i := range 10 {
		if err := p.writeStep(ctx, i, 2); err != nil {
			t.Fatal(err)
		}
	}
	s.caughtUp("embedded", 60*time.Second)
	from, to := strconv.FormatInt(start/1000, 10), strconv.FormatInt(start/1000+60, 10)
	cases := []struct {
		name, path string
		kv         []string
		status     int
		reason     string
	}{
		{"unknown point", "/history/range", []string{"point", "comsrv:1:T:999", "start", from, "end", to}, 404, "no history for point comsrv:1:T:999"},
		{"unknown point latest", "/history/latest", []string{"point", "comsrv:9:T:1"}, 404, "no history"},
		{"malformed point", "/history/range", []string{"point", "comsrv:1:X:1", "start", from}, 400, "not a channel or instance hash"},
		{"no point", "/history/range", []string{"start", from}, 400, "name at least one point"},
		{"reversed range", "/history/range", []string{"point", "comsrv:1:T:1", "start", to, "end", from}, 400, "is before start"},
		{"millions of points", "/history/range", []string{"point", "comsrv:1:T:1", "start", "0", "end", to, "step", "1s"}, 400, "the limit is 11000"},
		{"bad step", "/history/range", []string{"point", "comsrv:1:T:1", "start", from, "step", "fast"}, 400, "step"},
		{"bad agg", "/history/range", []string{"point", "comsrv:1:T:1", "start", from, "step", "1m", "agg", "median"}, 400, "agg \"median\""},
		{"agg without step", "/history/range", []string{"point", "comsrv:1:T:1", "start", from, "agg", "max"}, 400, "agg needs a step"},
		{"bad time", "/history/export.csv", []string{"point", "comsrv:1:T:1", "start", "yesterday"}, 400, "start: time \"yesterday\""},
		{"unknown tier", "/history/range", []string{"point", "comsrv:1:T:1", "start", from, "step", "1m", "tier", "5m"}, 400, "tier \"5m\""},
		{"promql syntax", "/api/v1/query", []string{"query", "voltage_point{"}, 400, "invalid parameter \"query\""},
		{"promql reversed", "/api/v1/query_range", []string{"query", "voltage_point", "start", to, "end", from, "step", "15"}, 400, "end timestamp must not be before start"},
		{"promql resolution", "/api/v1/query_range", []string{"query", "voltage_point", "start", "0", "end", to, "step", "1"}, 400, "exceeded maximum resolution of 11000 points"},
		{"promql no step", "/api/v1/query_range", []string{"query", "voltage_point", "start", from, "end", to}, 400, "invalid parameter \"step\""},
		{"series without match", "/api/v1/series", nil, 400, "no match[]"},
		{"bad matcher", "/api/v1/series", []string{"match[]", "{point=~\"(\"}"}, 400, "match[]"},
	}
	for _, c := range cases {
		resp, err := http.Get(query(h.url, c.path, c.kv...))
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(resp)
		// /history answers problem documents; /api/v1 answers as Prometheus does.
		var e struct{ Error, Detail string }
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			t.Errorf("%s: %d %s: not a JSON error: %v", c.name, resp.StatusCode, body, err)
		}
		reason := e.Error
		if strings.HasPrefix(c.path, "/history/") {
			reason = e.Detail
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("%s: Content-Type %q, want application/problem+json", c.name, ct)
			}
		}
		if resp.StatusCode != c.status || !strings.Contains(reason, c.reason) {
			t.Errorf("%s: %d %s; want %d with %q", c.name, resp.StatusCode, body, c.status, c.reason)
		}
	}
}

func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}
