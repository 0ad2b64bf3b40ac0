package hub_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/voltageems/voltage/cloud/hub"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/testharness"
)

// securedHub is a hub with TLS (client certificates required) and per-site
// credentials for sites a and b.
type securedHub struct {
	*runningHub
	pki       *pki
	passwords map[string]string
}

func startSecuredHub(t *testing.T) *securedHub {
	t.Helper()
	p := newPKI(t, "voltage test CA")
	cert, key, _ := p.issue(t, "hub", true)
	cfg := freeConfig(t)
	cfg.NATS.LeafTLS = hub.TLS{Cert: cert, Key: key, CA: p.CAFile}
	pw := map[string]string{"a": "password-of-site-a", "b": "password-of-site-b"}
	cfg.Sites = []hub.Site{{ID: "a", LeafPassword: bcryptOf(t, pw["a"])}, {ID: "b", LeafPassword: bcryptOf(t, pw["b"])}}
	return &securedHub{runningHub: startHub(t, cfg), pki: p, passwords: pw}
}

// leaf is how site connects to the secured hub with its own certificate.
func (s *securedHub) leaf(t *testing.T, site string) edgeLeaf {
	_, _, pair := s.pki.issue(t, "edge-"+site, false)
	return edgeLeaf{
		url: strings.Replace(s.LeafURL, "tls://", "nats-leaf://", 1), user: site, password: s.passwords[site],
		tls: &tls.Config{RootCAs: s.pki.pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
	}
}

func (s *securedHub) waitLeafs(t *testing.T, n int) {
	t.Helper()
	testharness.Eventually(t, 15*time.Second, func() error {
		if l := s.status(t).NATS.Leafs; len(l) != n {
			return fmt.Errorf("hub has %d leaf nodes, want %d", len(l), n)
		}
		return nil
	})
}

// TestLeafIsolation: with TLS and per-site credentials each site's uplink is
// sourced, and site a's credentials can neither publish on nor subscribe to site
// b's subjects, nor reach site b's JetStream.
func TestLeafIsolation(t *testing.T) {
	s := startSecuredHub(t)
	if !strings.HasPrefix(s.LeafURL, "tls://") {
		t.Errorf("leaf URL %q, want tls://", s.LeafURL)
	}
	a := startEdge(t, "a", s.leaf(t, "a"))
	b := startEdge(t, "b", s.leaf(t, "b"))
	s.waitLeafs(t, 2)

	// Sourcing works within the permissions.
	wantA := []string{a.change(1, 1, `"1":1`), a.change(1, 2, `"1":2`)}
	wantB := []string{b.change(1, 1, `"1":5`)}
	waitCount(t, s.ClientURL, "a", 2, 30*time.Second)
	waitCount(t, s.ClientURL, "b", 1, 30*time.Second)
	if err := sameIDs(hubStreamIDs(t, s.ClientURL, "a"), wantA); err != nil {
		t.Error(err)
	}
	if err := sameIDs(hubStreamIDs(t, s.ClientURL, "b"), wantB); err != nil {
		t.Error(err)
	}

	hubConn, err := nats.Connect(s.ClientURL)
	if err != nil {
		t.Fatal(err)
	}
	defer hubConn.Close()

	// Publishing: a's edge publishes on b's subjects, then a marker on its own. The
	// leaf link keeps order, so once the marker is at the hub the forbidden
	// messages would have been too.
	all, err := hubConn.SubscribeSync(subjects.Root + ".>")
	if err != nil {
		t.Fatal(err)
	}
	if err := hubConn.Flush(); err != nil {
		t.Fatal(err)
	}
	marker := subjects.StatusUp("a")
	auditSub, err := hubConn.SubscribeSync(subjects.CloudAudit)
	if err != nil {
		t.Fatal(err)
	}
	forbidden := []string{"ems.b.up.x", subjects.StatusUp("b"), subjects.DownCommand("b"), subjects.CommandReply("b", "x"), subjects.CloudAudit}
	testharness.Eventually(t, 10*time.Second, func() error {
		for _, f := range forbidden {
			if err := a.nc.Publish(f, []byte(`{"site":"b"}`)); err != nil {
				return err
			}
		}
		if err := a.nc.Publish(marker, []byte(`{"site":"a"}`)); err != nil {
			return err
		}
		if err := a.nc.Flush(); err != nil {
			return err
		}
		for {
			m, err := all.NextMsg(200 * time.Millisecond)
			if err != nil {
				return fmt.Errorf("marker not at the hub yet: %w", err)
			}
			if strings.HasPrefix(m.Subject, "ems.b.") && strings.Contains(string(m.Data), `"site":"b"`) {
				t.Fatalf("site a's leaf published %s at the hub", m.Subject)
			}
			if m.Subject == marker {
				return nil
			}
		}
	})
	if m, err := auditSub.NextMsg(10 * time.Millisecond); err == nil {
		t.Errorf("site a's leaf wrote the hub's audit trail: %s", m.Data)
	}
	if n, err := hubStreamCount(s.ClientURL, "b"); err != nil || n != 1 {
		t.Errorf("site b's hub stream has %d messages (%v), want only its own 1", n, err)
	}

	// Subscribing: a's edge subscribes to b's command subject (and to everything);
	// the hub sends b's command, then a's own. a must get only its own.
	aB, _ := a.nc.SubscribeSync(subjects.DownCommand("b"))
	aAll, _ := a.nc.SubscribeSync(subjects.Root + ".>")
	aOwn, _ := a.nc.SubscribeSync(subjects.DownCommand("a"))
	bOwn, _ := b.nc.SubscribeSync(subjects.DownCommand("b"))
	for _, c := range []*nats.Conn{a.nc, b.nc} {
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	testharness.Eventually(t, 10*time.Second, func() error {
		_ = hubConn.Publish(subjects.DownCommand("b"), []byte("for b"))
		_ = hubConn.Publish(subjects.DownCommand("a"), []byte("for a"))
		if _, err := aOwn.NextMsg(200 * time.Millisecond); err != nil {
			return fmt.Errorf("a's own command not at a yet: %w", err)
		}
		if _, err := bOwn.NextMsg(200 * time.Millisecond); err != nil {
			return fmt.Errorf("b's command not at b yet: %w", err)
		}
		return nil
	})
	if m, err := aB.NextMsg(10 * time.Millisecond); err == nil {
		t.Errorf("site a received site b's command on %s", m.Subject)
	}
	for {
		m, err := aAll.NextMsg(10 * time.Millisecond)
		if err != nil {
			break
		}
		if strings.HasPrefix(m.Subject, "ems.b.") {
			t.Errorf("site a's ems.> subscription received %s", m.Subject)
		}
	}

	// JetStream: b's domain answers the hub, never a.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The hub's replies come back on the site's own reply subjects.
	reply := subjects.CommandReply("b", "test")
	rs, _ := hubConn.SubscribeSync(reply)
	if err := hubConn.PublishRequest(subjects.JSDomainAPI("b")+".INFO", reply, nil); err != nil {
		t.Fatal(err)
	}
	if m, err := rs.NextMsgWithContext(ctx); err != nil || !strings.Contains(string(m.Data), `"domain":"b"`) {
		t.Errorf("the hub cannot reach site b's JetStream: %v", err)
	}
	if m, err := a.nc.Request(subjects.JSDomainAPI("b")+".STREAM.INFO.UPLINK", nil, time.Second); err == nil {
		t.Errorf("site a reached site b's JetStream: %s", m.Data)
	}
}

// TestLeafRefusesBadCredentials: a wrong password, another site's password, a
// missing client certificate and an untrusted hub certificate all keep the link
// down, each with the reason in the edge's log.
func TestLeafRefusesBadCredentials(t *testing.T) {
	s := startSecuredHub(t)
	cases := map[string]struct {
		change func(*edgeLeaf)
		want   []string
	}{
		"wrong password": {func(l *edgeLeaf) { l.password = "guess" }, []string{"authorization"}},
		"other site":     {func(l *edgeLeaf) { l.password = s.passwords["b"] }, []string{"authorization"}},
		"no credentials": {func(l *edgeLeaf) { l.user = "" }, []string{"authorization"}},
		"no client cert": {func(l *edgeLeaf) { l.tls.Certificates = nil }, []string{"tls"}},
		"untrusted hub":  {func(l *edgeLeaf) { l.tls.RootCAs = newPKI(t, "other CA").pool }, []string{"certificate"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			rec := &logRecorder{}
			l := s.leaf(t, "a")
			c.change(&l)
			l.log = slog.New(rec)
			e := startEdge(t, "a", l)
			testharness.WaitFor(t, 15*time.Second, "the refusal in the edge log", func() bool { return rec.contains(c.want...) })
			if e.leafConnected() {
				t.Error("the leaf link is up")
			}
			if n := len(s.status(t).NATS.Leafs); n != 0 {
				t.Errorf("hub has %d leaf nodes", n)
			}
		})
	}
	// The same edge with the right settings joins.
	startEdge(t, "a", s.leaf(t, "a"))
	s.waitLeafs(t, 1)
}
