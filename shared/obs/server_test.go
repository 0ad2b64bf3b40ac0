package obs

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func newTestServer(t *testing.T) (*Server, *httptest.Server) {
	t.Helper()
	s := NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)))
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts
}

// get fetches path and returns the status, the content type and the body.
func get(t *testing.T, base, path string) (int, string, []byte) {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

func TestHealthz(t *testing.T) {
	_, ts := newTestServer(t)
	status, ctype, body := get(t, ts.URL, "/healthz")
	if status != http.StatusOK {
		t.Fatalf("/healthz status %d, want 200; body %s", status, body)
	}
	if ctype != "application/json" {
		t.Errorf("/healthz Content-Type %q, want application/json", ctype)
	}
	var got map[string]string
	if err := json.Unmarshal(body, &got); err != nil || got["status"] != "ok" {
		t.Errorf("/healthz body %s (%v), want {\"status\":\"ok\"}", body, err)
	}
}

type readyBody struct {
	Status  string            `json:"status"`
	Failing []string          `json:"failing"`
	Errors  map[string]string `json:"errors"`
}

func getReady(t *testing.T, base string) (int, readyBody) {
	t.Helper()
	status, ctype, body := get(t, base, "/readyz")
	if ctype != "application/json" {
		t.Errorf("/readyz Content-Type %q, want application/json", ctype)
	}
	var rb readyBody
	if err := json.Unmarshal(body, &rb); err != nil {
		t.Fatalf("/readyz body %s does not parse: %v", body, err)
	}
	return status, rb
}

func TestReadyzWithoutChecks(t *testing.T) {
	_, ts := newTestServer(t)
	status, rb := getReady(t, ts.URL)
	if status != http.StatusOK || rb.Status != "ready" {
		t.Errorf("/readyz = %d %+v, want 200 ready", status, rb)
	}
}

func TestReadyzPassingChecks(t *testing.T) {
	s, ts := newTestServer(t)
	calls := make(chan string, 2)
	for _, name := range []string{"redis", "nats"} {
		s.AddReadyCheck(name, func(ctx context.Context) error {
			// Checks get a bounded context so a hung dependency cannot hang /readyz.
			if _, ok := ctx.Deadline(); !ok {
				return errors.New("check context has no deadline")
			}
			calls <- name
			return nil
		})
	}
	status, rb := getReady(t, ts.URL)
	if status != http.StatusOK || rb.Status != "ready" {
		t.Errorf("/readyz = %d %+v, want 200 ready", status, rb)
	}
	if len(calls) != 2 {
		t.Errorf("/readyz ran %d checks, want 2", len(calls))
	}
}

func TestReadyzFailingChecks(t *testing.T) {
	s, ts := newTestServer(t)
	s.AddReadyCheck("redis", func(context.Context) error { return errors.New("dial tcp 127.0.0.1:6379: connection refused") })
	s.AddReadyCheck("nats", func(context.Context) error { return nil })
	s.AddReadyCheck("influx", func(context.Context) error { return errors.New("401 unauthorized") })

	status, rb := getReady(t, ts.URL)
	if status != http.StatusServiceUnavailable {
		t.Errorf("/readyz status %d, want 503", status)
	}
	if rb.Status != "not ready" {
		t.Errorf("/readyz status field %q, want \"not ready\"", rb.Status)
	}
	if want := []string{"influx", "redis"}; !reflect.DeepEqual(rb.Failing, want) {
		t.Errorf("/readyz failing = %v, want %v (sorted, passing checks left out)", rb.Failing, want)
	}
	wantErrs := map[string]string{"redis": "dial tcp 127.0.0.1:6379: connection refused", "influx": "401 unauthorized"}
	if !reflect.DeepEqual(rb.Errors, wantErrs) {
		t.Errorf("/readyz errors = %v, want %v", rb.Errors, wantErrs)
	}

	// Re-registering a name replaces the check: once it passes, the server is ready.
	s.AddReadyCheck("redis", func(context.Context) error { return nil })
	s.AddReadyCheck("influx", func(context.Context) error { return nil })
	if status, rb := getReady(t, ts.URL); status != http.StatusOK {
		t.Errorf("/readyz after the checks recovered = %d %+v, want 200", status, rb)
	}
}

func TestMetrics(t *testing.T) {
	s, ts := newTestServer(t)
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "voltage_test_polls_total", Help: "Polls done by the test."})
	s.Registry.MustRegister(c)
	c.Add(3)

	status, ctype, body := get(t, ts.URL, "/metrics")
	if status != http.StatusOK {
		t.Fatalf("/metrics status %d, want 200", status)
	}
	if !strings.HasPrefix(ctype, "text/plain") {
		t.Errorf("/metrics Content-Type %q, want Prometheus text (text/plain)", ctype)
	}
	text := string(body)
	for _, want := range []string{
		"# TYPE go_goroutines gauge",
		"# TYPE process_cpu_seconds_total counter",
		"process_resident_memory_bytes ",
		"# HELP voltage_test_polls_total Polls done by the test.",
		"\nvoltage_test_polls_total 3\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics does not contain %q", want)
		}
	}
}

