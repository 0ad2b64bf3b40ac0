package benchtable

import (
	"fmt"
	"strings"
)

// Run is one `go test -bench` invocation.
type Run struct {
	Pkg       string // package pattern, e.g. ./services/comsrv/
	Bench     string // -bench regexp
	Benchtime string // -benchtime; "" for the default
}

// Metric names one reported metric: the first benchmark whose name starts with
// Bench, and its unit.
type Metric struct {
	Bench, Unit string
	Label       string // how the table shows it, e.g. "P99"
}

// Row is one budget of DESIGN §10.
type Row struct {
	What     string
	Budget   string
	Runs     []Run
	Measured []Metric // the first is the one the ratio and the budget use
	Baseline []Metric // measured in the same run; the first is the ratio's denominator
	// Holds says whether the budget holds; known is false when the run did not
	// produce what it needs.
	Holds func(r Results) (holds, known bool)
	Note  string // how a part of the budget that is not a benchmark is proven
}

// Rows are DESIGN §10's budgets in its order.
var Rows = []Row{
	{
		What: "comsrv → Redis write path", Budget: "≥ 1,000,000 updates/s and ≥ 0.5 × redis-benchmark -P 16 HSET",
		Runs:     []Run{{"./shared/statestore/", "WriteVsRedisBenchmark", "3s"}},
		Measured: []Metric{{"BenchmarkWriteVsRedisBenchmark/", "points/s", "updates/s"}},
		Baseline: []Metric{{"BenchmarkWriteVsRedisBenchmark/", "redis_benchmark_hset/s", "redis-benchmark HSET/s"}},
		Holds: func(r Results) (bool, bool) {
			rate, ok1 := r.find("BenchmarkWriteVsRedisBenchmark/", "points/s")
			ratio, ok2 := r.find("BenchmarkWriteVsRedisBenchmark/", "ratio")
			return rate >= 1e6 && ratio >= 0.5, ok1 && ok2
		},
	},
	{
		What: "Modbus acquisition, 500 devices × 30 registers at 1 s", Budget: "< 20 % of one core",
		Runs:     []Run{{"./services/comsrv/", "Acquisition", "1x"}},
		Measured: []Metric{{"BenchmarkAcquisition500Devices", "comsrv_%core", "% core"}},
		Baseline: []Metric{{"BenchmarkAcquisition500Devices", "bare_client_%core", "bare client % core"}},
		Holds:    below("BenchmarkAcquisition500Devices", "comsrv_%core", 20),
	},
	{
		What: "device change → WebSocket client, pushed (IEC 104 spontaneous)", Budget: "P99 < 10 ms",
		Runs: []Run{{"./services/apigateway/", "DeviceToWebSocket", "300x"}},
		Measured: []Metric{{"BenchmarkDeviceToWebSocket", "iec104_ws_p99_ms", "P99 ms"},
			{"BenchmarkDeviceToWebSocket", "iec104_ws_p50_ms", "P50 ms"}},
		Baseline: []Metric{{"BenchmarkDeviceToWebSocket", "iec104_redis_p99_ms", "at a Redis subscriber, P99 ms"}},
		Holds:    below("BenchmarkDeviceToWebSocket", "iec104_ws_p99_ms", 10),
	},
	{
		What: "device change → WebSocket client, polled (Modbus, 100 ms poll)", Budget: "P99 ≤ poll interval + 10 ms (110 ms)",
		Runs: []Run{{"./services/apigateway/", "DeviceToWebSocket", "300x"}},
		Measured: []Metric{{"BenchmarkDeviceToWebSocket", "modbus_ws_p99_ms", "P99 ms"},
			{"BenchmarkDeviceToWebSocket", "modbus_ws_p50_ms", "P50 ms"}},
		Baseline: []Metric{{"BenchmarkDeviceToWebSocket", "modbus_redis_p99_ms", "at a Redis subscriber, P99 ms"}},
		Holds:    atMost("BenchmarkDeviceToWebSocket", "modbus_ws_p99_ms", 110),
	},
	{
		What: "modsrv: one input change through a 10,000-node DAG", Budget: "P99 < 5 ms",
		Runs:     []Run{{"./services/modsrv/", "DAGChange$", "2000x"}},
		Measured: []Metric{{"BenchmarkDAGChange", "p99-ms", "P99 ms"}, {"BenchmarkDAGChange", "p50-ms", "P50 ms"}},
		Holds:    below("BenchmarkDAGChange", "p99-ms", 5),
	},
	{
		What: "gateway: GET of 1,000 realtime values, 100 concurrent clients", Budget: "P95 < 10 ms",
		Runs:     []Run{{"./services/apigateway/", "RealtimeRead", "5000x"}},
		Measured: []Metric{{"BenchmarkRealtimeRead", "gateway_p95_ms", "P95 ms"}},
		Baseline: []Metric{{"BenchmarkRealtimeRead", "bare_redis_p95_ms", "bare chi reading Redis, P95 ms"},
			{"BenchmarkRealtimeRead", "bare_constant_p95_ms", "bare handler, constant body, P95 ms"}},
		Holds: below("BenchmarkRealtimeRead", "gateway_p95_ms", 10),
	},
	{
		What: "hissrv: samples into the embedded store", Budget: "≥ 1,000,000 samples/s",
		Runs:     []Run{{"./services/hissrv/embedded/", "Ingest", ""}},
		Measured: []Metric{{"BenchmarkIngest/points_1000/sync_wal", "samples/s", "samples/s"}},
		Baseline: []Metric{{"BenchmarkIngest/points_1000/sync_wal", "tsdb-samples/s", "Prometheus TSDB appender, samples/s"}},
		Holds:    atLeast("BenchmarkIngest/points_1000/sync_wal", "samples/s", 1e6),
	},
	{
		What: "hissrv: bytes per sample on disk (poll-cycle timestamps)", Budget: "≤ 2 bytes/sample",
		Runs: []Run{{"./services/hissrv/embedded/", "BytesPerSample", "1x"}},
		Measured: []Metric{{"BenchmarkBytesPerSample/jitter_0ms", "bytes/sample", "bytes/sample"},
			{"BenchmarkBytesPerSample/jitter_7ms", "bytes/sample", "with 7 ms jitter"}},
		Holds: atMost("BenchmarkBytesPerSample/jitter_0ms", "bytes/sample", 2),
	},
	{
		What: "edge → cloud: bridge Redis → UPLINK sustained", Budget: "≥ 100,000 points/s",
		Runs:     []Run{{"./edge/bridge/", "Uplink", "20000x"}},
		Measured: []Metric{{"BenchmarkUplink/bridge/points=100", "points/s", "points/s"}},
		Baseline: []Metric{{"BenchmarkUplink/raw_jetstream/points=100", "points/s", "raw JetStream publish, points/s"}},
		Holds:    atLeast("BenchmarkUplink/bridge/points=100", "points/s", 100_000),
	},
	{
		What: "edge → cloud: catch-up after a link cut", Budget: "0 lost after a 10-minute cut",
		Runs:     []Run{{"./cloud/hub/", "Sourcing", "100000x"}},
		Measured: []Metric{{"BenchmarkSourcing/catch-up-after-cut", "points/s", "catch-up points/s"}},
		Baseline: []Metric{{"BenchmarkSourcing/baseline-local-store", "points/s", "local JetStream store, points/s"}},
		Note:     "loss is counted by the link-cut tests of cloud/hub (exactly once, ids compared), not by this rate",
	},
	{
		What: "edge appliance memory, 10,000 points", Budget: "< 150 MB RSS",
		Runs:     []Run{{"./edge/cmd/voltage-edge/", "ApplianceRSS", "1x"}},
		Measured: []Metric{{"BenchmarkApplianceRSS/points=10000", "MB-RSS-peak", "peak RSS MB"}},
		Baseline: []Metric{{"BenchmarkApplianceRSS/baseline/points=1", "MB-RSS-peak", "same appliance with 1 point, MB"}},
		Holds:    below("BenchmarkApplianceRSS/points=10000", "MB-RSS-peak", 150),
	},
}

