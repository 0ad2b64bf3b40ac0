package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/voltageems/voltage/services/alarmsrv"
	"github.com/voltageems/voltage/services/apigateway"
	"github.com/voltageems/voltage/services/comsrv"
	"github.com/voltageems/voltage/services/hissrv"
	"github.com/voltageems/voltage/services/modsrv"
	"github.com/voltageems/voltage/services/rulesrv"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/tools/sitetest"
	"github.com/voltageems/voltage/tools/voltsim"
)

// Accounts of the test site.
const (
	adminPassword    = "admin-password-e2e"
	operatorPassword = "operator-password-e2e"
	viewerPassword   = "viewer-password-e2e"
)

// siteFiles is the demo site's PV inverter (channel 1), battery (2), grid meter
// (3) and virtual site controls (10), with its model and rules, read from the
// repository's config folder, devices on free ports, and one alarm that is
// raised at once (PV power above 1 kW at noon) for the UI to acknowledge.
func siteFiles(t *testing.T) sitetest.Files {
	t.Helper()
	root := filepath.Join("..", "..", "config")
	fs := sitetest.Files{
		"site.yaml": "site: {id: web-site, name: Web UI test}\nredis: {url: \"{{REDIS}}\"}\n",
		"comsrv/channels.yaml": `channels:
  - {id: 1, name: pv1, description: PV inverter, protocol: modbus_tcp, parameters: {host: 127.0.0.1, port: {{PORT1}}, poll_interval_ms: 200, timeout_ms: 1000}}
  - {id: 2, name: ess1, description: Battery PCS and BMS, protocol: modbus_tcp, parameters: {host: 127.0.0.1, port: {{PORT2}}, poll_interval_ms: 200, timeout_ms: 1000, max_gap: 10}}
  - {id: 3, name: grid_meter, description: Grid meter, protocol: modbus_tcp, parameters: {host: 127.0.0.1, port: {{PORT3}}, poll_interval_ms: 200, timeout_ms: 1000}}
  - {id: 10, name: site_controls, description: Site set-points, protocol: virtual, parameters: {poll_interval_ms: 1000}}
`,
		"alarmsrv/alarms.yaml": `alarms:
  - id: pv_producing
    name: PV producing
    kind: limit
    channel: 1
    type: T
    point: 1
    limits:
      h: {value: 1, severity: minor}
    message: "PV power {value}{unit} above {limit}{unit}"
`,
	}
	for _, sub := range []string{"comsrv/1", "comsrv/2", "comsrv/3", "comsrv/10", "modsrv", "rulesrv"} {
		err := filepath.WalkDir(filepath.Join(root, sub), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			fs[filepath.ToSlash(rel)] = string(b)
			return nil
		})
		if err != nil {
			t.Fatalf("demo site: %v", err)
		}
	}
	return fs
}

// stack is a running site with the gateway serving the embedded UI.
type stack struct {
	site    *sitetest.Site
	rules   *sitetest.Service
	url     string // the gateway
	control string // this test's control server (expire sessions)
	offset  atomic.Int64
}

// startStack runs voltsim (its clock at noon, running), comsrv, modsrv,
// alarmsrv, hissrv, rulesrv and the gateway, with short-lived access tokens so
// a browser run exercises the token refresh and the WebSocket reconnect.
func startStack(t *testing.T) *stack { return startStackWith(t, nil) }

