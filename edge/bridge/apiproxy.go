package bridge

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/service"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/uplink"
)

// The site API proxy's edge side: the cloud hub sends a cloud user's HTTP request
// on ems.{site}.down.api (cloud/hub/proxy.go); the bridge calls the site's own
// gateway on loopback with it, the hub's delegation token as the bearer token,
// and replies with the gateway's answer. The bridge grants nothing: the gateway
// checks the token (its cloud_trust setting, off by default) and the role of the
// operation as for any caller.
//
// Wire: the request body is the message payload; the method, path and query are
// the headers Voltage-Method, Voltage-Path and Voltage-Query, and Authorization,
// Content-Type, Accept and X-Request-Id travel as themselves. The reply carries
// the status in Voltage-Status, Content-Type, Location, Link, WWW-Authenticate and
// Retry-After as themselves, and the body as its payload.

// Limits of the API proxy.
const (
	// MaxAPIRequests are the proxied requests handled at once; more are answered
	// 503 at once.
	MaxAPIRequests = 32
	// APITimeout bounds one call of the gateway: below the hub's 10 s wait, so the
	// hub hears a 504 from here rather than nothing.
	APITimeout = 9 * time.Second
	// apiHeaderRoom is what the reply's headers may take of the NATS max payload.
	apiHeaderRoom = 16 << 10
)

var apiRequestHeaders = []string{"Authorization", "Content-Type", "Accept", "X-Request-Id"}

var apiReplyHeaders = []string{"Content-Type", "Location", "Link", "WWW-Authenticate", "Retry-After"}

var apiMethods = map[string]bool{http.MethodGet: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true}

// SetGatewayAddr sets the gateway the API proxy calls (host:port, as it is bound;
// an unspecified host means loopback). The appliance calls it once the gateway
// listens; until then the proxy uses site.yaml's listen address.
func (b *Bridge) SetGatewayAddr(addr string) {
	u := "http://" + loopbackAddr(addr)
	b.gateway.Store(&u)
}

func (b *Bridge) gatewayURL() string {
	if u := b.gateway.Load(); u != nil {
		return *u
	}
	if b.o.GatewayURL != "" {
		return strings.TrimSuffix(b.o.GatewayURL, "/")
	}
	return "http://" + loopbackAddr(b.o.Site.Site.ListenAddr("apigateway", service.DefaultAddrs["apigateway"]))
}

// loopbackAddr turns a listen address with an unspecified host into a loopback one.
func loopbackAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// RunAPIProxy answers ems.{site}.down.api until ctx is done, then lets the
// requests in hand finish.
func (b *Bridge) RunAPIProxy(ctx context.Context) error {
	client := &http.Client{Timeout: APITimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	slots := make(chan struct{}, MaxAPIRequests)
	sub, err := b.o.NATS.Subscribe(subjects.DownAPI(b.site), func(m *nats.Msg) {
		if m.Reply == "" {
			return // nobody would hear the answer
		}
		select {
		case slots <- struct{}{}:
		default:
			b.apiReply(m, http.StatusServiceUnavailable, fmt.Sprintf("the site is answering %d API requests from the cloud already; try again", MaxAPIRequests))
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			b.handleAPI(ctx, client, m)
		}()
	})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", subjects.DownAPI(b.site), err)
	}
	if err := b.o.NATS.Flush(); err != nil {
		b.log.Warn("api proxy: flush after subscribing", "err", err)
	}
	<-ctx.Done()
	_ = sub.Unsubscribe()
	wg.Wait()
	return nil
}

// checkAPIPath refuses what the proxy does not carry: anything but a plain
// absolute path, the login endpoints (a cloud user has its token already, and the
// gateway throttles logins by address, here loopback), and the endpoints meant for
// the local machine only.
func checkAPIPath(p string) (int, string) {
	// Checked as sent and as the gateway reads it (percent-decoded).
	if d, err := url.PathUnescape(p); err != nil {
		return http.StatusBadRequest, fmt.Sprintf("path %q: %v", p, err)
	} else if d != p {
		if code, why := checkAPIPath(d); code != 0 {
			return code, why
		}
	}
	switch {
	case !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\#?") ||
		strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") || strings.Contains(p, "/./") || len(p) > 2048:
		return http.StatusBadRequest, fmt.Sprintf("path %q is not a plain absolute path", p)
	}
	for _, c := range p {
		if c < 0x21 || c == 0x7f {
			return http.StatusBadRequest, "the path has a control character or a space"
		}
	}
	if strings.HasPrefix(p, "/auth/") && p != "/auth/me" || p == "/metrics" || p == "/ws" ||
		strings.HasPrefix(p, "/debug/") || p == "/healthz" || p == "/readyz" {
		return http.StatusForbidden, "path " + p + " is not served to the cloud"
	}
	return 0, ""
}

