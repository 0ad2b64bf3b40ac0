package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/shared/uplink"
)

// seen is what the stand-in gateway received.
type seen struct {
	method, path, query, auth, ctype, reqID string
	body                                    string
}

// startAPIProxy runs the bridge's API proxy against gateway until the test ends
// and waits until it answers.
func startAPIProxy(t *testing.T, e *env, gateway string) {
	t.Helper()
	cfg := testConfig()
	ch, inst := uint32(1), uint32(7)
	cfg.Downlink.Allow = []Allow{{Channel: &ch, Type: "A", Points: []uint32{1}}, {Instance: &inst, Actions: []string{"export_limit"}}}
	b, err := New(Options{Site: e.site.Config, Config: cfg, Redis: e.rdb, NATS: e.nc, Log: testLogger(), GatewayURL: gateway})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.RunAPIProxy(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("api proxy did not stop within 10 s")
		}
	})
	testharness.Eventually(t, 10*time.Second, func() error {
		_, err := e.nc.Request(subjects.DownAPI(siteID), nil, time.Second)
		return err
	})
}

func apiRequest(t *testing.T, e *env, method, path, query, auth, body string) *nats.Msg {
	t.Helper()
	m := &nats.Msg{Subject: subjects.DownAPI(siteID), Data: []byte(body), Header: nats.Header{}}
	m.Header.Set(uplink.APIHeaderMethod, method)
	m.Header.Set(uplink.APIHeaderPath, path)
	if query != "" {
		m.Header.Set(uplink.APIHeaderQuery, query)
	}
	if auth != "" {
		m.Header.Set("Authorization", auth)
	}
	m.Header.Set("Content-Type", "application/json")
	m.Header.Set("X-Request-Id", "req-1")
	r, err := e.nc.RequestMsg(m, 15*time.Second)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func status(t *testing.T, r *nats.Msg) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(r.Header.Get(uplink.APIHeaderStatus), &n); err != nil {
		t.Fatalf("reply without a status: %v %s", r.Header, r.Data)
	}
	return n
}

