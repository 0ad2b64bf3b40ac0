package hub_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"

	"github.com/voltageems/voltage/cloud/hub"
	"github.com/voltageems/voltage/shared/auth"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/shared/uplink"
)

// apiResponder answers ems.{site}.down.api as the edge bridge does, from the
// requests it records; the test reads them on got.
func apiResponder(t *testing.T, e *edge) <-chan *nats.Msg {
	t.Helper()
	got := make(chan *nats.Msg, 16)
	_, err := e.nc.Subscribe(subjects.DownAPI(e.site), func(m *nats.Msg) {
		got <- m
		r := &nats.Msg{Data: []byte(`{"site":"` + e.site + `","path":"` + m.Header.Get(uplink.APIHeaderPath) + `"}`), Header: nats.Header{}}
		r.Header.Set(uplink.APIHeaderStatus, "201")
		if m.Header.Get(uplink.APIHeaderPath) == "/untrusted" {
			r.Data = []byte(`{"status":401,"detail":"this site does not accept cloud tokens"}`)
			r.Header.Set(uplink.APIHeaderStatus, "401")
		}
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Set-Cookie", "dropped=1")
		_ = m.RespondMsg(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return got
}

// raw sends a request with a body as is and returns status, headers and body.
func (c *client) raw(method, path, ctype, body string) (int, http.Header, string) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestSiteAPIProxy: a cloud user reaches a site of its scope through
// /sites/{site}/api/…; the site gets the request on ems.{site}.down.api with a
// delegation token the hub signed (aud = site, sub = user, role, ≤ 60 s) instead
// of the user's cloud token, and its answer comes back. A site outside the scope
// is 403 at the hub, one without a responder 503; a leaf of one site never sees
// another site's proxied requests.
func TestSiteAPIProxy(t *testing.T) {
	t.Setenv(auth.EnvAdminPassword, adminPassword)
	s := startSecuredHub(t)
	a := startEdge(t, "a", s.leaf(t, "a"))
	startEdge(t, "b", s.leaf(t, "b"))
	s.waitLeafs(t, 2)
	gotA := apiResponder(t, a)
	// Site a's leaf also listens on b's subject: its permissions must keep it deaf.
	spy, err := a.nc.SubscribeSync(subjects.DownAPI("b"))
	if err != nil {
		t.Fatal(err)
	}

	anon := s.client(t)
	admin := anon.login("admin", adminPassword)
	admin.must(201, "POST", "/users", map[string]any{"name": "op-a", "role": "operator", "password": "operator-a-password", "sites": []string{"a"}}, nil)
	opA := anon.login("op-a", "operator-a-password")

	var key struct {
		PublicKey string `json:"public_key"`
		PEM       string
		Algorithm string
		TTL       int `json:"ttl_s"`
	}
	anon.must(200, "GET", "/trust-key", nil, &key) // public, like the spec
	pub, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(key.PublicKey, hub.TrustKeyPrefix))
	if err != nil || len(pub) != ed25519.PublicKeySize || key.Algorithm != "EdDSA" || key.TTL != 60 || !strings.Contains(key.PEM, "BEGIN PUBLIC KEY") {
		t.Fatalf("trust key = %+v", key)
	}

	if code, _, _ := anon.raw("GET", "/sites/a/api/points", "", ""); code != 401 {
		t.Errorf("anonymous proxy call = %d, want 401", code)
	}
	for _, p := range []string{"/sites/b/api/points", "/sites/nowhere/api/points"} {
		if code, h, body := opA.raw("GET", p, "", ""); code != 403 || !strings.HasPrefix(h.Get("Content-Type"), "application/problem+json") {
			t.Errorf("op-a GET %s = %d %s, want 403 problem", p, code, body)
		}
	}
	if code, _, _ := admin.raw("GET", "/sites/nowhere/api/points", "", ""); code != 404 {
		t.Errorf("unknown site = %d, want 404", code)
	}

	// The request through the hub, until a's subscription has crossed the leaf.
	var code int
	var hdr http.Header
	var body string
	testharness.Eventually(t, 10*time.Second, func() error {
		code, hdr, body = opA.raw("POST", "/sites/a/api/commands?wait_ms=5", "application/json", `{"channel":1}`)
		if code != 201 {
			return fmt.Errorf("POST through the proxy = %d %s", code, body)
		}
		return nil
	})
	if body != `{"site":"a","path":"/commands"}` || hdr.Get("Content-Type") != "application/json" || hdr.Get("Set-Cookie") != "" || hdr.Get("X-Voltage-Site") != "a" {
		t.Errorf("answer %v %s", hdr, body)
	}
	var m *nats.Msg
	for m = range gotA {
		if m.Header.Get(uplink.APIHeaderMethod) == "POST" {
			break
		}
	}
	if m.Header.Get(uplink.APIHeaderPath) != "/commands" || m.Header.Get(uplink.APIHeaderQuery) != "wait_ms=5" ||
		string(m.Data) != `{"channel":1}` || m.Header.Get("Content-Type") != "application/json" || m.Header.Get("X-Request-Id") == "" {
		t.Errorf("site a got %v %s", m.Header, m.Data)
	}
	tok := strings.TrimPrefix(m.Header.Get("Authorization"), "Bearer ")
	if tok == opA.token {
		t.Fatal("the user's cloud token went to the site")
	}
	var claims hub.DelegationClaims
	_, err = jwt.ParseWithClaims(tok, &claims, func(*jwt.Token) (any, error) { return ed25519.PublicKey(pub), nil },
		jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithAudience("a"), jwt.WithIssuer(hub.DelegationIssuer), jwt.WithExpirationRequired())
	if err != nil || claims.Subject != "op-a" || claims.Role != "operator" || claims.ExpiresAt.Sub(claims.IssuedAt.Time) != 60*time.Second {
		t.Errorf("delegation token %+v: %v", claims, err)
	}
	if m, err := spy.NextMsg(100 * time.Millisecond); err == nil {
		t.Errorf("site a's leaf received site b's request %s", m.Subject)
	}

	// The site refusing the delegation is not the caller's token being bad.
	if code, _, body := opA.raw("GET", "/sites/a/api/untrusted", "", ""); code != 403 || !strings.Contains(body, "does not accept cloud tokens") || !strings.Contains(body, "cloud_trust") {
		t.Errorf("site refusing the delegation = %d %s, want 403 naming cloud_trust", code, body)
	}

	// Site b answers nothing on the subject: 503 (its leaf is up, but no bridge).
	if code, _, body := admin.raw("GET", "/sites/b/api/points", "", ""); code != 503 {
		t.Errorf("site without a responder = %d %s, want 503", code, body)
	}
	if code, _, _ := opA.raw("OPTIONS", "/sites/a/api/points", "", ""); code != 405 {
		t.Errorf("OPTIONS = %d, want 405", code)
	}
	if code, _, _ := opA.raw("POST", "/sites/a/api/config", "application/json", strings.Repeat("x", hub.ProxyMaxBody+1)); code != 413 {
		t.Errorf("oversized body = %d, want 413", code)
	}

	// The POST is in the cloud's audit trail.
	testharness.Eventually(t, 10*time.Second, func() error {
		var audit struct {
			Entries []struct {
				Action, User, Site string
				Fields             map[string]string
			}
		}
		admin.must(200, "GET", "/audit", nil, &audit)
		for _, e := range audit.Entries {
			if e.Action == "site_api" && e.User == "op-a" && e.Site == "a" && e.Fields["path"] == "/commands" && e.Fields["outcome"] == "201" {
				return nil
			}
		}
		return fmt.Errorf("no site_api entry in %+v", audit.Entries)
	})
}

// TestTrustKeyKept: the trust key is made once and survives a hub restart.
func TestTrustKeyKept(t *testing.T) {
	t.Setenv(auth.EnvAdminPassword, adminPassword)
	cfg := freeConfig(t)
	key := func(h *runningHub) string {
		var k struct {
			PublicKey string `json:"public_key"`
		}
		h.client(t).must(200, "GET", "/trust-key", nil, &k)
		return k.PublicKey
	}
	h := startHub(t, cfg)
	first := key(h)
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if again := key(startHub(t, cfg)); again != first || !strings.HasPrefix(first, hub.TrustKeyPrefix) {
		t.Errorf("trust key after a restart = %q, want %q", again, first)
	}
}
