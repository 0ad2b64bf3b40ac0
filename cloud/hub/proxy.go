package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/voltageems/voltage/shared/auth"
	"github.com/voltageems/voltage/shared/httpapi"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/uplink"
)

// The site API proxy: ANY /sites/{site}/api/{path} sends the request of a cloud
// user to the site's own API gateway across the leaf link, as a NATS request on
// ems.{site}.down.api, so the site pages of the web UI work through the hub. The
// hub checks that the user reaches the site; the site's gateway checks the role
// each operation needs, against the delegation token the hub signs for the
// request (trustkey.go), and only when the site trusts this hub's key. The edge
// bridge (edge/bridge/apiproxy.go) answers by calling its gateway on loopback.
//
// On the wire the request and the reply are one NATS message each, the body as
// the payload and the rest in NATS headers (uplink.APIHeader*); the reply comes on
// ems.{site}.reply.{token}, inside the site's permissions like a command's.

// ProxyTimeout bounds one proxied request, from the hub's publish to the site's
// reply.
const ProxyTimeout = 10 * time.Second

// ProxyMaxBody bounds a proxied request body; the edge bounds the reply the same
// way (uplink.APIMaxBody).
const ProxyMaxBody = uplink.APIMaxBody

// proxyMethods are the methods the site API uses.
var proxyMethods = map[string]bool{http.MethodGet: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true}

// proxyRequestHeaders are the client's headers that go to the site besides the
// delegation token (never the client's own cloud token).
var proxyRequestHeaders = []string{"Content-Type", "Accept"}

// proxyReplyHeaders are the site's answer headers that come back.
var proxyReplyHeaders = []string{"Content-Type", "Location", "Link", "Retry-After"}

// writeProblem answers an RFC 9457 problem, as Huma's errors look.
func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"title": http.StatusText(status), "status": status, "detail": detail})
}

// mountProxy routes the proxy and the trust key on r, beside the Huma API.
func (a *api) mountProxy(r chi.Router, hapi huma.API) {
	r.HandleFunc("/sites/{site}/api", a.proxy)
	r.HandleFunc("/sites/{site}/api/*", a.proxy)
	r.Get("/trust-key", a.serveTrustKey)
	// The spec documents the proxy; chi routes it (a path parameter cannot span
	// segments in Huma).
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		hapi.OpenAPI().AddOperation(&huma.Operation{
			OperationID: "siteAPI" + strings.ToUpper(m[:1]) + strings.ToLower(m[1:]), Method: m,
			Path: "/sites/{site}/api/{path}", Tags: []string{"site API"},
			Summary: "Call the site's own API (its gateway) through the hub",
			Description: "The request goes to the site's gateway across the leaf link (ems.{site}.down.api) " +
				"with a delegation token the hub signs for you (your user as cloud:{user}, your cloud role); " +
				"the answer is the gateway's, as its own OpenAPI document describes it, except that the site " +
				"refusing the delegation is a 403 (a 401 always means your cloud token). The site must trust " +
				"this hub (GET /trust-key, apigateway.yaml cloud_trust) and checks the role of the operation " +
				"itself. Bodies up to 1 MiB less 16 KiB each way, 10 s. 503 when the site is not connected, " +
				"504 when it did not answer in time. WebSocket (/ws) is not proxied.",
			Parameters: []*huma.Param{
				{Name: "site", In: "path", Required: true, Schema: &huma.Schema{Type: "string", MaxLength: new(64), Pattern: "^[A-Za-z0-9_-]+$"}},
				{Name: "path", In: "path", Required: true, Description: "the gateway path without its leading '/', e.g. points or alarms/active",
					Schema: &huma.Schema{Type: "string"}},
			},
			Security:   []map[string][]string{{"bearer": {}}},
			Extensions: map[string]any{roleExtension: auth.Viewer.String()},
			Responses: map[string]*huma.Response{
				"default": {Description: "the site gateway's answer"},
				"401":     {Description: "no or an invalid cloud access token"},
				"403":     {Description: "the site is not in your scope, refuses the hub's delegation (cloud_trust), or your role there does not allow the operation"},
				"404":     {Description: "no such site"},
				"413":     {Description: "the body is too large"},
				"502":     {Description: "the site's answer was unreadable or too large"},
				"503":     {Description: "the site is not connected or does not serve its API to the hub"},
				"504":     {Description: "the site did not answer in time"},
			},
		})
	}
}

// trustKeyBody is GET /trust-key's answer.
type trustKeyBody struct {
	PublicKey string `json:"public_key"` // "ed25519:" + base64: apigateway.yaml cloud_trust.public_key
	PEM       string `json:"pem"`
	Algorithm string `json:"algorithm"`
	Issuer    string `json:"issuer"`
	TTL       int    `json:"ttl_s"`
}

// serveTrustKey answers the hub's public delegation key: public, like the spec.
func (a *api) serveTrustKey(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(trustKeyBody{PublicKey: a.trust.PublicText(), PEM: a.trust.PublicPEM(),
		Algorithm: "EdDSA", Issuer: DelegationIssuer, TTL: int(DelegationTTL.Seconds())})
}