// TestAPIProxyCallsTheGateway: a request on ems.{site}.down.api reaches the
// gateway as HTTP with its method, path, query, body and bearer token, and the
// gateway's status, headers and body come back; what the proxy must not carry is
// refused before the gateway sees it.
func TestAPIProxyCallsTheGateway(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var got []seen
	big := strings.Repeat("x", 2<<20)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), r.Header.Get("X-Request-Id"), string(b)})
		mu.Unlock()
		switch r.URL.Path {
		case "/big":
			_, _ = io.WriteString(w, big)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Location", "/commands/7")
			w.Header().Set("Set-Cookie", "not=forwarded")
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, `{"id":"7"}`)
		}
	}))
	t.Cleanup(gw.Close)
	startAPIProxy(t, e, gw.URL)
	mu.Lock()
	got = nil // the readiness probes
	mu.Unlock()
	check := func(method, path string, r *nats.Msg, want int) {
		t.Helper()
		var p struct{ Status int }
		_ = json.Unmarshal(r.Data, &p)
		if status(t, r) != want || p.Status != want || r.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %q: %v %s, want %d problem+json", method, path, r.Header, r.Data, want)
		}
	}

	r := apiRequest(t, e, "POST", "/commands", "a=1&b=x%20y", "Bearer tok", `{"channel":1,"type":"A","point":1,"value":5}`)
	if status(t, r) != 202 || string(r.Data) != `{"id":"7"}` || r.Header.Get("Content-Type") != "application/json" ||
		r.Header.Get("Location") != "/commands/7" || r.Header.Get("Set-Cookie") != "" {
		t.Errorf("reply %v %s", r.Header, r.Data)
	}
	mu.Lock()
	want := seen{"POST", "/commands", "a=1&b=x%20y", "Bearer tok", "application/json", "req-1", `{"channel":1,"type":"A","point":1,"value":5}`}
	if len(got) != 1 || got[0] != want {
		t.Errorf("gateway saw %+v, want %+v", got, want)
	}
	mu.Unlock()
	// Commands on the allow-list pass, by instance id or name.
	if err := e.rdb.HSet(t.Context(), keyspace.InstanceNames, "station", "7").Err(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/instances/7/actions/export_limit", "/instances/station/actions/export_limit"} {
		if r := apiRequest(t, e, "POST", p, "", "Bearer t", `{"value":1}`); status(t, r) != 202 {
			t.Errorf("allowed action %s: %v %s", p, r.Header, r.Data)
		}
	}
	mu.Lock()
	got = nil
	mu.Unlock()

	for _, c := range []struct {
		method, path, auth string
		want               int
	}{
		{"GET", "/metrics", "Bearer t", 403},
		{"GET", "/%6detrics", "Bearer t", 403},
		{"POST", "/auth/login", "Bearer t", 403},
		{"POST", "/auth/refresh", "Bearer t", 403},
		{"GET", "/ws", "Bearer t", 403},
		{"GET", "/debug/pprof/", "Bearer t", 403},
		{"GET", "//evil.example/x", "Bearer t", 400},
		{"GET", "/points/../metrics", "Bearer t", 400},
		{"GET", "/points/%2e%2e/metrics", "Bearer t", 400},
		{"GET", "points", "Bearer t", 400},
		{"GET", "/a b", "Bearer t", 400},
		{"GET", "/points", "", 401},
		{"TRACE", "/points", "Bearer t", 405},
		{"", "", "", 405},
	} {
		r := apiRequest(t, e, c.method, c.path, "", c.auth, "")
		check(c.method, c.path, r, c.want)
	}
	// Commands off the downlink allow-list are refused as on ems.{site}.down.cmd.
	for _, c := range []struct{ path, body string }{
		{"/commands", `{"channel":1,"type":"A","point":2,"value":5}`},
		{"/commands", `{"channel":1,"type":"C","point":1,"value":1}`},
		{"/commands", `{"channel":1,"type":"A","point":1,"point":2}`}, // the last key wins, as in the gateway
		{"/commands", `{"Channel":2,"type":"A","point":1}`},           // field names match in any case, as in the gateway
		{"/instances/7/actions/island_mode", `{}`},
		{"/instances/nobody/actions/export_limit", `{}`},
		{"/instances/8/actions/export_limit", `{}`},
		{"/instances/7/actions/%65xport_limit%2F", `{}`},
	} {
		check("POST", c.path, apiRequest(t, e, "POST", c.path, "", "Bearer t", c.body), 403)
	}
	check("POST", "/commands", apiRequest(t, e, "POST", "/commands", "", "Bearer t", "not json"), 400)
	if entries := auditEntries(t, e.rdb); len(entries) == 0 || entries[len(entries)-1]["action"] != "command_rejected" {
		t.Errorf("refused commands not in audit:log: %v", entries)
	}
	mu.Lock()
	if len(got) != 0 {
		t.Errorf("the gateway saw refused requests: %+v", got)
	}
	mu.Unlock()

	// An answer larger than one NATS message is refused, not cut.
	if r := apiRequest(t, e, "GET", "/big", "", "Bearer t", ""); status(t, r) != 502 || !strings.Contains(string(r.Data), "larger than") {
		t.Errorf("big answer: %v %.200s", r.Header, r.Data)
	}
}

// TestAPIProxyGatewayDown: without a gateway the reply is a 502 problem.
func TestAPIProxyGatewayDown(t *testing.T) {
	e := newEnv(t)
	startAPIProxy(t, e, "http://127.0.0.1:1")
	if r := apiRequest(t, e, "GET", "/points", "", "Bearer t", ""); status(t, r) != 502 {
		t.Errorf("gateway down: %v %s", r.Header, r.Data)
	}
}

func TestLoopbackAddr(t *testing.T) {
	for in, want := range map[string]string{"0.0.0.0:6005": "127.0.0.1:6005", ":6005": "127.0.0.1:6005", "[::]:6005": "127.0.0.1:6005",
		"10.0.0.5:6005": "10.0.0.5:6005", "127.0.0.1:1": "127.0.0.1:1"} {
		if got := loopbackAddr(in); got != want {
			t.Errorf("loopbackAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