// startStackWith is startStack with the gateway's settings changed by set.
func startStackWith(t *testing.T, set func(*apigateway.Settings)) *stack {
	t.Helper()
	st := &stack{site: sitetest.New(t, siteFiles(t))}
	site := st.site
	now := time.Now()
	sim, err := voltsim.New(site.Config, voltsim.Options{Seed: 1, Logger: sitetest.Logger(t),
		Start: time.Date(now.Year(), now.Month(), now.Day(), 12, 0, 0, 0, time.Local)})
	if err != nil {
		t.Fatalf("voltsim: %v", err)
	}
	site.Sim = sim
	sitetest.Go(t, "voltsim", sim.Run)
	log := sitetest.Logger(t)
	com := sitetest.Run(t, "comsrv", "/readyz", func(ctx context.Context, bound func(net.Addr)) error {
		return comsrv.Run(ctx, comsrv.Config{Site: site.Config, ConfigDir: site.Dir, HTTPAddr: "127.0.0.1:0", Log: log,
			ConsumerName: "comsrv-web", Bound: bound})
	})
	mod := sitetest.Run(t, "modsrv", "/readyz", func(ctx context.Context, bound func(net.Addr)) error {
		return modsrv.Run(ctx, modsrv.Config{Site: site.Config, ConfigDir: site.Dir, HTTPAddr: "127.0.0.1:0", Log: log,
			ConsumerName: "modsrv-web", Bound: bound})
	})
	alm := sitetest.Run(t, "alarmsrv", "/readyz", func(ctx context.Context, bound func(net.Addr)) error {
		return alarmsrv.Run(ctx, alarmsrv.Config{Site: site.Config, ConfigDir: site.Dir, HTTPAddr: "127.0.0.1:0", Log: log, Bound: bound})
	})
	his := sitetest.Run(t, "hissrv", "/readyz", func(ctx context.Context, bound func(net.Addr)) error {
		return hissrv.Run(ctx, hissrv.Config{Site: site.Config, ConfigDir: site.Dir, HTTPAddr: "127.0.0.1:0", Log: log,
			DataDir: t.TempDir(), Bound: bound})
	})
	rul := sitetest.Run(t, "rulesrv", "/readyz", func(ctx context.Context, bound func(net.Addr)) error {
		return rulesrv.Run(ctx, rulesrv.Config{Site: site.Config, ConfigDir: site.Dir, HTTPAddr: "127.0.0.1:0", Log: log, Bound: bound})
	})
	settings := apigateway.DefaultSettings()
	settings.AccessTTL = "10s"
	settings.WebSocket.Heartbeat = "2s"
	if set != nil {
		set(&settings)
	}
	gw := sitetest.Run(t, "apigateway", "/readyz", func(ctx context.Context, bound func(net.Addr)) error {
		return apigateway.Run(ctx, apigateway.Config{
			Site: site.Config, ConfigDir: site.Dir, HTTPAddr: "127.0.0.1:0", Log: log,
			Settings: &settings, BcryptCost: bcrypt.MinCost, AdminPassword: adminPassword, Out: io.Discard,
			Services: map[string]string{"comsrv": com.URL, "modsrv": mod.URL, "alarmsrv": alm.URL, "hissrv": his.URL, "rulesrv": rul.URL},
			Now:      func() time.Time { return time.Now().Add(time.Duration(st.offset.Load())) },
			Bound:    bound,
		})
	})
	st.url = gw.URL
	st.rules = rul
	admin := st.login(t, "admin", adminPassword)
	st.call(t, admin, "POST", "/users", map[string]string{"name": "olga", "role": "operator", "password": operatorPassword}, 201)
	st.call(t, admin, "POST", "/users", map[string]string{"name": "victor", "role": "viewer", "password": viewerPassword}, 201)
	st.control = st.serveControl(t)
	return st
}

// serveControl serves what the browser script may do to the site besides using
// it: POST /expire makes every session expire, as 13 hours without use would (the
// gateway's clock moves past the access tokens' expiry and the refresh tokens
// are gone, as Redis drops them at their TTL); POST /stop-rulesrv stops rulesrv
// (a dead service behind the gateway).
func (st *stack) serveControl(t *testing.T) string {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /expire", func(w http.ResponseWriter, r *http.Request) {
		st.offset.Add(int64(13 * time.Hour))
		ctx := r.Context()
		keys, err := st.site.RDB.Keys(ctx, keyspace.GatewayRefreshToken("*")).Result()
		if err == nil && len(keys) > 0 {
			err = st.site.RDB.Del(ctx, keys...).Err()
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "expired %d refresh tokens\n", len(keys))
	})
	mux.HandleFunc("POST /stop-rulesrv", func(w http.ResponseWriter, _ *http.Request) {
		st.rules.Stop()
		fmt.Fprintln(w, "rulesrv stopped")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

func (st *stack) login(t *testing.T, user, password string) string {
	t.Helper()
	var tp struct {
		AccessToken string `json:"access_token"`
	}
	st.call(t, "", "POST", "/auth/login", map[string]string{"user": user, "password": password}, 200, &tp)
	return tp.AccessToken
}

// call sends a JSON request to the gateway and fails unless it answers want.
func (st *stack) call(t *testing.T, token, method, path string, body any, want int, out ...any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, st.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	for _, o := range out {
		if err := json.Unmarshal(b, o); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}
