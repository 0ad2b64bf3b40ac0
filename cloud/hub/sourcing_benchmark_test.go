package hub_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/voltageems/voltage/cloud/hub"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/uplink"
)

// benchPoints is the number of points in one change batch of the benchmarks.
const benchPoints = 50

func benchBatch() []byte {
	var sb strings.Builder
	sb.WriteString(`{"ts":1700000000000,"v":{`)
	for i := range benchPoints {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `"%d":%d.5`, i, i)
	}
	sb.WriteString("}}")
	return []byte(sb.String())
}

// publishAll stores n batches in a stream through js, asynchronously.
func publishAll(b *testing.B, js jetstream.JetStream, subject, prefix string, n int) {
	b.Helper()
	body := benchBatch()
	for i := range n {
		m := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
		m.Header.Set(uplink.HeaderMsgID, fmt.Sprintf("%s.%d", prefix, i))
		if _, err := js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 { // stay below the async window
			<-js.PublishAsyncComplete()
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		b.Fatal("publishes not acknowledged within 60 s")
	}
}

func waitStream(b *testing.B, js jetstream.JetStream, stream string, n uint64) {
	b.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := js.Stream(ctx, stream)
		var got uint64
		if err == nil {
			if info, err := s.Info(ctx); err == nil {
				got = info.State.Msgs
			}
		}
		cancel()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("stream %s holds %d of %d messages after 120 s", stream, got, n)
		}
		time.Sleep(5 * time.Millisecond) // polling the stream state, not synchronising goroutines
	}
}

// BenchmarkSourcing measures how fast a site's backlog reaches the hub after a
// link cut (catch-up), against a baseline measured in the same run: the same
// batches published straight into a stream on the hub. Compare points/s of the
// two sub-benchmarks (DESIGN §10: edge → cloud ≥ 100,000 points/s).
func BenchmarkSourcing(b *testing.B) {
	b.Run("baseline-local-store", func(b *testing.B) {
		cfg := freeConfig(b)
		h := startHub(b, cfg)
		nc, _ := nats.Connect(h.ClientURL)
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx := context.Background()
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BASE", Subjects: []string{"base.>"}}); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		publishAll(b, js, "base.x", "base", b.N)
		waitStream(b, js, "BASE", uint64(b.N))
		b.ReportMetric(float64(b.N*benchPoints)/b.Elapsed().Seconds(), "points/s")
	})
	b.Run("catch-up-after-cut", func(b *testing.B) {
		cfg := freeConfig(b)
		cfg.Sites = []hub.Site{{ID: "bench"}}
		h := startHub(b, cfg)
		p := startProxy(b, leafHost(b, h.LeafURL))
		e := startEdge(b, "bench", edgeLeaf{url: p.url("nats-leaf")})
		nc, _ := nats.Connect(h.ClientURL)
		defer nc.Close()
		js, _ := jetstream.New(nc)
		p.cut()
		publishAll(b, e.js, subjects.ChannelUp("bench", 1, 'T'), "bench", b.N)
		b.ResetTimer()
		p.restore()
		waitStream(b, js, subjects.HubStream("bench"), uint64(b.N))
		b.ReportMetric(float64(b.N*benchPoints)/b.Elapsed().Seconds(), "points/s")
	})
}
