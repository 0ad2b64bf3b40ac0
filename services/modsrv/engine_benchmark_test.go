package modsrv

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/model"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
)

// benchSite writes a site with one virtual channel of `points` telemetry points,
// a product "node" with 100 measurements, instances src and n1..n{instances}, the
// routing route(k) for each n{k} (and src's m1..m100 from points 1..100), and the
// calculations calcs.
func benchSite(b *testing.B, points, instances int, route func(k int) string, calcs string) string {
	b.Helper()
	dir := b.TempDir()
	write := func(name, content string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	write("site.yaml", "site: {id: bench, name: Bench}\n")
	write("comsrv/channels.yaml", "channels:\n  - {id: 1, name: dev, protocol: virtual}\n")
	var sb strings.Builder
	sb.WriteString("point_id,signal_name,scale,offset,unit,reverse,data_type\n")
	for i := 1; i <= points; i++ {
		fmt.Fprintf(&sb, "%d,p%d,1,0,,0,float\n", i, i)
	}
	write("comsrv/1/telemetry.csv", sb.String())
	sb.Reset()
	sb.WriteString("id: node\nmeasurements:\n")
	for j := 1; j <= 100; j++ {
		fmt.Fprintf(&sb, "  - {id: %d, name: m%d}\n", j, j)
	}
	sb.WriteString("properties:\n  - {name: gain, default: 1.5}\n")
	write("modsrv/products/node.yaml", sb.String())
	sb.Reset()
	sb.WriteString("instances:\n  - {id: 1000, name: src, product: node}\n")
	for k := 1; k <= instances; k++ {
		fmt.Fprintf(&sb, "  - {id: %d, name: n%d, product: node}\n", k, k)
	}
	write("modsrv/instances.yaml", sb.String())
	sb.Reset()
	sb.WriteString("channel_id,channel_type,channel_point_id,instance_type,instance_point_id\n")
	for j := 1; j <= 100; j++ {
		fmt.Fprintf(&sb, "1,T,%d,M,%d\n", j, j)
	}
	write("modsrv/instances/src/channel_routing.csv", sb.String())
	for k := 1; k <= instances && route != nil; k++ {
		if r := route(k); r != "" {
			write(fmt.Sprintf("modsrv/instances/n%d/channel_routing.csv", k), r)
		}
	}
	write("modsrv/calculations.yaml", calcs)
	return dir
}

// benchEngine loads the site and returns an engine writing to a fresh Redis.
func benchEngine(b *testing.B, dir string) (*engine, *redis.Client) {
	b.Helper()
	chans, err := config.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	m, err := model.Load(dir, chans)
	if err != nil {
		b.Fatal(err)
	}
	rdb := testharness.StartRedis(b).Client(b)
	// Every channel point has a value, as on a running site.
	var initial []point.Sample
	for _, p := range chans.Channel(1).Points[point.Telemetry] {
		initial = append(initial, point.Sample{ID: p.ID, Value: 1})
	}
	if err := statestore.NewWriter(rdb, 0).Write(context.Background(), statestore.ChannelBatch(1, point.Telemetry, time.Now().UnixMilli(), initial)); err != nil {
		b.Fatal(err)
	}
	e := newEngine(m, rdb, statestore.NewWriter(rdb, 0), slog.New(slog.DiscardHandler), newMetrics(prometheus.NewRegistry()))
	if err := e.handle(context.Background(), []queued{{Resync: true}}); err != nil {
		b.Fatal(err)
	}
	return e, rdb
}

// changeMessage is comsrv's pub/sub message for the given points of channel 1 T.
func changeMessage(ts int64, values map[point.ID]float64) queued {
	m := statestore.Message{TS: ts, V: map[string]float64{}}
	for id, v := range values {
		m.V[strconv.FormatUint(uint64(id), 10)] = v
	}
	b, _ := json.Marshal(m)
	return queued{Channel: keyspace.ChannelPoints(1, point.Telemetry), Payload: string(b)}
}

// dagCalcs builds 100 × 100 = 10,000 calculations: n{k}.m1 reads its input,
// n{k}.m{j} reads n{k}.m{j-1} (a chain of 100 per instance). With fanout every
// node also reads src.m1, so one change of src.m1 recomputes all 10,000.
func dagCalcs(fanout bool) string {
	var sb strings.Builder
	sb.WriteString("calculations:\n")
	for k := 1; k <= 100; k++ {
		for j := 1; j <= 100; j++ {
			var expr string
			switch {
			case j == 1:
				expr = fmt.Sprintf("src.m%d * n%d.gain", k, k)
			case fanout:
				expr = fmt.Sprintf("clamp(n%d.m%d + src.m1, -1e12, 1e12)", k, j-1)
			default:
				expr = fmt.Sprintf("clamp(n%d.m%d + 1, -1e12, 1e12)", k, j-1)
			}
			fmt.Fprintf(&sb, "  - {name: c%d_%d, instance: n%d, measurement: m%d, expression: '%s'}\n", k, j, k, j, expr)
		}
	}
	return sb.String()
}

// benchDAG measures one input change through the 10,000-node DAG until its
// outputs are in Redis: the processor's whole handling of one change message
// (decode, route, evaluate the dependents in order, one MULTI/EXEC write).
func benchDAG(b *testing.B, fanout bool) {
	dir := benchSite(b, 100, 100, nil, dagCalcs(fanout))
	e, _ := benchEngine(b, dir)
	if n := len(e.g.nodes); n != 10_000 {
		b.Fatalf("%d nodes", n)
	}
	ctx := context.Background()
	ts := time.Now().UnixMilli()
	lat := make([]time.Duration, 0, b.N)
	recomputed := 0.0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ts++
		input := point.ID(1 + i%100)
		if fanout {
			input = 1
		}
		msg := changeMessage(ts, map[point.ID]float64{input: float64(i)})
		start := time.Now()
		if err := e.handle(ctx, []queued{msg}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	for _, n := range e.g.nodes {
		recomputed += float64(n.evals)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100])/float64(5*time.Millisecond), "p99/budget")
	b.ReportMetric(recomputed/float64(b.N+1), "nodes-evaluated/op")
}