// checkControl applies the downlink allow-list (uplink.yaml downlink.allow) to the
// commands that come through the proxy, as to those on ems.{site}.down.cmd: what
// the cloud may control is the site's decision whichever way it comes. It knows
// the gateway's two command operations, POST /commands and POST
// /instances/{instance}/actions/{action}; everything else is left to the
// gateway's role checks.
func (b *Bridge) checkControl(ctx context.Context, method, path string, body []byte) (int, string) {
	if method != http.MethodPost {
		return 0, ""
	}
	p, _ := url.PathUnescape(path) // checked by checkAPIPath
	dl := b.Config().Downlink
	if p == "/commands" {
		var c struct {
			Channel uint32 `json:"channel"`
			Type    string `json:"type"`
			Point   uint32 `json:"point"`
		}
		if err := json.Unmarshal(body, &c); err != nil {
			return http.StatusBadRequest, "the command body is not a command: " + err.Error()
		}
		t, err := point.ParseType(c.Type)
		if err != nil || !dl.allowsPoint(c.Channel, t, c.Point) {
			return http.StatusForbidden, fmt.Sprintf("channel %d %s point %d is not on this site's allow-list of remotely controllable points (edge/uplink.yaml downlink.allow)", c.Channel, c.Type, c.Point)
		}
		return 0, ""
	}
	// Segment by segment as sent, each decoded as the router's parameters are.
	seg := strings.Split(path, "/")
	if len(seg) != 5 || seg[1] != "instances" || seg[3] != "actions" {
		return 0, ""
	}
	ref, err1 := url.PathUnescape(seg[2])
	action, err2 := url.PathUnescape(seg[4])
	if err1 != nil || err2 != nil {
		return http.StatusBadRequest, "the action path does not decode"
	}
	id, err := strconv.ParseUint(ref, 10, 32)
	if err != nil {
		v, herr := b.o.Redis.HGet(ctx, keyspace.InstanceNames, ref).Result()
		if herr != nil {
			return http.StatusForbidden, fmt.Sprintf("instance %q is not on this site's allow-list of remotely controllable points", ref)
		}
		if id, err = strconv.ParseUint(v, 10, 32); err != nil {
			return http.StatusForbidden, fmt.Sprintf("instance %q is not on this site's allow-list of remotely controllable points", ref)
		}
	}
	if !dl.allowsAction(uint32(id), action) {
		return http.StatusForbidden, fmt.Sprintf("instance %d action %q is not on this site's allow-list of remotely controllable points (edge/uplink.yaml downlink.allow)", id, action)
	}
	return 0, ""
}

// claimedUser is the cloud user a delegation token names, for the audit record of
// a refusal; not verified (the gateway verifies, and never saw this request).
func claimedUser(authorization string) string {
	tok, _ := strings.CutPrefix(authorization, "Bearer ")
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Sub string `json:"sub"`
	}
	if json.Unmarshal(b, &c) != nil || c.Sub == "" || len(c.Sub) > 64 {
		return ""
	}
	return "cloud:" + c.Sub + " (unverified)"
}

func (b *Bridge) handleAPI(ctx context.Context, client *http.Client, m *nats.Msg) {
	method, path, query := m.Header.Get(uplink.APIHeaderMethod), m.Header.Get(uplink.APIHeaderPath), m.Header.Get(uplink.APIHeaderQuery)
	if !apiMethods[method] {
		b.apiReply(m, http.StatusMethodNotAllowed, fmt.Sprintf("method %q is not proxied", method))
		return
	}
	if code, why := checkAPIPath(path); code != 0 {
		b.apiReply(m, code, why)
		return
	}
	if strings.ContainsAny(query, "#\x00\r\n ") {
		b.apiReply(m, http.StatusBadRequest, "the query has a character a URL query cannot have")
		return
	}
	if !strings.HasPrefix(m.Header.Get("Authorization"), "Bearer ") {
		b.apiReply(m, http.StatusUnauthorized, "a proxied request carries the hub's delegation token")
		return
	}
	if code, why := b.checkControl(ctx, method, path, m.Data); code != 0 {
		b.audit(ctx, "command_rejected", claimedUser(m.Header.Get("Authorization")), "kind", "api proxy", "path", path, "reason", why)
		b.apiReply(m, code, why)
		return
	}
	target := b.gatewayURL() + path
	if query != "" {
		target += "?" + query
	}
	ctx, cancel := context.WithTimeout(ctx, APITimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(m.Data))
	if err != nil {
		b.apiReply(m, http.StatusBadRequest, "bad request: "+err.Error())
		return
	}
	for _, h := range apiRequestHeaders {
		if v := m.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		status := http.StatusBadGateway
		if errors.Is(err, context.DeadlineExceeded) {
			status = http.StatusGatewayTimeout
		}
		b.log.Warn("api proxy: the gateway did not answer", "path", path, "err", err)
		b.apiReply(m, status, "the site's gateway did not answer: "+err.Error())
		return
	}
	defer resp.Body.Close()
	limit := b.o.NATS.MaxPayload() - apiHeaderRoom
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	switch {
	case err != nil:
		b.apiReply(m, http.StatusBadGateway, "reading the gateway's answer: "+err.Error())
		return
	case int64(len(body)) > limit:
		b.apiReply(m, http.StatusBadGateway, fmt.Sprintf("the gateway's answer is larger than %d bytes, the most one NATS message carries; ask for less (a pattern, a limit, a shorter range)", limit))
		return
	}
	r := &nats.Msg{Data: body, Header: nats.Header{}}
	r.Header.Set(uplink.APIHeaderStatus, strconv.Itoa(resp.StatusCode))
	for _, h := range apiReplyHeaders {
		if v := resp.Header.Get(h); v != "" {
			r.Header.Set(h, v)
		}
	}
	if err := m.RespondMsg(r); err != nil {
		b.log.Warn("api proxy: reply not sent", "path", path, "err", err)
	}
}

// apiReply answers a problem of the proxy itself, shaped as the gateway's are.
func (b *Bridge) apiReply(m *nats.Msg, status int, detail string) {
	body, _ := json.Marshal(map[string]any{"title": http.StatusText(status), "status": status, "detail": detail})
	r := &nats.Msg{Data: body, Header: nats.Header{}}
	r.Header.Set(uplink.APIHeaderStatus, strconv.Itoa(status))
	r.Header.Set("Content-Type", "application/problem+json")
	if err := m.RespondMsg(r); err != nil {
		b.log.Warn("api proxy: reply not sent", "status", status, "err", err)
	}
}
