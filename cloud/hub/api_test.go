package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/voltageems/voltage/cloud/hub"
	"github.com/voltageems/voltage/shared/auth"
	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/shared/uplink"
)

const adminPassword = "admin-password-for-tests"

// client calls the cloud API.
type client struct {
	t     *testing.T
	base  string
	token string
}

func (h *runningHub) client(t *testing.T) *client {
	return &client{t: t, base: "http://" + h.HTTP.String()}
}

// do sends a request and decodes a JSON answer into out (when not nil).
func (c *client) do(method, path string, body, out any) (int, string) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return resp.StatusCode, string(b)
}

// must is do that fails the test unless the status is want.
func (c *client) must(want int, method, path string, body, out any) string {
	c.t.Helper()
	code, b := c.do(method, path, body, out)
	if code != want {
		c.t.Fatalf("%s %s = %d %s, want %d", method, path, code, b, want)
	}
	return b
}

func (c *client) login(user, password string) *client {
	c.t.Helper()
	var pair auth.TokenPair
	c.must(200, "POST", "/auth/login", map[string]string{"user": user, "password": password}, &pair)
	return &client{t: c.t, base: c.base, token: pair.AccessToken}
}

// changeAt publishes a change batch of channel ch at ts (Unix ms).
func (e *edge) changeAt(ch uint32, n int, ts int64, values string) string {
	id := uplink.MsgID(e.site, uplink.SourceChanges, fmt.Sprintf("%d-%d", ts, n))
	e.publish(subjects.ChannelUp(e.site, ch, 'T'), id, fmt.Appendf(nil, `{"ts":%d,"v":{%s}}`, ts, values))
	return id
}

// heartbeat publishes the site heartbeat the way the edge bridge does: a plain
// publish, not stored in UPLINK.
func (e *edge) heartbeat() {
	st := uplink.Status{Site: e.site, Name: "Site " + e.site, TS: time.Now().UnixMilli(), Version: "test",
		Channels: []uplink.ChannelStatus{{ID: 1, State: "up"}, {ID: 2, State: "down"}}}
	b, _ := json.Marshal(st)
	if err := e.nc.Publish(subjects.StatusUp(e.site), b); err != nil {
		e.t.Fatal(err)
	}
}

func (e *edge) alarm(id, typ, key, state string) {
	ev := uplink.AlarmEvent{Site: e.site, ID: id, Fields: map[string]string{
		"type": typ, "key": key, "state": state, "severity": "major",
		"alarm": fmt.Sprintf(`{"key":%q,"severity":"major","active":%v}`, key, strings.HasPrefix(state, "active")),
	}}
	b, _ := json.Marshal(ev)
	e.publish(subjects.AlarmUp(e.site), uplink.MsgID(e.site, uplink.SourceAlarms, id), b)
}

