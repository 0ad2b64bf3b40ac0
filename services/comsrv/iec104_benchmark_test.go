package comsrv_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/services/comsrv"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/tools/voltsim"
)

// BenchmarkIEC104SpontaneousToPubSub measures the latency from a value change in
// the simulated station (voltsim sends it spontaneously, M_ME_NC_1) to the change
// message arriving at a Redis pub/sub subscriber of comsrv:{ch}:T — DESIGN §10's
// pushing-protocol budget, P99 < 10 ms. Each iteration is one change, awaited
// before the next. The baseline, measured in the same run, is a bare PUBLISH to
// the same Redis and its arrival at the same kind of subscriber. Run it with
//
//	go test -run '^$' -bench IEC104Spontaneous -benchtime 2000x ./services/comsrv/
func BenchmarkIEC104SpontaneousToPubSub(b *testing.B) {
	s := startBenchStack(b)
	ctx := context.Background()
	key := keyspace.ChannelPoints(1, point.Telemetry)

	sub := s.rdb.Subscribe(ctx, key)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		b.Fatal(err)
	}
	msgs := sub.Channel(redis.WithChannelSize(1000))

	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		v := float64(i%1000) + 0.5
		start := time.Now()
		if err := s.sim.SetValue(1, point.Telemetry, 1, v); err != nil {
			b.Fatal(err)
		}
		if err := awaitValue(msgs, "1", v); err != nil {
			b.Fatalf("change %d: %v", i, err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()

	base := baselinePublish(b, s.rdb, b.N)
	p50, p99 := percentile(lat, 0.50), percentile(lat, 0.99)
	b50, b99 := percentile(base, 0.50), percentile(base, 0.99)
	b.ReportMetric(ms(p50), "p50-ms")
	b.ReportMetric(ms(p99), "p99-ms")
	b.ReportMetric(ms(b99), "baseline-p99-ms")
	b.ReportMetric(ms(b50), "baseline-p50-ms")
	b.ReportMetric(ms(p99)/10, "p99/budget")
	b.ReportMetric(0, "ns/op")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// awaitValue waits for a change message carrying point id = v.
func awaitValue(msgs <-chan *redis.Message, id string, v float64) error {
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case m := <-msgs:
			dm, err := statestore.DecodeMessage([]byte(m.Payload))
			if err != nil {
				return err
			}
			if got, ok := dm.V[id]; ok && got == v {
				return nil
			}
		case <-timeout.C:
			return fmt.Errorf("no message with %s = %v within 10 s", id, v)
		}
	}
}

// baselinePublish measures a bare PUBLISH → subscriber round on the same Redis.
func baselinePublish(b *testing.B, rdb *redis.Client, n int) []time.Duration {
	ctx := context.Background()
	sub := rdb.Subscribe(ctx, "bench:baseline")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		b.Fatal(err)
	}
	ch := sub.Channel()
	out := make([]time.Duration, 0, n)
	for i := range n {
		start := time.Now()
		if err := rdb.Publish(ctx, "bench:baseline", i).Err(); err != nil {
			b.Fatal(err)
		}
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			b.Fatal("baseline message lost")
		}
		out = append(out, time.Since(start))
	}
	return out
}

type benchStack struct {
	rdb *redis.Client
	sim *voltsim.Sim
}

// startBenchStack starts Redis, voltsim and comsrv (in process) for one iec104
// channel with one float point and a long poll interval, so only spontaneous
// data moves it.
func startBenchStack(b *testing.B) *benchStack {
	b.Helper()
	r := testharness.StartRedis(b)
	port := testharness.FreePort(b)
	dir := b.TempDir()
	for name, content := range map[string]string{
		"site.yaml": "site: {id: bench}\nredis: {url: " + r.URL() + "}\n",
		"comsrv/channels.yaml": fmt.Sprintf(`channels:
  - {id: 1, name: rtu, protocol: iec104, enabled: true, parameters: {host: 127.0.0.1, port: %d, poll_interval_ms: 60000}}
`, port),
		"comsrv/1/telemetry.csv":                 pointHeader + "1,f,1,0,,0,float,\n",
		"comsrv/1/mapping/telemetry_mapping.csv": iecMapHeader + "1,1,100,M_ME_NC_1,,\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	cfg, err := config.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	sim, err := voltsim.New(cfg, voltsim.Options{Logger: testLogger(b)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	simDone, comsrvDone := make(chan error, 1), make(chan error, 1)
	go func() { simDone <- sim.Run(ctx) }()
	go func() {
		comsrvDone <- comsrv.Run(ctx, comsrv.Config{Site: cfg, ConfigDir: dir, HTTPAddr: "127.0.0.1:0", Log: testLogger(b), ConsumerName: "bench"})
	}()
	b.Cleanup(func() { cancel(); <-simDone; <-comsrvDone })
	rdb := r.Client(b)
	testharness.WaitFor(b, 20*time.Second, "channel up", func() bool {
		return rdb.HGet(context.Background(), keyspace.ChannelStatus(1), "state").Val() == "up"
	})
	return &benchStack{rdb: rdb, sim: sim}
}