func TestHandleAddsRoutes(t *testing.T) {
	s, ts := newTestServer(t)
	s.Handle("GET /api/ping", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "pong")
	}))
	if status, _, body := get(t, ts.URL, "/api/ping"); status != http.StatusOK || string(body) != "pong" {
		t.Errorf("GET /api/ping = %d %q, want 200 pong", status, body)
	}
	if status, _, _ := get(t, ts.URL, "/nothing-here"); status != http.StatusNotFound {
		t.Errorf("GET /nothing-here = %d, want 404", status)
	}
	resp, err := http.Post(ts.URL+"/healthz", "text/plain", nil)
	if err != nil {
		t.Fatalf("POST /healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz = %d, want 405", resp.StatusCode)
	}
}

func TestServeBindsAnswersAndStops(t *testing.T) {
	s := NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, "127.0.0.1:0", func(a net.Addr) { addrs <- a }) }()

	var addr net.Addr
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("Serve returned before binding: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not report its bound address within 5 s")
	}
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.Port == 0 || !tcp.IP.IsLoopback() {
		t.Fatalf("bound address %v, want a loopback address with a real port", addr)
	}

	// Keep an idle keep-alive connection open: shutdown must not wait on it.
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + addr.String() + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz on %v: %v", addr, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz on %v = %d, want 200", addr, resp.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after cancel returned %v, want nil", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not return within 3 s of ctx cancel")
	}
	if c, err := net.DialTimeout("tcp", addr.String(), time.Second); err == nil {
		c.Close()
		t.Errorf("%v still accepts connections after Serve returned", addr)
	}
}

func TestServePortInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer busy.Close()
	addr := busy.Addr().String()

	// The timeout only keeps a broken Serve (one that does not fail) from hanging the run.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s := NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)))
	bound := false
	err = s.Serve(ctx, addr, func(net.Addr) { bound = true })
	if err == nil {
		t.Fatalf("Serve on busy %s returned nil", addr)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("Serve error %q does not name the address %s", err, addr)
	}
	if bound {
		t.Error("Serve reported a bound address although listening failed")
	}
}

func TestProfilesOnlyWhenAsked(t *testing.T) {
	s := NewServer(slog.New(slog.DiscardHandler))
	get := func() int {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/pprof/heap", nil))
		return rec.Code
	}
	if code := get(); code != http.StatusNotFound {
		t.Fatalf("profiles served without HandleProfiles: %d", code)
	}
	s.HandleProfiles()
	if code := get(); code != http.StatusOK {
		t.Fatalf("GET /debug/pprof/heap = %d after HandleProfiles", code)
	}
}
