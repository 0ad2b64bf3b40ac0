package hub_test

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/voltageems/voltage/cloud/hub"
	"github.com/voltageems/voltage/shared/testharness"
)

// waitCount waits until a site's hub stream holds n messages (and not more).
func waitCount(t *testing.T, clientURL, site string, n uint64, timeout time.Duration) {
	t.Helper()
	testharness.Eventually(t, timeout, func() error {
		got, err := hubStreamCount(clientURL, site)
		if err != nil {
			return err
		}
		if got > n {
			t.Fatalf("hub stream of %s has %d messages, more than the %d sent", site, got, n)
		}
		if got != n {
			return fmt.Errorf("hub stream of %s has %d of %d messages", site, got, n)
		}
		return nil
	})
}

// assertCut checks that the link is really down: the edge has no leaf link and
// the hub stream still holds only what it had before the cut.
func assertCut(t *testing.T, clientURL string, e *edge, before uint64) {
	t.Helper()
	if e.leafConnected() {
		t.Fatal("the edge's leaf link is up during the cut")
	}
	if n, err := hubStreamCount(clientURL, e.site); err != nil || n != before {
		t.Fatalf("during the cut the hub stream holds %d messages (%v), want %d", n, err, before)
	}
}

func leafHost(t testing.TB, leafURL string) string {
	t.Helper()
	u, err := url.Parse(leafURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// TestSourcingExactlyOnceAcrossLinkCut: the edge keeps producing while its link is
// cut; after the link returns, every message is in the hub stream exactly once.
func TestSourcingExactlyOnceAcrossLinkCut(t *testing.T) {
	cfg := freeConfig(t)
	cfg.Sites = []hub.Site{{ID: "site-a"}}
	h := startHub(t, cfg)
	p := startProxy(t, leafHost(t, h.LeafURL))
	e := startEdge(t, "site-a", edgeLeaf{url: p.url("nats-leaf")})

	var sent []string
	for i := range 100 {
		sent = append(sent, e.change(1, i, fmt.Sprintf(`"1":%d`, i)))
	}
	waitCount(t, h.ClientURL, "site-a", 100, 20*time.Second)

	p.cut()
	testharness.WaitFor(t, 10*time.Second, "the edge to see its link down", func() bool { return !e.leafConnected() })
	for i := 100; i < 1100; i++ {
		sent = append(sent, e.change(1, i, fmt.Sprintf(`"1":%d`, i)))
	}
	// A re-publication after an edge crash (same message id) is stored once.
	e.change(1, 1099, `"1":1099`)
	assertCut(t, h.ClientURL, e, 100)
	p.restore()
	waitCount(t, h.ClientURL, "site-a", uint64(len(sent)), 30*time.Second)
	if err := sameIDs(hubStreamIDs(t, h.ClientURL, "site-a"), sent); err != nil {
		t.Fatal(err)
	}
}

// TestSourcingSurvivesEdgeRestartDuringOutage: the edge restarts (same store)
// while the link is down and produces before and after; nothing is lost or doubled.
func TestSourcingSurvivesEdgeRestartDuringOutage(t *testing.T) {
	cfg := freeConfig(t)
	cfg.Sites = []hub.Site{{ID: "site-a"}}
	h := startHub(t, cfg)
	p := startProxy(t, leafHost(t, h.LeafURL))
	e := startEdge(t, "site-a", edgeLeaf{url: p.url("nats-leaf")})

	var sent []string
	for i := range 50 {
		sent = append(sent, e.change(1, i, `"1":1`))
	}
	waitCount(t, h.ClientURL, "site-a", 50, 20*time.Second)
	p.cut()
	for i := 50; i < 300; i++ {
		sent = append(sent, e.change(2, i, `"7":2`))
	}
	e.restart()
	for i := 300; i < 600; i++ {
		sent = append(sent, e.change(3, i, `"9":3`))
	}
	assertCut(t, h.ClientURL, e, 50)
	p.restore()
	waitCount(t, h.ClientURL, "site-a", uint64(len(sent)), 30*time.Second)
	if err := sameIDs(hubStreamIDs(t, h.ClientURL, "site-a"), sent); err != nil {
		t.Fatal(err)
	}
}

// TestSourcingSurvivesHubRestart: the hub stops (file storage), the edge keeps
// producing, the hub starts again on the same store; the stream resumes where it
// stopped and the fleet state is rebuilt from it.
func TestSourcingSurvivesHubRestart(t *testing.T) {
	cfg := freeConfig(t)
	cfg.Sites = []hub.Site{{ID: "site-a"}}
	h := startHub(t, cfg)
	p := startProxy(t, leafHost(t, h.LeafURL))
	e := startEdge(t, "site-a", edgeLeaf{url: p.url("nats-leaf")})

	var sent []string
	for i := range 200 {
		sent = append(sent, e.change(1, i, fmt.Sprintf(`"1":%d`, i)))
	}
	waitCount(t, h.ClientURL, "site-a", 200, 20*time.Second)
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	for i := 200; i < 700; i++ {
		sent = append(sent, e.change(1, i, fmt.Sprintf(`"1":%d`, i)))
	}
	h2 := startHub(t, cfg) // same store dir; new free ports
	p.setTarget(leafHost(t, h2.LeafURL))
	waitCount(t, h2.ClientURL, "site-a", uint64(len(sent)), 30*time.Second)
	if err := sameIDs(hubStreamIDs(t, h2.ClientURL, "site-a"), sent); err != nil {
		t.Fatal(err)
	}
	// The fleet state was rebuilt from the stream: the last value of point 1.
	testharness.Eventually(t, 10*time.Second, func() error {
		for _, s := range h2.status(t).Sites {
			if s.ID == "site-a" && s.Points == 1 && s.Messages == uint64(len(sent)) {
				return nil
			}
		}
		return fmt.Errorf("fleet state not rebuilt: %+v", h2.status(t).Sites)
	})
}

// TestSourcingRecoversPromptlyAfterLongCut: a cut longer than nats-server's 30 s
// source-consumer timeout puts the source into its retry backoff (up to 2 min);
// the hub's source supervision still resumes sourcing within seconds of the link
// returning.
func TestSourcingRecoversPromptlyAfterLongCut(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: this test cuts the link for 40 s")
	}
	cfg := freeConfig(t)
	cfg.Sites = []hub.Site{{ID: "site-a"}}
	h := startHub(t, cfg)
	p := startProxy(t, leafHost(t, h.LeafURL))
	e := startEdge(t, "site-a", edgeLeaf{url: p.url("nats-leaf")})
	sent := []string{e.change(1, 0, `"1":0`)}
	waitCount(t, h.ClientURL, "site-a", 1, 20*time.Second)

	p.cut()
	cutAt := time.Now()
	for i := 1; i <= 100; i++ {
		sent = append(sent, e.change(1, i, fmt.Sprintf(`"1":%d`, i)))
	}
	// Let the hub's source fail across the 30 s consumer timeout at least once.
	testharness.WaitFor(t, 60*time.Second, "40 s of cut link", func() bool { return time.Since(cutAt) > 40*time.Second })
	assertCut(t, h.ClientURL, e, 1)
	p.restore()
	restored := time.Now()
	waitCount(t, h.ClientURL, "site-a", uint64(len(sent)), 20*time.Second)
	t.Logf("all %d messages in the hub %v after the link returned", len(sent), time.Since(restored).Round(time.Millisecond))
	if err := sameIDs(hubStreamIDs(t, h.ClientURL, "site-a"), sent); err != nil {
		t.Fatal(err)
	}
}
