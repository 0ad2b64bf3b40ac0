package hub_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/voltageems/voltage/cloud/hub"
	"github.com/voltageems/voltage/shared/auth"
	"github.com/voltageems/voltage/shared/testharness"
)

// TestSiteRegisteredByFirstHeartbeat: a site that is not in cloud.yaml is
// registered by its first heartbeat, and what it stored before is sourced too.
func TestSiteRegisteredByFirstHeartbeat(t *testing.T) {
	cfg := freeConfig(t)
	h := startHub(t, cfg)
	e := startEdge(t, "new-site", edgeLeaf{url: h.LeafURL})
	sent := []string{e.change(1, 1, `"1":1`), e.change(1, 2, `"1":2`)}
	testharness.Eventually(t, 15*time.Second, func() error {
		e.heartbeat()
		for _, s := range h.status(t).Sites {
			if s.ID == "new-site" && !s.Configured && s.Online && s.Name == "Site new-site" {
				return nil
			}
		}
		return fmt.Errorf("site not registered: %+v", h.status(t).Sites)
	})
	testharness.Eventually(t, 30*time.Second, func() error {
		if n, err := hubStreamCount(h.ClientURL, "new-site"); err != nil || n < 2 {
			return fmt.Errorf("hub stream holds %d messages (%v), want 2", n, err)
		}
		ids := hubStreamIDs(t, h.ClientURL, "new-site")
		if len(ids) != 2 {
			return fmt.Errorf("hub stream holds %d messages, want 2", len(ids))
		}
		return sameIDs(ids, sent)
	})

	// A hub restart keeps the site and when it was first seen.
	var before hub.SiteSummary
	for _, s := range h.status(t).Sites {
		if s.ID == "new-site" {
			before = s
		}
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	e.stop() // no heartbeats any more
	h2 := startHub(t, cfg)
	st := h2.status(t)
	if len(st.Sites) != 1 || st.Sites[0].ID != "new-site" || st.Sites[0].FirstSeen == nil || before.FirstSeen == nil ||
		*st.Sites[0].FirstSeen != *before.FirstSeen || st.Sites[0].Name != "Site new-site" {
		t.Errorf("after restart sites = %+v, want new-site as before: %+v", st.Sites, before)
	}
}

// TestSiteNotRegisteredWhenAutoRegisterIsOff: only configured sites count.
func TestSiteNotRegisteredWhenAutoRegisterIsOff(t *testing.T) {
	cfg := freeConfig(t)
	off := false
	cfg.Registry.AutoRegister = &off
	cfg.Sites = []hub.Site{{ID: "known"}}
	h := startHub(t, cfg)
	stranger := startEdge(t, "stranger", edgeLeaf{url: h.LeafURL})
	known := startEdge(t, "known", edgeLeaf{url: h.LeafURL})
	// Once the known site's heartbeat registered as seen, the stranger's (sent
	// first, over the same hub) was handled too.
	testharness.Eventually(t, 15*time.Second, func() error {
		stranger.heartbeat()
		known.heartbeat()
		for _, s := range h.status(t).Sites {
			if s.ID == "known" && s.Online {
				return nil
			}
		}
		return fmt.Errorf("known site not online")
	})
	for _, s := range h.status(t).Sites {
		if s.ID == "stranger" {
			t.Errorf("an unconfigured site was registered: %+v", s)
		}
	}
}

// TestSiteGoesOffline: a site is online for three heartbeat intervals after its
// last heartbeat, then offline.
func TestSiteGoesOffline(t *testing.T) {
	cfg := freeConfig(t)
	cfg.Registry.HeartbeatInterval = hub.D(200 * time.Millisecond)
	cfg.Sites = []hub.Site{{ID: "s"}}
	h := startHub(t, cfg)
	e := startEdge(t, "s", edgeLeaf{url: h.LeafURL})
	online := func() bool {
		for _, s := range h.status(t).Sites {
			if s.ID == "s" {
				return s.Online
			}
		}
		return false
	}
	testharness.WaitFor(t, 15*time.Second, "the site online", func() bool { e.heartbeat(); return online() })
	start := time.Now()
	testharness.WaitFor(t, 15*time.Second, "the site offline", func() bool { return !online() })
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("offline only after %v", d)
	}
}

// TestExternalNATS: with nats.url the hub runs on an external NATS server (here
// one with a leaf-node port) instead of its embedded one.
func TestExternalNATS(t *testing.T) {
	leafPort := testharness.FreePort(t)
	ext := testharness.StartNATS(t, func(o *server.Options) {
		o.ServerName = "external"
		o.LeafNode = server.LeafNodeOpts{Host: "127.0.0.1", Port: leafPort}
	})
	cfg := freeConfig(t)
	cfg.NATS = hub.NATS{URL: ext.URL()}
	cfg.History.Dir = t.TempDir()
	cfg.Streams.MaxBytes = 32 << 20 // the test server has 256 MiB of JetStream storage
	cfg.Sites = []hub.Site{{ID: "x"}}
	h := startHub(t, cfg)
	if h.LeafURL != "" {
		t.Errorf("leaf URL %q with an external server", h.LeafURL)
	}
	e := startEdge(t, "x", edgeLeaf{url: "nats-leaf://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(leafPort))})
	sent := []string{e.change(1, 1, `"1":1`), e.change(1, 2, `"1":2`), e.change(1, 3, `"1":3`)}
	waitCount(t, ext.URL(), "x", 3, 30*time.Second)
	if err := sameIDs(hubStreamIDs(t, ext.URL(), "x"), sent); err != nil {
		t.Fatal(err)
	}
	if code, body := h.get(t, "/readyz"); code != 200 {
		t.Errorf("/readyz = %d %s", code, body)
	}
}

// TestExternalNATSAwayAtStart: the hub starts while its external NATS server is
// not there yet: /healthz answers, /readyz and the API say 503, and once the
// server appears the hub finishes starting without a restart.
func TestExternalNATSAwayAtStart(t *testing.T) {
	t.Setenv(auth.EnvAdminPassword, adminPassword)
	natsPort, httpPort := testharness.FreePort(t), testharness.FreePort(t)
	cfg := freeConfig(t)
	cfg.NATS = hub.NATS{URL: fmt.Sprintf("nats://127.0.0.1:%d", natsPort)}
	cfg.History.Dir = t.TempDir()
	cfg.Streams.MaxBytes = 32 << 20
	cfg.HTTP.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort))
	started := make(chan hub.Endpoints, 1)
	cfg.Started = func(e hub.Endpoints) { started <- e }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hub.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("hub did not stop")
		}
	})
	base := "http://" + cfg.HTTP.Addr
	status := func(path string) int {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	testharness.WaitFor(t, 15*time.Second, "/healthz while NATS is away", func() bool { return status("/healthz") == 200 })
	if code := status("/readyz"); code != 503 {
		t.Errorf("/readyz = %d while NATS is away, want 503", code)
	}
	if code := status("/sites"); code != 503 {
		t.Errorf("/sites = %d while NATS is away, want 503", code)
	}
	testharness.StartNATS(t, func(o *server.Options) { o.Port = natsPort })
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("hub stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("hub did not finish starting after NATS appeared")
	}
	c := &client{t: t, base: base}
	c.login("admin", adminPassword).must(200, "GET", "/sites", nil, nil)
	testharness.WaitFor(t, 10*time.Second, "/readyz", func() bool { return status("/readyz") == 200 })
}
