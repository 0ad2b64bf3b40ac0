package apigateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/voltageems/voltage/services/apigateway"
	"github.com/voltageems/voltage/tools/sitetest"
)

const adminPassword = "admin-password-1"

// closedURL is an address nothing listens on (port 1 needs root to bind).
const closedURL = "http://127.0.0.1:1"

// virtualSite is a site without devices: one virtual channel with a point of each
// type. Commands to it stay pending unless comsrv runs.
var virtualSite = sitetest.Files{
	"site.yaml": "site: {id: gw-site, name: Gateway test}\nredis: {url: \"{{REDIS}}\"}\n",
	"comsrv/channels.yaml": `channels:
  - {id: 1, name: dev, protocol: virtual}
`,
	"comsrv/1/telemetry.csv":  "point_id,signal_name,scale,offset,unit,reverse,data_type\n1,p,1,0,kW,0,float\n2,q,1,0,kvar,0,float\n",
	"comsrv/1/signal.csv":     "point_id,signal_name,scale,offset,unit,reverse,data_type\n1,run,1,0,,0,bool\n",
	"comsrv/1/control.csv":    "point_id,signal_name,scale,offset,unit,reverse,data_type,control_type\n1,start,1,0,,0,bool,latching\n",
	"comsrv/1/adjustment.csv": "point_id,signal_name,scale,offset,unit,reverse,data_type,min_value,max_value\n1,limit,1,0,%,0,float,0,100\n",
}

// gw is a running gateway on a test site.
type gw struct {
	t      *testing.T
	site   *sitetest.Site
	svc    *sitetest.Service
	url    string
	offset atomic.Int64 // added to the gateway's clock (ns)
	out    bytes.Buffer
}

type gwOption func(*apigateway.Config)

func startGateway(t *testing.T, site *sitetest.Site, opts ...gwOption) *gw {
	t.Helper()
	g := &gw{t: t, site: site}
	set := apigateway.DefaultSettings()
	cfg := apigateway.Config{
		Site: site.Config, ConfigDir: site.Dir, HTTPAddr: "127.0.0.1:0", Log: sitetest.Logger(t),
		Settings: &set, BcryptCost: bcrypt.MinCost, // tests log in often; production keeps 12
		AdminPassword: adminPassword, Out: &g.out,
		Now: func() time.Time { return time.Now().Add(time.Duration(g.offset.Load())) },
		// Internal services a test does not start answer nothing: never a service
		// of the machine on its default port.
		Services: map[string]string{"comsrv": closedURL, "modsrv": closedURL, "rulesrv": closedURL, "hissrv": closedURL, "alarmsrv": closedURL},
	}
	for _, o := range opts {
		o(&cfg)
	}
	g.svc = sitetest.Run(t, "apigateway", "/readyz", func(ctx context.Context, bound func(net.Addr)) error {
		cfg.Bound = bound
		return apigateway.Run(ctx, cfg)
	})
	g.url = g.svc.URL
	return g
}

func newGateway(t *testing.T, opts ...gwOption) *gw {
	t.Helper()
	return startGateway(t, sitetest.New(t, virtualSite), opts...)
}

// reply is an HTTP answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) String() string { return string(r.body) }

func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends a request; body is a string (sent as is) or a value (JSON encoded).
func (g *gw) do(method, path, token string, body any) reply {
	g.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, _ := json.Marshal(b)
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, g.url+path, rd)
	if err != nil {
		g.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// expect checks the status; error answers must be problem+json.
func (g *gw) expect(r reply, status int) reply {
	g.t.Helper()
	if r.status != status {
		g.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if status >= 400 && !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
		g.t.Fatalf("error answer is %q, not problem+json: %s", r.header.Get("Content-Type"), r.body)
	}
	return r
}

type tokens struct {
	Access  string `json:"access_token"`
	Refresh string `json:"refresh_token"`
	Role    string `json:"role"`
}

func (g *gw) login(user, password string) tokens {
	g.t.Helper()
	r := g.expect(g.do("POST", "/auth/login", "", map[string]string{"user": user, "password": password}), 200)
	var tk tokens
	r.decode(g.t, &tk)
	return tk
}

func (g *gw) admin() string { return g.login("admin", adminPassword).Access }

// user creates a user of role and returns its access token.
func (g *gw) user(name, role string) string {
	g.t.Helper()
	g.expect(g.do("POST", "/users", g.admin(), map[string]string{"name": name, "role": role, "password": name + "-password"}), 201)
	return g.login(name, name+"-password").Access
}

type apigatewayConfig = apigateway.Config

func newGatewaySite(t *testing.T) *sitetest.Site { return sitetest.New(t, virtualSite) }

func newRequest(method, url, origin, reqID string) (*http.Request, error) {
	r, err := http.NewRequest(method, url, nil)
	if err != nil {
		return nil, err
	}
	r.Header.Set("Origin", origin)
	r.Header.Set("Access-Control-Request-Method", "GET")
	r.Header.Set("X-Request-Id", reqID)
	return r, nil
}

func send(t *testing.T, r *http.Request) reply {
	t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}
