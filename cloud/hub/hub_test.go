package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/voltageems/voltage/cloud/hub"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/testharness"
)

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// runningHub is a hub started by one test.
type runningHub struct {
	hub.Endpoints
	stop func() error // cancels Run and returns its result
}

// freeConfig is a hub on free loopback ports with its store in a temporary folder.
func freeConfig(t testing.TB) hub.Config {
	return hub.Config{
		NATS:     hub.NATS{ClientAddr: "127.0.0.1:0", LeafAddr: "127.0.0.1:0", StoreDir: t.TempDir()},
		HTTP:     hub.HTTP{Addr: "127.0.0.1:0"},
		Log:      testLogger(),
		AdminOut: io.Discard,
	}
}

func startHub(t testing.TB, cfg hub.Config) *runningHub {
	t.Helper()
	started := make(chan hub.Endpoints, 1)
	cfg.Started = func(e hub.Endpoints) { started <- e }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hub.Run(ctx, cfg) }()
	h := &runningHub{}
	stopped := false
	h.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			return fmt.Errorf("hub did not stop within 5 s")
		}
	}
	t.Cleanup(func() {
		if err := h.stop(); err != nil {
			t.Errorf("stop hub: %v", err)
		}
	})
	select {
	case h.Endpoints = <-started:
	case err := <-done:
		stopped = true
		t.Fatalf("hub stopped at start: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("hub did not start within 15 s")
	}
	return h
}

func (h *runningHub) get(t testing.TB, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get("http://" + h.HTTP.String() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp.StatusCode, body
}

func (h *runningHub) status(t testing.TB) hub.Status {
	t.Helper()
	code, body := h.get(t, "/status")
	var st hub.Status
	if code != http.StatusOK {
		t.Fatalf("GET /status = %d %s", code, body)
	}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("decode /status %s: %v", body, err)
	}
	return st
}

// TestHubServesClientsAndJetStream starts the hub on free ports and uses it the way
// cloud services will: a client with JetStream, and the HTTP endpoints.
func TestHubServesClientsAndJetStream(t *testing.T) {
	cfg := freeConfig(t)
	cfg.Sites = []hub.Site{{ID: "demo-site", Name: "Demo"}}
	h := startHub(t, cfg)

	if u, err := url.Parse(h.LeafURL); err != nil || u.Port() == "0" || u.Port() == "" {
		t.Errorf("leaf URL %q does not name the bound port", h.LeafURL)
	}
	nc, err := nats.Connect(h.ClientURL)
	if err != nil {
		t.Fatalf("connect to the hub at %s: %v", h.ClientURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := js.AccountInfo(ctx)
	if err != nil {
		t.Fatalf("JetStream account info: %v", err)
	}
	if info.Domain != "" {
		t.Errorf("hub JetStream domain = %q, want none", info.Domain)
	}
	// A stream really stores: the hub's store directory works.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PROBE", Subjects: []string{"probe.>"}}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	if _, err := js.Publish(ctx, "probe.1", []byte("x")); err != nil {
		t.Fatalf("publish to stream: %v", err)
	}

	if code, body := h.get(t, "/readyz"); code != http.StatusOK {
		t.Errorf("GET /readyz = %d %s, want 200", code, body)
	}
	if code, _ := h.get(t, "/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz = %d, want 200", code)
	}
	if code, body := h.get(t, "/metrics"); code != http.StatusOK || !strings.Contains(string(body), "voltage_cloud_leaf_nodes 0") {
		t.Errorf("GET /metrics = %d, want 200 with voltage_cloud_leaf_nodes 0", code)
	}
	st := h.status(t)
	if !st.NATS.JetStream || st.NATS.ClientURL != h.ClientURL || st.NATS.LeafURL != h.LeafURL || len(st.NATS.Leafs) != 0 {
		t.Errorf("status nats = %+v", st.NATS)
	}
	if len(st.Sites) != 1 || st.Sites[0].ID != "demo-site" || st.Sites[0].Name != "Demo" || !st.Sites[0].Configured || st.Sites[0].Online {
		t.Errorf("GET /status sites = %+v, want the configured site, offline", st.Sites)
	}
}

