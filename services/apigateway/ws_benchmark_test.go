package apigateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/crypto/bcrypt"

	"github.com/voltageems/voltage/services/apigateway"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/tools/sitetest"
)

// BenchmarkWSFanout pushes 1,000 points/s (10 batches of 100 a second) to 1,000
// WebSocket clients subscribed to the channel, and reports the P95 delay from the
// Redis write to a client holding the batch (latency_p95_ms), and how many
// clients ended up with the newest values. b.N is the number of batches. The
// clients run in the same process, so they share the CPU with the gateway.
//
// It runs with websocket.flush_interval 0 (the default: a change leaves as soon as
// the client's writer is free) and 100ms (frames spaced out).
func BenchmarkWSFanout(b *testing.B) {
	for _, flush := range []string{"0s", "100ms"} {
		b.Run("flush="+flush, func(b *testing.B) { benchWSFanout(b, flush) })
	}
}

func benchWSFanout(b *testing.B, flush string) {
	const clients, perBatch = 1000, 100
	rds := testharness.StartRedis(b)
	rdb := rds.Client(b)
	dir, _ := sitetest.Write(b, virtualSite, rds.URL())
	site, err := config.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	set := apigateway.DefaultSettings()
	set.WebSocket.MaxClients = clients + 10
	set.WebSocket.FlushInterval = flush
	go func() {
		done <- apigateway.Run(ctx, apigateway.Config{Site: site, ConfigDir: dir, HTTPAddr: "127.0.0.1:0",
			Log: sitetest.Logger(b), Settings: &set, BcryptCost: bcrypt.MinCost, AdminPassword: adminPassword,
			Out: io.Discard, Bound: func(a net.Addr) { addr <- a }})
	}()
	defer func() { cancel(); <-done }()
	url := "http://" + (<-addr).String()
	token := benchLogin(b, http.DefaultClient, url)

	n := max(b.N, 10)
	var mu sync.Mutex
	var lat []time.Duration
	complete := 0 // clients that received the last batch
	sent := make([]time.Time, n+1)
	var sentMu sync.RWMutex
	var wg sync.WaitGroup
	ready := make(chan struct{}, clients)
	marker := []byte(`"channel":1,"type":"T","point":1,"value":`)
	for range clients {
		c, _, err := websocket.Dial(ctx, "ws"+url[4:]+"/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
		if err != nil {
			b.Fatalf("dial: %v", err)
		}
		c.SetReadLimit(16 << 20)
		wg.Go(func() {
			defer c.CloseNow()
			b, _ := json.Marshal(map[string]any{"type": "subscribe", "channels": []uint32{1}})
			if c.Write(ctx, websocket.MessageText, b) != nil {
				return
			}
			seen := 0
			defer func() {
				if seen == n {
					mu.Lock()
					complete++
					mu.Unlock()
				}
			}()
			for seen < n {
				_, msg, err := c.Read(ctx)
				if err != nil {
					return
				}
				// The clients share the CPU with the gateway: they look for the
				// marker point's value without decoding the whole frame.
				if bytes.HasPrefix(msg, []byte(`{"type":"snapshot"`)) {
					ready <- struct{}{}
					continue
				}
				i := bytes.Index(msg, marker)
				if i < 0 {
					continue
				}
				rest := msg[i+len(marker):]
				end := bytes.IndexAny(rest, ",}")
				v, err := strconv.Atoi(string(rest[:max(end, 0)]))
				if err != nil || v <= seen {
					continue
				}
				seen = v
				sentMu.RLock()
				d := time.Since(sent[seen])
				sentMu.RUnlock()
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		})
	}
	for range clients {
		<-ready
	}
	w := statestore.NewWriter(rdb, 0)
	b.ResetTimer()
	tick := time.NewTicker(100 * time.Millisecond)
	for i := 1; i <= n; i++ {
		<-tick.C
		samples := make([]point.Sample, perBatch)
		for p := range samples {
			samples[p] = point.Sample{ID: point.ID(p + 1), Value: float64(i)}
		}
		sentMu.Lock()
		sent[i] = time.Now()
		sentMu.Unlock()
		if err := w.Write(ctx, statestore.ChannelBatch(1, point.Telemetry, time.Now().UnixMilli(), samples)); err != nil {
			b.Fatal(err)
		}
	}
	tick.Stop()
	waitCtx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	go func() { <-waitCtx.Done(); cancel() }() // clients still reading after 30 s are cut
	wg.Wait()
	wcancel()
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) == 0 {
		b.Fatal("no client received anything")
	}
	b.ReportMetric(ms(lat[len(lat)*95/100]), "latency_p95_ms")
	// Changes are coalesced per flush interval, so a client may skip a batch's
	// values; what must hold is that every client ends with the newest.
	b.ReportMetric(float64(complete)/clients, "clients_current_ratio")
}