// TestCloudAPI drives the fleet API end to end over a secured hub: data from a
// site reaches the fleet state and history, commands reach the site's responder
// and its reply returns, and the role and site scope of every user hold.
func TestCloudAPI(t *testing.T) {
	t.Setenv(auth.EnvAdminPassword, adminPassword)
	s := startSecuredHub(t)
	a := startEdge(t, "a", s.leaf(t, "a"))
	startEdge(t, "b", s.leaf(t, "b"))
	s.waitLeafs(t, 2)

	now := time.Now().Add(-time.Minute).UnixMilli()
	a.changeAt(1, 0, now, `"1":10,"2":20`)
	a.changeAt(1, 1, now+1000, `"1":11`)
	a.changeAt(1, 2, now+2000, `"1":12`)
	a.alarm("1-0", "raised", "temp:h", "active_unacked")
	a.alarm("2-0", "raised", "volt:l", "active_unacked")
	a.alarm("3-0", "cleared", "volt:l", "cleared_unacked")
	waitCount(t, s.ClientURL, "a", 6, 30*time.Second)

	anon := s.client(t)
	admin := anon.login("admin", adminPassword)
	for _, u := range []map[string]any{
		{"name": "viewer-a", "role": "viewer", "password": "viewer-a-password", "sites": []string{"a"}},
		{"name": "operator-a", "role": "operator", "password": "operator-a-password", "sites": []string{"a"}},
		{"name": "operator-all", "role": "operator", "password": "operator-all-password", "sites": []string{"*"}},
	} {
		admin.must(201, "POST", "/users", u, nil)
	}
	viewerA := anon.login("viewer-a", "viewer-a-password")
	operatorA := anon.login("operator-a", "operator-a-password")
	operatorAll := anon.login("operator-all", "operator-all-password")

	// Without a token nothing but login works.
	anon.must(401, "GET", "/sites", nil, nil)
	anon.must(401, "POST", "/auth/login", map[string]string{"user": "admin", "password": "wrong"}, nil)

	// Sites: a viewer of a sees a only, and not b at all.
	var sites struct{ Sites []hub.SiteSummary }
	testharness.Eventually(t, 10*time.Second, func() error {
		a.heartbeat() // until the hub's interest in heartbeats has crossed the leaf link
		viewerA.must(200, "GET", "/sites", nil, &sites)
		if len(sites.Sites) != 1 || sites.Sites[0].ID != "a" || !sites.Sites[0].Online || sites.Sites[0].Points != 2 ||
			sites.Sites[0].Alarms != 1 || sites.Sites[0].Channels != 2 || sites.Sites[0].ChannelsUp != 1 || sites.Sites[0].Name != "Site a" {
			return fmt.Errorf("viewer-a sites = %+v", sites.Sites)
		}
		return nil
	})
	admin.must(200, "GET", "/sites", nil, &sites)
	if len(sites.Sites) != 2 {
		t.Errorf("admin sites = %+v, want a and b", sites.Sites)
	}
	viewerA.must(403, "GET", "/sites/b", nil, nil)
	viewerA.must(403, "GET", "/sites/b/values", nil, nil)
	viewerA.must(403, "GET", "/sites/b/history?point=comsrv:1:T:1&start=now-1h", nil, nil)
	viewerA.must(403, "GET", "/alarms?site=b", nil, nil)
	viewerA.must(403, "GET", "/sites/nowhere", nil, nil)
	admin.must(404, "GET", "/sites/nowhere", nil, nil)
	viewerA.must(403, "GET", "/users", nil, nil)

	var detail struct {
		hub.SiteStatus
		Source hub.SourceState
	}
	viewerA.must(200, "GET", "/sites/a", nil, &detail)
	if detail.Heartbeat == nil || detail.Heartbeat.Version != "test" || detail.Source.Messages != 6 || detail.Source.Stream != "SITE_a" {
		t.Errorf("site a = %+v", detail)
	}

	// Latest values.
	var values struct{ Values []hub.Value }
	viewerA.must(200, "GET", "/sites/a/values", nil, &values)
	if len(values.Values) != 2 || values.Values[0].Point != "1" || values.Values[0].Value != 12 || values.Values[0].TS != now+2000 ||
		values.Values[1].Value != 20 || values.Values[0].Key != "comsrv:1:T" {
		t.Errorf("values = %+v", values.Values)
	}

	// Active alarms: volt:l was cleared.
	var alarms struct{ Alarms []hub.Alarm }
	viewerA.must(200, "GET", "/alarms", nil, &alarms)
	if len(alarms.Alarms) != 1 || alarms.Alarms[0].Key != "temp:h" || alarms.Alarms[0].Site != "a" {
		t.Errorf("alarms = %+v", alarms.Alarms)
	}

	// History: the three values of point 1, written by the history consumer.
	var hist struct {
		Series []struct {
			Point  string
			Values [][2]float64
		}
	}
	testharness.Eventually(t, 15*time.Second, func() error {
		if code, body := viewerA.do("GET", "/sites/a/history?point=comsrv:1:T:1&start=now-1h", nil, &hist); code != 200 {
			return fmt.Errorf("history = %d %s", code, body)
		}
		if len(hist.Series) != 1 || len(hist.Series[0].Values) != 3 || hist.Series[0].Values[2][1] != 12 {
			return fmt.Errorf("history = %+v", hist.Series)
		}
		return nil
	})
	viewerA.must(422, "GET", "/sites/a/history?point=nonsense&start=now-1h", nil, nil)

	// Commands: a responder on site a's edge answers.
	got := make(chan uplink.Command, 1)
	sub, err := a.nc.Subscribe(subjects.DownCommand("a"), func(m *nats.Msg) {
		var c uplink.Command
		_ = json.Unmarshal(m.Data, &c)
		got <- c
		r, _ := json.Marshal(uplink.CommandReply{Site: "a", Result: command.Result{ID: c.ID, Channel: c.Channel, Type: c.Type, Point: c.Point, Status: command.OK}})
		_ = m.Respond(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	cmd := map[string]any{"channel": 2, "type": "A", "point": 7, "value": 42.5, "wait_ms": 100}
	viewerA.must(403, "POST", "/sites/a/commands", cmd, nil)
	operatorA.must(403, "POST", "/sites/b/commands", cmd, nil)
	var reply uplink.CommandReply
	testharness.Eventually(t, 10*time.Second, func() error { // the responder's interest crosses the leaf
		code, body := operatorA.do("POST", "/sites/a/commands", cmd, &reply)
		if code != 200 {
			return fmt.Errorf("command = %d %s", code, body)
		}
		return nil
	})
	c := <-got
	if reply.Site != "a" || reply.Result.Status != command.OK || reply.Result.ID != c.ID || c.User != "operator-a" ||
		c.Channel != 2 || c.Type != "A" || c.Point != 7 || c.Value != 42.5 || c.WaitMS != 100 {
		t.Errorf("command %+v, reply %+v", c, reply)
	}
	// Site b has no responder: 503 at once.
	operatorAll.must(503, "POST", "/sites/b/commands", cmd, nil)
	operatorA.must(422, "POST", "/sites/a/commands", map[string]any{"channel": 1, "value": 1}, nil)
	operatorA.must(422, "POST", "/sites/a/commands", map[string]any{"channel": 1, "type": "C", "point": 1, "instance": 3, "action": "x", "value": 1}, nil)

	// The audit trail: admin only, newest first, with the command and who sent it.
	viewerA.must(403, "GET", "/audit", nil, nil)
	var trail struct{ Entries []hub.AuditEntry }
	admin.must(200, "GET", "/audit?limit=1000", nil, &trail)
	counts := map[string]int{}
	for _, e := range trail.Entries {
		counts[e.Action]++
		if e.Action == "command" && e.User == "operator-a" && e.Site == "a" && e.Fields["outcome"] == "ok" && e.Fields["target"] != "2:A:7" {
			t.Errorf("command audited with target %q", e.Fields["target"])
		}
	}
	if counts["user_created"] != 3 || counts["login_failed"] != 1 || counts["login"] < 4 || counts["command"] < 2 {
		t.Errorf("audit actions = %v", counts)
	}
	if len(trail.Entries) > 1 && trail.Entries[0].Seq < trail.Entries[1].Seq {
		t.Error("audit trail is not newest first")
	}

	// Security headers and request ids on every answer.
	req, _ := http.NewRequestWithContext(context.Background(), "GET", anon.base+"/openapi.json", nil)
	req.Header.Set("X-Request-Id", "test-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Request-Id") != "test-123" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("GET /openapi.json = %d %v", resp.StatusCode, resp.Header)
	}
	if code, body := anon.do("GET", "/sites", nil, nil); !strings.Contains(body, `"status":401`) || code != 401 {
		t.Errorf("401 is not problem+json: %s", body)
	}
}

// TestAuthRefreshAndLogout: refresh tokens rotate, a reused one revokes the login.
func TestAuthRefreshAndLogout(t *testing.T) {
	t.Setenv(auth.EnvAdminPassword, adminPassword)
	h := startHub(t, freeConfig(t))
	c := h.client(t)
	var pair auth.TokenPair
	c.must(200, "POST", "/auth/login", map[string]string{"user": "admin", "password": adminPassword}, &pair)
	var next auth.TokenPair
	c.must(200, "POST", "/auth/refresh", map[string]string{"refresh_token": pair.RefreshToken}, &next)
	c.must(401, "POST", "/auth/refresh", map[string]string{"refresh_token": pair.RefreshToken}, nil)
	// The reuse revoked the family: the rotated token is dead too.
	c.must(401, "POST", "/auth/refresh", map[string]string{"refresh_token": next.RefreshToken}, nil)

	c.must(200, "POST", "/auth/login", map[string]string{"user": "admin", "password": adminPassword}, &pair)
	me := &client{t: t, base: c.base, token: pair.AccessToken}
	var who struct{ Name, Role string }
	me.must(200, "GET", "/auth/me", nil, &who)
	if who.Name != "admin" || who.Role != "admin" {
		t.Errorf("me = %+v", who)
	}
	me.must(204, "POST", "/auth/logout", map[string]string{"refresh_token": pair.RefreshToken}, nil)
	c.must(401, "POST", "/auth/refresh", map[string]string{"refresh_token": pair.RefreshToken}, nil)
}

// TestAdminBootstrapPrintedOnce: the first start prints a generated admin
// password; a restart on the same store does not.
func TestAdminBootstrapPrintedOnce(t *testing.T) {
	t.Setenv(auth.EnvAdminPassword, "")
	cfg := freeConfig(t)
	var out bytes.Buffer
	cfg.AdminOut = &out
	h := startHub(t, cfg)
	printed := out.String()
	i := strings.Index(printed, "with password ")
	if i < 0 {
		t.Fatalf("first start printed %q, want the admin password", printed)
	}
	pw := strings.Fields(printed[i+len("with password "):])[0]
	h.client(t).login("admin", pw)
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	h2 := startHub(t, cfg)
	if out.Len() != 0 {
		t.Errorf("second start printed %q", out.String())
	}
	h2.client(t).login("admin", pw)
}

// TestLoginThrottle: a user is locked after too many failures, an address after
// too many attempts; both answer 429 with Retry-After.
func TestLoginThrottle(t *testing.T) {
	t.Setenv(auth.EnvAdminPassword, adminPassword)
	cfg := freeConfig(t)
	cfg.Auth.MaxFailures = 2
	cfg.Auth.PerAddressPerMinute = 6
	h := startHub(t, cfg)
	c := h.client(t)
	for range 2 {
		c.must(401, "POST", "/auth/login", map[string]string{"user": "admin", "password": "wrong"}, nil)
	}
	body := c.must(429, "POST", "/auth/login", map[string]string{"user": "admin", "password": adminPassword}, nil)
	if !strings.Contains(body, "locked") {
		t.Errorf("locked user: %s", body)
	}
	for range 3 { // attempts 4 to 6 of this address
		c.do("POST", "/auth/login", map[string]string{"user": "nobody", "password": "x"}, nil)
	}
	req, _ := http.NewRequest("POST", c.base+"/auth/login", strings.NewReader(`{"user":"other","password":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("7th attempt from one address = %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
