package apigateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/voltageems/voltage/services/apigateway"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/tools/sitetest"
)

const (
	benchPoints  = 1000
	benchClients = 100
)

// BenchmarkRealtimeRead measures GET of 1,000 realtime values (one channel's
// telemetry by pattern) with 100 concurrent clients through the whole gateway —
// token check, role, Huma, pipelined Redis reads, JSON — next to a bare chi
// handler that reads the same hashes and encodes them, in the same run.
// Reported: p95_ms of each and the ratio gateway/bare (DESIGN §10: P95 < 10 ms).
func BenchmarkRealtimeRead(b *testing.B) {
	rds := testharness.StartRedis(b)
	rdb := rds.Client(b)
	dir, _ := sitetest.Write(b, virtualSite, rds.URL())
	site, err := config.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	samples := make([]point.Sample, benchPoints)
	for i := range samples {
		samples[i] = point.Sample{ID: point.ID(i + 1), Value: float64(i) * 1.5}
	}
	if err := statestore.NewWriter(rdb, 0).Write(context.Background(), statestore.ChannelBatch(1, point.Telemetry, time.Now().UnixMilli(), samples)); err != nil {
		b.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	set := apigateway.DefaultSettings()
	go func() {
		done <- apigateway.Run(ctx, apigateway.Config{Site: site, ConfigDir: dir, HTTPAddr: "127.0.0.1:0",
			Log: sitetest.Logger(b), Settings: &set, BcryptCost: bcrypt.MinCost, AdminPassword: adminPassword,
			Out: io.Discard, Bound: func(a net.Addr) { addr <- a }})
	}()
	defer func() { cancel(); <-done }()
	gwURL := "http://" + (<-addr).String()

	bare := &http.Server{Handler: bareHandler(rdb)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = bare.Serve(ln) }()
	defer bare.Close()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients, MaxConnsPerHost: benchClients}}
	token := benchLogin(b, client, gwURL)

	b.ResetTimer()
	gw := runClients(b, client, gwURL+"/points?pattern=1:T:*&limit=1000", token)
	base := runClients(b, client, "http://"+ln.Addr().String()+"/points", "")
	b.StopTimer()
	b.ReportMetric(ms(gw), "gateway_p95_ms")
	b.ReportMetric(ms(base), "bare_p95_ms")
	b.ReportMetric(float64(gw)/float64(base), "p95_ratio")
	b.ReportMetric(0, "ns/op")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// bareHandler is the baseline: the same two hashes read in one pipeline and
// encoded, with nothing else.
func bareHandler(rdb *redis.Client) http.Handler {
	r := chi.NewRouter()
	r.Get("/points", func(w http.ResponseWriter, req *http.Request) {
		pipe := rdb.Pipeline()
		v := pipe.HGetAll(req.Context(), keyspace.ChannelPoints(1, point.Telemetry))
		ts := pipe.HGetAll(req.Context(), keyspace.ChannelTimestamps(1, point.Telemetry))
		if _, err := pipe.Exec(req.Context()); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"v": v.Val(), "t": ts.Val()})
	})
	return r
}

func benchLogin(b *testing.B, c *http.Client, url string) string {
	resp, err := c.Post(url+"/auth/login", "application/json", strings.NewReader(`{"user":"admin","password":"`+adminPassword+`"}`))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var tk tokens
	if err := json.NewDecoder(resp.Body).Decode(&tk); err != nil || tk.Access == "" {
		b.Fatalf("login: %v", err)
	}
	return tk.Access
}

// runClients sends b.N GETs from benchClients goroutines and returns the P95.
func runClients(b *testing.B, c *http.Client, url, token string) time.Duration {
	n := max(b.N, benchClients*5)
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var failed sync.Once
	for range benchClients {
		wg.Go(func() {
			for i := range next {
				req, _ := http.NewRequest("GET", url, nil)
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				start := time.Now()
				resp, err := c.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = &statusErr{resp.StatusCode}
					}
				}
				lat[i] = time.Since(start)
				if err != nil {
					failed.Do(func() { b.Errorf("GET %s: %v", url, err) })
				}
			}
		})
	}
	wg.Wait()
	slices.Sort(lat)
	return lat[len(lat)*95/100]
}

type statusErr struct{ code int }

func (e *statusErr) Error() string { return http.StatusText(e.code) }