// BenchmarkDAGChange changes one of 100 inputs, each feeding a chain of 100 of
// the 10,000 calculations: 100 nodes recomputed and written per change.
func BenchmarkDAGChange(b *testing.B) { benchDAG(b, false) }

// BenchmarkDAGChangeFanout changes the input every one of the 10,000
// calculations reads: all of them recomputed and written in one batch.
func BenchmarkDAGChangeFanout(b *testing.B) { benchDAG(b, true) }

// BenchmarkRouting routes batches of 1,000 changed channel points to 10,000
// instance measurements (100 instances), against a baseline measured in the same
// run: the statestore write of the same 1,000 samples, which is comsrv's side of
// the path. ratio = routed points/s ÷ baseline points/s.
func BenchmarkRouting(b *testing.B) {
	const batch = 1000
	dir := benchSite(b, 10_100, 100, func(k int) string {
		var sb strings.Builder
		sb.WriteString("channel_id,channel_type,channel_point_id,instance_type,instance_point_id\n")
		for j := 1; j <= 100; j++ {
			fmt.Fprintf(&sb, "1,T,%d,M,%d\n", 100+(k-1)*100+j, j)
		}
		return sb.String()
	}, "")
	e, rdb := benchEngine(b, dir)
	ctx := context.Background()
	ts := time.Now().UnixMilli()
	// The 10,000 routed points in batches of 1,000: every message touches 10 instances.
	msgs := make([]queued, 10)
	samples := make([][]point.Sample, 10)
	for i := range msgs {
		vals := map[point.ID]float64{}
		for j := 0; j < batch; j++ {
			id := point.ID(101 + i*batch + j)
			vals[id] = float64(j) + 0.5
			samples[i] = append(samples[i], point.Sample{ID: id, Value: float64(j) + 0.5})
		}
		msgs[i] = changeMessage(ts, vals)
	}

	// Baseline, interleaved with the measured runs so both see the same machine:
	// writing the same samples to a channel hash, as comsrv does.
	store := statestore.NewWriter(rdb, 0)
	var routed, baseline time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := e.handle(ctx, []queued{msgs[i%10]}); err != nil {
			b.Fatal(err)
		}
		routed += time.Since(start)
		b.StopTimer()
		start = time.Now()
		if err := store.Write(ctx, statestore.ChannelBatch(2, point.Telemetry, ts, samples[i%10])); err != nil {
			b.Fatal(err)
		}
		baseline += time.Since(start)
		b.StartTimer()
	}
	b.StopTimer()
	rate := float64(b.N*batch) / routed.Seconds()
	base := float64(b.N*batch) / baseline.Seconds()
	b.ReportMetric(rate, "points/s")
	b.ReportMetric(base, "baseline-points/s")
	b.ReportMetric(rate/base, "ratio")
	b.ReportMetric(rate/500_000, "rate/budget")
}

// BenchmarkDAGChangeEndToEnd is BenchmarkDAGChange through Redis: the input is
// written as comsrv writes it (statestore, PUBLISH on comsrv:1:T), modsrv's
// subscriber and processor run as in the service, and the clock stops when the
// last output of the changed chain arrives on its inst:{id}:M channel.
func BenchmarkDAGChangeEndToEnd(b *testing.B) {
	dir := benchSite(b, 100, 100, nil, dagCalcs(false))
	e, rdb := benchEngine(b, dir)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.run(ctx) }()
	defer func() { cancel(); <-done }()
	testharness.WaitFor(b, 30*time.Second, "modsrv subscribed and resynced", e.synced.Load)

	// Every chain ends in n{k}.m100; listen to all 100 instances.
	channels := make([]string, 100)
	for k := range channels {
		channels[k] = keyspace.InstanceMeasurements(uint32(k + 1))
	}
	sub := rdb.Subscribe(context.Background(), channels...)
	defer sub.Close()
	if _, err := sub.Receive(context.Background()); err != nil {
		b.Fatal(err)
	}
	msgs := sub.Channel(redis.WithChannelSize(1000))
	store := statestore.NewWriter(rdb, 0)
	ts := time.Now().UnixMilli()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ts++
		k := 1 + i%100
		want := keyspace.InstanceMeasurements(uint32(k))
		start := time.Now()
		if err := store.Write(context.Background(), statestore.ChannelBatch(1, point.Telemetry, ts, []point.Sample{{ID: point.ID(k), Value: float64(i)}})); err != nil {
			b.Fatal(err)
		}
		for got := false; !got; {
			select {
			case m := <-msgs:
				got = m.Channel == want && strings.Contains(m.Payload, `"100":`)
			case <-time.After(10 * time.Second):
				b.Fatalf("no output of chain %d within 10 s", k)
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100])/float64(5*time.Millisecond), "p99/budget")
}
