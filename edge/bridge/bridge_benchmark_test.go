package bridge

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/shared/uplink"
	"github.com/voltageems/voltage/tools/sitetest"
)

// benchEnv is Redis holding n change entries of pts points each, and an embedded
// NATS server with JetStream under the site's domain.
type benchEnv struct {
	site *config.Config
	rdb  *redis.Client
	nc   *nats.Conn
	js   jetstream.JetStream
}

func newBenchEnv(b *testing.B, n, pts int) *benchEnv {
	b.Helper()
	rd := testharness.StartRedis(b)
	e := &benchEnv{rdb: rd.Client(b)}
	dir, _ := sitetest.Write(b, virtualSite, rd.URL())
	var err error
	if e.site, err = config.Load(dir); err != nil {
		b.Fatal(err)
	}
	ns := testharness.StartNATS(b, func(o *server.Options) {
		o.JetStreamDomain = siteID
		o.JetStreamMaxStore = 4 << 30
	})
	e.nc = ns.Conn(b)
	if e.js, err = jetstream.New(e.nc); err != nil {
		b.Fatal(err)
	}
	// Fill voltage:changes as comsrv would: one entry per channel and poll.
	w := statestore.NewWriter(e.rdb, int64(n)+1000)
	const perWrite = 100
	batches := make([]statestore.Batch, 0, perWrite)
	ts := time.Now().UnixMilli()
	for i := 0; i < n; i++ {
		samples := make([]point.Sample, pts)
		for j := range samples {
			samples[j] = point.Sample{ID: point.ID(j + 1), Value: float64(i*7+j) * 0.1, Raw: float64(i*7 + j)}
		}
		batches = append(batches, statestore.ChannelBatch(uint32(1+i%50), point.Telemetry, ts+int64(i), samples))
		if len(batches) == perWrite || i == n-1 {
			if err := w.Write(context.Background(), batches...); err != nil {
				b.Fatal(err)
			}
			batches = batches[:0]
		}
	}
	return e
}

func benchConfig() Config {
	c := DefaultConfig()
	c.Stream.MaxMB = 2048
	c.Uplink.Alarms = new(bool)
	return c
}

// BenchmarkUplink measures the bridge's sustained throughput Redis → UPLINK in
// points/s (budget: ≥ 100,000 points/s, DESIGN §10) against a baseline in the
// same run: raw JetStream asynchronous publishes of the same messages into the
// same stream, with nothing read from or acknowledged in Redis. b.N is the number
// of change entries; run with a fixed count, e.g.
//
//	go test -run XXX -bench Uplink -benchtime 20000x ./bridge
func BenchmarkUplink(b *testing.B) {
	for _, pts := range []int{100, 10} {
		b.Run(fmt.Sprintf("bridge/points=%d", pts), func(b *testing.B) { benchBridge(b, pts) })
		b.Run(fmt.Sprintf("raw_jetstream/points=%d", pts), func(b *testing.B) { benchRaw(b, pts) })
	}
}

func benchBridge(b *testing.B, pts int) {
	e := newBenchEnv(b, b.N, pts)
	br, err := New(Options{Site: e.site, Config: benchConfig(), Redis: e.rdb, NATS: e.nc, Log: testLogger()})
	if err != nil {
		b.Fatal(err)
	}
	if err := br.EnsureStream(context.Background()); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ResetTimer()
	begin := time.Now()
	go func() { done <- br.RunUplink(ctx) }()
	tick := time.NewTicker(time.Millisecond)
	for br.Changes.Acked.Load() < uint64(b.N) {
		<-tick.C
	}
	elapsed := time.Since(begin)
	b.StopTimer()
	tick.Stop()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if got := br.Changes.Published.Load(); got != uint64(b.N) {
		b.Fatalf("published %d of %d entries", got, b.N)
	}
	b.ReportMetric(float64(b.N*pts)/elapsed.Seconds(), "points/s")
}

func benchRaw(b *testing.B, pts int) {
	e := newBenchEnv(b, b.N, pts)
	// The same messages the bridge sends: subject, headers and the change JSON.
	entries, err := e.rdb.XRange(context.Background(), keyspace.Changes, "-", "+").Result()
	if err != nil {
		b.Fatal(err)
	}
	msgs := make([]*nats.Msg, len(entries))
	for i, m := range entries {
		src, _ := keyspace.ParseChangeKey(m.Values["key"].(string))
		msgs[i] = upMsg(subjects.ChannelUp(siteID, src.ID, point.Telemetry), siteID, uplink.SourceChanges, m.ID, m.Values["key"].(string), []byte(m.Values["m"].(string)))
	}
	cfg := benchConfig()
	js, err := jetstream.New(e.nc, jetstream.WithPublishAsyncMaxPending(cfg.Uplink.Window))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := js.CreateOrUpdateStream(context.Background(), StreamConfig(siteID, cfg.Stream)); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	begin := time.Now()
	for _, m := range msgs {
		if _, err := js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publishes not acknowledged within a minute")
	}
	elapsed := time.Since(begin)
	b.StopTimer()
	b.ReportMetric(float64(b.N*pts)/elapsed.Seconds(), "points/s")
}