// TestHubAcceptsLeafNodes joins an edge-like server (its own JetStream domain) to
// the hub over the leaf port and checks that a site's messages reach the hub.
func TestHubAcceptsLeafNodes(t *testing.T) {
	h := startHub(t, freeConfig(t))
	leafURL, err := url.Parse(h.LeafURL)
	if err != nil {
		t.Fatal(err)
	}
	edge := testharness.StartNATS(t, func(o *server.Options) {
		o.ServerName = "edge-site-a"
		o.JetStreamDomain = "site-a"
		o.LeafNode.Remotes = []*server.RemoteLeafOpts{{URLs: []*url.URL{leafURL}}}
	})

	testharness.Eventually(t, 10*time.Second, func() error {
		if l := h.status(t).NATS.Leafs; len(l) != 1 || l[0].Name != "edge-site-a" {
			return fmt.Errorf("hub leaf nodes = %+v, want edge-site-a", l)
		}
		return nil
	})
	hubConn, err := nats.Connect(h.ClientURL)
	if err != nil {
		t.Fatal(err)
	}
	defer hubConn.Close()
	sub, err := hubConn.SubscribeSync(subjects.SiteAll("site-a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := hubConn.Flush(); err != nil {
		t.Fatal(err)
	}
	edgeConn := edge.Conn(t)
	// The hub's interest reaches the edge asynchronously: publish until it arrives.
	testharness.Eventually(t, 10*time.Second, func() error {
		if err := edgeConn.Publish(subjects.StatusUp("site-a"), []byte(`{}`)); err != nil {
			return err
		}
		msg, err := sub.NextMsg(50 * time.Millisecond)
		if err != nil {
			return fmt.Errorf("no message from the edge at the hub: %w", err)
		}
		if msg.Subject != subjects.StatusUp("site-a") {
			return fmt.Errorf("got subject %q", msg.Subject)
		}
		return nil
	})
	if code, body := h.get(t, "/metrics"); !strings.Contains(string(body), "voltage_cloud_leaf_nodes 1") {
		t.Errorf("GET /metrics = %d, want voltage_cloud_leaf_nodes 1", code)
	}
}

// TestHubStopsAndReleasesPorts checks a clean shutdown: Run returns nil within a few
// seconds of the cancel, and every port can be bound again.
func TestHubStopsAndReleasesPorts(t *testing.T) {
	h := startHub(t, freeConfig(t))
	start := time.Now()
	if err := h.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	t.Logf("stopped in %v", time.Since(start))
	leaf, _ := url.Parse(h.LeafURL)
	client, _ := url.Parse(h.ClientURL)
	for _, addr := range []string{client.Host, leaf.Host, h.HTTP.String()} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("%s still bound after stop: %v", addr, err)
			continue
		}
		l.Close()
	}
}

// TestHubPortInUse checks that a taken port is a start error naming the address,
// not a hang or an exit of the process.
func TestHubPortInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, key := range []string{"client", "leaf", "http"} {
		t.Run(key, func(t *testing.T) {
			cfg := freeConfig(t)
			switch key {
			case "client":
				cfg.NATS.ClientAddr = taken.Addr().String()
			case "leaf":
				cfg.NATS.LeafAddr = taken.Addr().String()
			case "http":
				cfg.HTTP.Addr = taken.Addr().String()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			err := hub.Run(ctx, cfg)
			if err == nil || ctx.Err() != nil {
				t.Fatalf("Run = %v (ctx %v), want an error at start", err, ctx.Err())
			}
			_, port, _ := net.SplitHostPort(taken.Addr().String())
			if !strings.Contains(err.Error(), port) || !strings.Contains(err.Error(), "address already in use") {
				t.Errorf("Run = %q, want it to name port %s and say it is in use", err, port)
			}
		})
	}
}

// metric reads one sample line of /metrics ("name{labels}"); -1 when absent.
func metric(t testing.TB, h *runningHub, series string) float64 {
	t.Helper()
	_, body := h.get(t, "/metrics")
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	return -1
}