// proxy is ANY /sites/{site}/api/{path}.
func (a *api) proxy(w http.ResponseWriter, r *http.Request) {
	site := chi.URLParam(r, "site")
	if err := subjects.ValidSiteID(site); err != nil {
		writeProblem(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	raw, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !found || raw == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="voltage-cloud"`)
		writeProblem(w, http.StatusUnauthorized, "missing bearer access token (POST /auth/login)")
		return
	}
	p, _, u, err := a.tokens.VerifyUser(r.Context(), raw)
	switch {
	case errors.Is(err, auth.ErrBadToken):
		w.Header().Set("WWW-Authenticate", `Bearer realm="voltage-cloud", error="invalid_token"`)
		writeProblem(w, http.StatusUnauthorized, err.Error())
		return
	case err != nil:
		a.log.Warn("token check failed", "err", err)
		writeProblem(w, http.StatusServiceUnavailable, "cannot check the token now; try again")
		return
	}
	info := httpapi.RequestInfoFrom(r.Context())
	if info != nil {
		info.User = p.User
	}
	if !u.CoversSite(site) {
		writeProblem(w, http.StatusForbidden, "site "+site+" is not in your scope")
		return
	}
	if a.h.reg.get(site) == nil {
		writeProblem(w, http.StatusNotFound, "no site "+site)
		return
	}
	if !proxyMethods[r.Method] {
		w.Header().Set("Allow", "GET, POST, PUT, PATCH, DELETE")
		writeProblem(w, http.StatusMethodNotAllowed, r.Method+" is not proxied to sites")
		return
	}
	path := strings.TrimPrefix(r.URL.EscapedPath(), "/sites/"+site+"/api")
	if path == "" {
		path = "/"
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, ProxyMaxBody))
	if err != nil {
		writeProblem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", ProxyMaxBody))
		return
	}
	token, err := a.trust.delegate(site, p.User, p.Role.String(), time.Now())
	if err != nil {
		writeProblem(w, http.StatusInternalServerError, err.Error())
		return
	}
	m := &nats.Msg{Subject: subjects.DownAPI(site), Data: body, Header: nats.Header{}}
	m.Header.Set(uplink.APIHeaderMethod, r.Method)
	m.Header.Set(uplink.APIHeaderPath, path)
	if r.URL.RawQuery != "" {
		m.Header.Set(uplink.APIHeaderQuery, r.URL.RawQuery)
	}
	m.Header.Set("Authorization", "Bearer "+token)
	for _, h := range proxyRequestHeaders {
		if v := r.Header.Get(h); v != "" {
			m.Header.Set(h, v)
		}
	}
	if info != nil {
		m.Header.Set("X-Request-Id", info.ID)
	}
	reply, err := a.h.proxyRequest(r.Context(), site, m)
	status := 0
	if err == nil {
		status, err = strconv.Atoi(reply.Header.Get(uplink.APIHeaderStatus))
		if err != nil || status < 100 || status > 599 {
			err = fmt.Errorf("site %s sent a reply without a valid %s", site, uplink.APIHeaderStatus)
		}
	}
	if r.Method != http.MethodGet {
		outcome := strconv.Itoa(status)
		if err != nil {
			outcome = err.Error()
		}
		a.h.audit(r.Context(), "site_api", p.User, site, "method", r.Method, "path", path, "outcome", outcome)
	}
	switch {
	case errors.Is(err, ErrSiteUnreachable):
		writeProblem(w, http.StatusServiceUnavailable, "site "+site+" is not connected or does not serve its API to the hub")
		return
	case errors.Is(err, errProxyTimeout):
		writeProblem(w, http.StatusGatewayTimeout, fmt.Sprintf("site %s did not answer within %s", site, ProxyTimeout))
		return
	case err != nil:
		a.log.Warn("site API proxy failed", "site", site, "path", path, "err", err)
		writeProblem(w, http.StatusBadGateway, err.Error())
		return
	}
	if status == http.StatusUnauthorized {
		// A 401 from the hub means the caller's cloud token is bad (and makes a
		// client refresh it); the site refusing the hub's delegation is not that.
		writeProblem(w, http.StatusForbidden, "site "+site+" refused the cloud's delegation (its apigateway.yaml cloud_trust must hold this hub's GET /trust-key): "+problemDetail(reply.Data))
		return
	}
	for _, h := range proxyReplyHeaders {
		if v := reply.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.Header().Set("X-Voltage-Site", site)
	w.WriteHeader(status)
	_, _ = w.Write(reply.Data)
}

// problemDetail is the detail of a problem+json body, or the body's start.
func problemDetail(body []byte) string {
	var p struct {
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &p) == nil && p.Detail != "" {
		return p.Detail
	}
	if len(body) > 200 {
		body = body[:200]
	}
	return string(body)
}

var errProxyTimeout = errors.New("the site did not answer in time")

// proxyRequest sends m to the site and waits for its reply, on a reply subject
// inside the site's scope (as sendCommand does).
func (h *hub) proxyRequest(ctx context.Context, site string, m *nats.Msg) (*nats.Msg, error) {
	m.Reply = subjects.CommandReply(site, nuid.Next())
	sub, err := h.nc.SubscribeSync(m.Reply)
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", m.Reply, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	ctx, cancel := context.WithTimeout(ctx, ProxyTimeout)
	defer cancel()
	if err := h.nc.FlushWithContext(ctx); err != nil {
		return nil, fmt.Errorf("flush: %w", err)
	}
	if err := h.nc.PublishMsg(m); err != nil {
		return nil, fmt.Errorf("publish the request: %w", err)
	}
	reply, err := sub.NextMsgWithContext(ctx)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, ErrSiteUnreachable
	case errors.Is(err, context.DeadlineExceeded):
		return nil, errProxyTimeout
	case err != nil:
		return nil, fmt.Errorf("wait for the reply: %w", err)
	}
	// nats.go turns a 503 status message into ErrNoResponders only for its own
	// Request; with a reply subject of our own it arrives as a message.
	if len(reply.Data) == 0 && reply.Header.Get("Status") == "503" {
		return nil, ErrSiteUnreachable
	}
	return reply, nil
}
