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
// token check, role, Huma, the realtime mirror — next to two baselines in the
// same run: a bare chi handler that reads the same hashes from Redis and encodes
// them (what the issue names), and a bare handler writing a constant body of the
// same size (the floor of HTTP on this machine). Reported: the P95 of each and
// the ratios (DESIGN §10: P95 < 10 ms).
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
	waitMirrorSynced(b, client, gwURL)
	pageURL := gwURL + "/points?pattern=1:T:*&limit=1000"
	floor := constantHandler(b, client, pageURL, token)
	fl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	floorSrv := &http.Server{Handler: floor}
	go func() { _ = floorSrv.Serve(fl) }()
	defer floorSrv.Close()

	b.ResetTimer()
	gw := runClients(b, client, pageURL, token)
	base := runClients(b, client, "http://"+ln.Addr().String()+"/points", "")
	flat := runClients(b, client, "http://"+fl.Addr().String()+"/", "")
	b.StopTimer()
	b.ReportMetric(ms(gw), "gateway_p95_ms")
	b.ReportMetric(ms(base), "bare_redis_p95_ms")
	b.ReportMetric(ms(flat), "bare_constant_p95_ms")
	b.ReportMetric(float64(gw)/float64(base), "gw/bare_redis")
	b.ReportMetric(float64(gw)/float64(flat), "gw/bare_constant")
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

// waitMirrorSynced waits until the gateway serves realtime reads from its mirror
// (its /metrics answers loopback clients).
func waitMirrorSynced(b *testing.B, c *http.Client, url string) {
	testharness.WaitFor(b, 10*time.Second, "realtime mirror synced", func() bool {
		resp, err := c.Get(url + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), "\napigateway_realtime_mirror_synced 1\n")
	})
}

// constantHandler answers every request with the body the gateway gives for
// url: the same bytes, with nothing computed.
func constantHandler(b *testing.B, c *http.Client, url, token string) http.Handler {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || !strings.Contains(string(body), `"point":1000,`) {
		b.Fatalf("GET %s: %d %v %.200s", url, resp.StatusCode, err, body)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
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
