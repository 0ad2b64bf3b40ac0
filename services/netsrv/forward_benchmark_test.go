package netsrv_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/voltageems/voltage/services/netsrv"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
)

const benchPointsPerEntry = 100

// BenchmarkForwardQoS1 measures points/s from voltage:changes to Mosquitto at QoS 1
// (counted when the broker acknowledged them), against a baseline measured in the
// same run: a bare autopaho client publishing payloads of the same format and size
// sequentially at QoS 1. Budget: ≥ 50,000 points/s.
func BenchmarkForwardQoS1(b *testing.B) {
	broker := testharness.StartMosquitto(b)
	baseline := baselinePointsPerSecond(b, broker.URL())

	s := newSite(b)
	s.links(fmt.Sprintf(`
links:
  - name: bench
    type: mqtt
    broker: %s
    topic: "bench/{{.Source}}"
`, broker.URL()))
	r := s.start()
	testharness.Eventually(b, 20*time.Second, func() error {
		if !r.linkStatus(b, "bench").Connected {
			return fmt.Errorf("link not connected")
		}
		return nil
	})
	entries := max(1, b.N/benchPointsPerEntry)
	total := entries * benchPointsPerEntry
	batches := make([]statestore.Batch, 0, 100)
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for e := range entries {
		ts := time.Now().UnixMilli()
		samples := make([]point.Sample, benchPointsPerEntry)
		for i := range samples {
			samples[i] = point.Sample{ID: point.ID(i + 1), Value: float64(e*benchPointsPerEntry + i), TS: ts}
		}
		batches = append(batches, statestore.ChannelBatch(uint32(e%10+1), point.Telemetry, ts, samples))
		if len(batches) == cap(batches) || e == entries-1 {
			must(b, s.store.Write(ctx, batches...))
			batches = batches[:0]
		}
	}
	testharness.WaitFor(b, 5*time.Minute, "every point acknowledged by the broker", func() bool {
		return r.linkStatus(b, "bench").SentPoints >= uint64(total)
	})
	elapsed := time.Since(start)
	b.StopTimer()
	rate := float64(total) / elapsed.Seconds()
	b.ReportMetric(rate, "points/s")
	b.ReportMetric(baseline, "baseline_points/s")
	b.ReportMetric(rate/baseline, "ratio")
	b.ReportMetric(0, "ns/op")
}

// baselinePointsPerSecond publishes netsrv-format payloads of 1,000 points with a
// bare autopaho client at QoS 1, one at a time, for about a second.
func baselinePointsPerSecond(b *testing.B, broker string) float64 {
	b.Helper()
	u, err := url.Parse(broker)
	must(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cm, err := autopaho.NewConnection(ctx, autopaho.ClientConfig{
		ServerUrls: []*url.URL{u}, KeepAlive: 30, CleanStartOnInitialConnection: true,
		ClientConfig: paho.ClientConfig{ClientID: "bench-baseline"},
	})
	must(b, err)
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	must(b, cm.AwaitConnection(actx))
	const per = 1000
	pl := netsrv.Payload{Site: "test-site", Link: "baseline", ID: "1-0", TS: time.Now().UnixMilli()}
	for i := range per {
		pl.Points = append(pl.Points, netsrv.Sample{Name: fmt.Sprintf("c1_T_%d", i), Kind: netsrv.KindChannel, Source: 1, Type: "T", Point: uint32(i), Value: float64(i) * 1.5, TS: pl.TS, Quality: "good"})
	}
	payload, err := json.Marshal(pl)
	must(b, err)
	start, msgs := time.Now(), 0
	for time.Since(start) < time.Second {
		if _, err := cm.Publish(ctx, &paho.Publish{QoS: 1, Topic: "baseline/1", Payload: payload}); err != nil {
			b.Fatalf("baseline publish: %v", err)
		}
		msgs++
	}
	rate := float64(msgs*per) / time.Since(start).Seconds()
	dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer dcancel()
	_ = cm.Disconnect(dctx)
	return rate
}
