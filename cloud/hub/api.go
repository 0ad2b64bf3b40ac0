package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humachi"
	"github.com/go-chi/chi/v5"

	"github.com/voltageems/voltage/shared/auth"
	"github.com/voltageems/voltage/shared/httpapi"
)

// APIVersion is the version of the cloud API in its spec. It changes when the API
// does, not with every build.
const APIVersion = "1.0.0"

// metaRole is the operation metadata key holding the role an operation needs.
const metaRole = "voltage-role"

// roleExtension shows an operation's role in the OpenAPI document.
const roleExtension = "x-voltage-role"

// maxBodyBytes bounds every request body.
const maxBodyBytes = 64 << 10

// api is the cloud API: sites, fleet state, history, commands, auth and users.
type api struct {
	h        *hub
	users    *auth.Users
	tokens   *auth.Tokens
	throttle *auth.Throttle
	trust    *trustKey // signs the site API proxy's delegation tokens (proxy.go)
	log      *slog.Logger
}

// newAPI opens the auth store (JetStream KV), bootstraps the admin on the first
// start, and builds the HTTP handler.
func (h *hub) newAPI(ctx context.Context) (http.Handler, error) {
	a := &api{h: h, log: h.log}
	var store *auth.KVStore
	var b backoff
	for {
		kv, err := auth.NewKVStore(ctx, h.js, auth.KVConfig{SessionMaxAge: h.cfg.Auth.RefreshTTL.Duration + 24*time.Hour})
		if err == nil {
			store = kv
			break
		}
		h.log.Warn("cannot open the users store (JetStream KV); retrying", "err", err)
		if !sleep(ctx, b.next()) {
			return nil, fmt.Errorf("open the users store: %w", err)
		}
	}
	for b = (backoff{}); ; {
		k, err := loadTrustKey(ctx, h.js)
		if err == nil {
			a.trust = k
			break
		}
		h.log.Warn("cannot open the trust key (JetStream KV); retrying", "err", err)
		if !sleep(ctx, b.next()) {
			return nil, fmt.Errorf("open the trust key: %w", err)
		}
	}
	h.log.Info("cloud trust key: sites that let cloud users in through the hub configure it as apigateway.yaml cloud_trust.public_key (also GET /trust-key)",
		"public_key", a.trust.PublicText())
	a.users = auth.NewUsers(store, 0)
	a.tokens = auth.NewTokens(store, a.users, auth.TokenConfig{
		Issuer: "voltage-cloud", AccessTTL: h.cfg.Auth.AccessTTL.Duration, RefreshTTL: h.cfg.Auth.RefreshTTL.Duration,
	})
	a.throttle = auth.NewThrottle(store, auth.LoginLimits{
		PerAddressPerMinute: h.cfg.Auth.PerAddressPerMinute, MaxFailures: h.cfg.Auth.MaxFailures, Lockout: h.cfg.Auth.Lockout.Duration,
	})
	out := h.cfg.AdminOut
	if out == nil {
		out = os.Stderr
	}
	if _, err := a.users.Bootstrap(ctx, auth.Bootstrap{
		Password: os.Getenv(auth.EnvAdminPassword), MinLength: 12, Out: out, Service: ServerName,
	}); err != nil {
		return nil, fmt.Errorf("create the first admin: %w", err)
	}
	r := chi.NewRouter()
	r.Use(httpapi.AccessLog(a.log, nil), httpapi.SecurityHeaders(false))
	a.mount(r)
	mountWebUI(r)
	return r, nil
}

// mount creates the Huma API on r with every operation and the spec documents.
func (a *api) mount(r chi.Router) huma.API {
	hc := huma.DefaultConfig("VoltageEMS cloud API", APIVersion)
	hc.Info.Description = "The fleet API of the VoltageEMS cloud hub: sites and their status, latest " +
		"values, history, active alarms, and commands to a site. Every operation but login and " +
		"refresh needs a bearer access token; the role each needs is in x-voltage-role " +
		"(viewer < operator < engineer < admin), and a user reaches only the sites of its scope."
	hc.OpenAPIPath = ""
	hc.DocsPath = ""
	hc.SchemasPath = ""
	hc.CreateHooks = nil
	hc.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", BearerFormat: "JWT"},
	}
	hapi := humachi.New(r, hc)
	hapi.UseMiddleware(a.authorize(hapi))
	a.registerAuth(hapi)
	a.registerUsers(hapi)
	a.registerSites(hapi)
	a.registerAudit(hapi)
	a.mountProxy(r, hapi)

	httpapi.ServeSpecs(r.Get, hapi.OpenAPI())
	return hapi
}

// op registers one operation with the role it needs: in its metadata (checked by
// authorize) and in the spec.
func op[I, O any](hapi huma.API, role auth.Role, o huma.Operation, h func(context.Context, *I) (*O, error)) {
	o.Metadata = map[string]any{metaRole: role}
	o.Extensions = map[string]any{roleExtension: role.String()}
	if role != auth.Public {
		o.Security = []map[string][]string{{"bearer": {}}}
		o.Errors = append(o.Errors, http.StatusUnauthorized, http.StatusForbidden)
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = maxBodyBytes
	}
	huma.Register(hapi, o, h)
}

// principal is the authenticated caller: its role and its site scope.
type principal struct {
	auth.Principal
	user auth.User
}

type principalKey struct{}

func caller(ctx context.Context) principal {
	p, _ := ctx.Value(principalKey{}).(principal)
	return p
}

// authorize checks every operation against its role: a missing role fails closed,
// Public passes, everything else needs a valid access token of at least that role.
// The site scope is checked by the operations that name a site (siteFor).
func (a *api) authorize(hapi huma.API) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		need, ok := ctx.Operation().Metadata[metaRole].(auth.Role)
		if !ok {
			_ = huma.WriteErr(hapi, ctx, http.StatusInternalServerError, "operation has no role; refused")
			return
		}
		if need == auth.Public {
			next(ctx)
			return
		}
		raw, found := strings.CutPrefix(ctx.Header("Authorization"), "Bearer ")
		if !found || raw == "" {
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="voltage-cloud"`)
			_ = huma.WriteErr(hapi, ctx, http.StatusUnauthorized, "missing bearer access token (POST /auth/login)")
			return
		}
		p, _, u, err := a.tokens.VerifyUser(ctx.Context(), raw)
		switch {
		case errors.Is(err, auth.ErrBadToken):
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="voltage-cloud", error="invalid_token"`)
			_ = huma.WriteErr(hapi, ctx, http.StatusUnauthorized, err.Error())
			return
		case err != nil:
			a.log.Warn("token check failed", "err", err)
			_ = huma.WriteErr(hapi, ctx, http.StatusServiceUnavailable, "cannot check the token now; try again")
			return
		}
		if info := httpapi.RequestInfoFrom(ctx.Context()); info != nil {
			info.User = p.User
		}
		if p.Role < need {
			_ = huma.WriteErr(hapi, ctx, http.StatusForbidden, "this operation needs the role "+need.String()+"; you are "+p.Role.String())
			return
		}
		next(huma.WithValue(ctx, principalKey{}, principal{Principal: p, user: u}))
	}
}
