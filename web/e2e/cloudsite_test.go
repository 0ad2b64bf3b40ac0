package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"

	"github.com/voltageems/voltage/cloud/hub"
	"github.com/voltageems/voltage/edge/bridge"
	"github.com/voltageems/voltage/services/apigateway"
	"github.com/voltageems/voltage/shared/natsx"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/tools/sitetest"
)

// cloudSite is the demo site of startStack joined to a cloud hub as a leaf node,
// as an edge appliance joins it: an embedded NATS server (JetStream domain = the
// site id) with a leaf link to the hub, and the edge bridge sending the uplink
// and heartbeats up and answering commands and the site API proxy. The site's
// gateway trusts the hub's key (cloud_trust), so cloud users reach its pages.
type cloudSite struct {
	hub  hub.Endpoints
	st   *stack
	id   string
	nc   *nats.Conn // the edge's NATS
	key  string     // the hub's public trust key
	base string     // the hub's URL
}

const cloudSiteID = "web-site" // siteFiles' site id

func startCloudSite(t *testing.T) *cloudSite {
	t.Helper()
	cs := &cloudSite{hub: startHub(t), id: cloudSiteID}
	cs.base = "http://" + cs.hub.HTTP.String()
	var tk struct {
		PublicKey string `json:"public_key"`
	}
	if code := getJSON(t, cs.base+"/trust-key", "", &tk); code != 200 || tk.PublicKey == "" {
		t.Fatalf("GET /trust-key = %d %+v", code, tk)
	}
	cs.key = tk.PublicKey
	cs.st = startStackWith(t, func(s *apigateway.Settings) { s.CloudTrust.PublicKey = cs.key })

	leaf, err := url.Parse(cs.hub.LeafURL)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := natsx.StartServer(&server.Options{
		ServerName: "edge-" + cs.id, Host: "127.0.0.1", Port: -1, NoSigs: true,
		JetStream: true, JetStreamDomain: cs.id, StoreDir: t.TempDir(),
		LeafNode: server.LeafNodeOpts{ReconnectInterval: 200 * time.Millisecond, Remotes: []*server.RemoteLeafOpts{{URLs: []*url.URL{leaf}}}},
	}, sitetest.Logger(t))
	if err != nil {
		t.Fatalf("edge nats: %v", err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if cs.nc, err = nats.Connect("", nats.InProcessServer(ns)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cs.nc.Close)

	cfg := bridge.DefaultConfig()
	ch1, ch2, station := uint32(1), uint32(2), uint32(1)
	cfg.Downlink.Allow = []bridge.Allow{
		{Channel: &ch1, Type: "A", All: true}, {Channel: &ch2, Type: "A", Points: []uint32{1}},
		{Instance: &station, Actions: []string{"export_limit"}},
	}
	br, err := bridge.New(bridge.Options{Site: cs.st.site.Config, Config: cfg, Redis: cs.st.site.RDB, NATS: cs.nc,
		Log: sitetest.Logger(t), GatewayURL: cs.st.url})
	if err != nil {
		t.Fatal(err)
	}
	sitetest.Go(t, "bridge uplink", br.RunUplink)
	sitetest.Go(t, "bridge downlink", br.RunDownlink)
	sitetest.Go(t, "bridge api proxy", br.RunAPIProxy)
	sitetest.Go(t, "bridge heartbeat", func(ctx context.Context) error { return br.RunStatus(ctx, time.Second, nil) })
	return cs
}

// getJSON GETs u with an optional bearer token and decodes a 2xx answer.
func getJSON(t *testing.T, u, token string, out any) int {
	t.Helper()
	code, body := httpJSON(t, "GET", u, token, nil)
	if code < 300 && out != nil {
		if err := json.Unmarshal([]byte(body), out); err != nil {
			t.Fatalf("GET %s: %v: %s", u, err, body)
		}
	}
	return code
}

func httpJSON(t *testing.T, method, u, token string, body any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// cloudLogin logs a cloud user in and returns its access token.
func (cs *cloudSite) cloudLogin(t *testing.T, user, password string) string {
	t.Helper()
	code, body := httpJSON(t, "POST", cs.base+"/auth/login", "", map[string]string{"user": user, "password": password})
	var tp struct {
		AccessToken string `json:"access_token"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &tp) != nil {
		t.Fatalf("cloud login %s = %d %s", user, code, body)
	}
	return tp.AccessToken
}

// cloudUsers creates op-web (operator of the site), viewer-web (viewer of the
// site) and op-elsewhere (operator of another site) at the hub.
func (cs *cloudSite) cloudUsers(t *testing.T) {
	t.Helper()
	admin := cs.cloudLogin(t, "admin", cloudAdminPassword)
	for _, u := range []map[string]any{
		{"name": "op-web", "role": "operator", "password": "operator-web-password", "sites": []string{cs.id}},
		{"name": "viewer-web", "role": "viewer", "password": "viewer-web-password", "sites": []string{cs.id}},
		{"name": "op-elsewhere", "role": "operator", "password": "operator-elsewhere-password", "sites": []string{"elsewhere"}},
	} {
		if code, body := httpJSON(t, "POST", cs.base+"/users", admin, u); code != 201 {
			t.Fatalf("create %v: %d %s", u["name"], code, body)
		}
	}
}

// TestCloudDrillIn: through the hub's site API proxy a cloud operator covering
// the site reads its points and sends a command the site executes (and logs as
// cloud:op-web); a cloud viewer gets the site's 403 for a command; a user not
// covering the site gets the hub's 403; the site's key figures reach the fleet
// list; a delegation token for this site is refused by another site's gateway
// that trusts the same hub.
func TestCloudDrillIn(t *testing.T) {
	cs := startCloudSite(t)
	cs.cloudUsers(t)
	op := cs.cloudLogin(t, "op-web", "operator-web-password")
	viewer := cs.cloudLogin(t, "viewer-web", "viewer-web-password")
	elsewhere := cs.cloudLogin(t, "op-elsewhere", "operator-elsewhere-password")
	api := cs.base + "/sites/" + cs.id + "/api"

	// The station's figures, computed at the hub from the uplink.
	testharness.Eventually(t, 60*time.Second, func() error {
		var sites struct{ Sites []hub.SiteSummary }
		getJSON(t, cs.base+"/sites", op, &sites)
		if len(sites.Sites) != 1 || !sites.Sites[0].Online {
			return fmt.Errorf("sites = %+v", sites.Sites)
		}
		k := sites.Sites[0].KeyFigures
		if k == nil || k.PowerKW == nil || k.PVKW == nil || k.SOC == nil || k.EnergyTodayKWh == nil {
			return fmt.Errorf("key figures = %+v", k)
		}
		return nil
	})

	// Points through the proxy, once the bridge's subscription crossed the leaf.
	var points struct {
		Points []struct {
			Key   string  `json:"key"`
			Value float64 `json:"value"`
		} `json:"points"`
	}
	testharness.Eventually(t, 20*time.Second, func() error {
		if code := getJSON(t, api+"/points?pattern=1:T:*", op, &points); code != 200 || len(points.Points) == 0 {
			return fmt.Errorf("GET points through the hub = %d %+v", code, points)
		}
		return nil
	})
	var me struct{ Name, Role string }
	if code := getJSON(t, api+"/auth/me", op, &me); code != 200 || me.Name != "cloud:op-web" || me.Role != "operator" {
		t.Errorf("me through the hub = %d %+v", code, me)
	}

	// A command through the proxy, executed by the site (voltsim's battery).
	code, body := httpJSON(t, "POST", api+"/commands", op, map[string]any{"channel": 2, "type": "A", "point": 1, "value": -15, "wait_ms": 5000})
	if code != 202 || !strings.Contains(body, `"status":"ok"`) {
		t.Fatalf("command through the hub = %d %s", code, body)
	}
	cs.st.site.WaitValue("comsrv:2:A", "1", "-15")
	siteAdmin := cs.st.login(t, "admin", adminPassword)
	var recent struct {
		Commands []struct{ User, Target string }
	}
	cs.st.call(t, siteAdmin, "GET", "/commands", nil, 200, &recent)
	if len(recent.Commands) == 0 || recent.Commands[0].User != "cloud:op-web" {
		t.Errorf("the site's recent commands = %+v, want the newest by cloud:op-web", recent.Commands)
	}
	// Off the site's allow-list: refused by the edge, as a downlink command is.
	if code, body := httpJSON(t, "POST", api+"/commands", op, map[string]any{"channel": 2, "type": "A", "point": 2, "value": 1}); code != 403 {
		t.Errorf("command off the allow-list = %d %s, want 403", code, body)
	}

	// The site checks the role: a cloud viewer sends no command.
	if code, body := httpJSON(t, "POST", api+"/commands", viewer, map[string]any{"channel": 2, "type": "A", "point": 1, "value": 1}); code != 403 {
		t.Errorf("viewer command = %d %s, want 403", code, body)
	}
	// The hub checks the scope.
	if code, body := httpJSON(t, "GET", api+"/points", elsewhere, nil); code != 403 || !strings.Contains(body, "not in your scope") {
		t.Errorf("user of another site = %d %s, want the hub's 403", code, body)
	}

	// A delegation token for this site, taken off the hub's NATS, is refused by
	// another site whose gateway trusts the same hub.
	hubNC, err := nats.Connect(cs.hub.ClientURL)
	if err != nil {
		t.Fatal(err)
	}
	defer hubNC.Close()
	tap, err := hubNC.SubscribeSync(subjects.DownAPI(cs.id))
	if err != nil || hubNC.Flush() != nil {
		t.Fatalf("tap: %v", err)
	}
	getJSON(t, api+"/points?pattern=1:T:1", op, nil)
	m, err := tap.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimPrefix(m.Header.Get("Authorization"), "Bearer ")
	other := sitetest.New(t, sitetest.Files{
		"site.yaml":              "site: {id: other-site, name: Other}\nredis: {url: \"{{REDIS}}\"}\n",
		"comsrv/channels.yaml":   "channels:\n  - {id: 1, name: dev, protocol: virtual}\n",
		"comsrv/1/telemetry.csv": "point_id,signal_name,scale,offset,unit,reverse,data_type\n1,p,1,0,kW,0,float\n",
	})
	set := apigateway.DefaultSettings()
	set.CloudTrust.PublicKey = cs.key
	gw := sitetest.Run(t, "other gateway", "/readyz", func(ctx context.Context, bound func(net.Addr)) error {
		return apigateway.Run(ctx, apigateway.Config{Site: other.Config, ConfigDir: other.Dir, HTTPAddr: "127.0.0.1:0",
			Log: sitetest.Logger(t), Settings: &set, BcryptCost: bcrypt.MinCost, AdminPassword: adminPassword, Out: io.Discard, Bound: bound})
	})
	if code, body := httpJSON(t, "GET", gw.URL+"/auth/me", token, nil); code != 401 {
		t.Errorf("site a's token at site b = %d %s, want 401", code, body)
	}
	if code, _ := httpJSON(t, "GET", cs.st.url+"/auth/me", token, nil); code != 200 {
		t.Errorf("the same token at its own site = %d, want 200", code)
	}
}