func below(bench, unit string, limit float64) func(Results) (bool, bool) {
	return func(r Results) (bool, bool) { v, ok := r.find(bench, unit); return v < limit, ok }
}

func atMost(bench, unit string, limit float64) func(Results) (bool, bool) {
	return func(r Results) (bool, bool) { v, ok := r.find(bench, unit); return v <= limit, ok }
}

func atLeast(bench, unit string, limit float64) func(Results) (bool, bool) {
	return func(r Results) (bool, bool) { v, ok := r.find(bench, unit); return v >= limit, ok }
}

// find returns the metric of the first benchmark (in name order) whose name
// starts with prefix.
func (r Results) find(prefix, unit string) (float64, bool) {
	best := ""
	for name, m := range r {
		if _, ok := m[unit]; ok && strings.HasPrefix(name, prefix) && (best == "" || name < best) {
			best = name
		}
	}
	if best == "" {
		return 0, false
	}
	return r[best][unit], true
}

// Line is one row of the table, evaluated.
type Line struct {
	What, Measured, Baseline, Ratio, Budget, Holds string
}

// Evaluate turns a row and the run's results into a table line; a metric the run
// did not produce reads "missing".
func (row Row) Evaluate(r Results) Line {
	l := Line{What: row.What, Budget: row.Budget, Measured: show(r, row.Measured), Baseline: show(r, row.Baseline), Ratio: "—", Holds: "n/a"}
	if len(row.Measured) > 0 && len(row.Baseline) > 0 {
		m, ok1 := r.find(row.Measured[0].Bench, row.Measured[0].Unit)
		b, ok2 := r.find(row.Baseline[0].Bench, row.Baseline[0].Unit)
		if ok1 && ok2 && b != 0 {
			l.Ratio = fmt.Sprintf("%.3g", m/b)
		}
	}
	if row.Holds != nil {
		switch holds, known := row.Holds(r); {
		case !known:
			l.Holds = "not measured"
		case holds:
			l.Holds = "yes"
		default:
			l.Holds = "**no**"
		}
	}
	if row.Note != "" {
		l.Holds += " (" + row.Note + ")"
	}
	return l
}

func show(r Results, ms []Metric) string {
	if len(ms) == 0 {
		return "—"
	}
	parts := make([]string, 0, len(ms))
	for _, m := range ms {
		v, ok := r.find(m.Bench, m.Unit)
		if !ok {
			parts = append(parts, m.Label+" missing")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s", number(v), m.Label))
	}
	return strings.Join(parts, "; ")
}

// number prints a figure with three significant digits, thousands grouped.
func number(v float64) string {
	if v >= 10_000 {
		s := fmt.Sprintf("%.0f", v)
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		return b.String()
	}
	return fmt.Sprintf("%.3g", v)
}

// Markdown renders lines as a Markdown table.
func Markdown(lines []Line) string {
	var b strings.Builder
	b.WriteString("| budget (DESIGN §10) | measured | baseline, same run | ratio | budget | holds |\n|---|---|---|---|---|---|\n")
	for _, l := range lines {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", l.What, l.Measured, l.Baseline, l.Ratio, l.Budget, l.Holds)
	}
	return b.String()
}
