package apigateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humachi"
	"github.com/go-chi/chi/v5"

	"github.com/voltageems/voltage/shared/httpapi"
	"github.com/voltageems/voltage/shared/obs"
	"github.com/voltageems/voltage/shared/service"
)

// APIVersion is the version of the public API in the spec. It changes when the
// API does, not with every build.
const APIVersion = "1.0.0"

// metaRole is the operation metadata key holding the Role an operation needs.
const metaRole = "voltage-role"

// roleExtension shows an operation's role in the OpenAPI document.
const roleExtension = "x-voltage-role"

// handler is the whole public HTTP surface: the observability endpoints of the
// shared server, and the Huma API behind request ids, access logs, security
// headers, CORS and body limits.
func (s *server) handler(o *obs.Server) http.Handler {
	r := chi.NewRouter()
	r.Use(httpapi.AccessLog(s.log, func(status int) { s.metrics.requests.WithLabelValues(strconv.Itoa(status/100) + "xx").Inc() }),
		httpapi.SecurityHeaders(s.set.TLS.CertFile != ""), s.cors)
	if o != nil {
		oh := o.Handler()
		r.Get("/healthz", oh.ServeHTTP)
		r.Get("/readyz", oh.ServeHTTP)
		r.Get("/metrics", func(w http.ResponseWriter, req *http.Request) {
			if !loopback(req.RemoteAddr) {
				http.NotFound(w, req) // the gateway is public; metrics are for the local scraper
				return
			}
			oh.ServeHTTP(w, req)
		})
	}
	if s.hub != nil {
		r.Get("/ws", s.serveWS)
	}
	s.api = s.newAPI(r)
	mountWebUI(r)
	return r
}

// newAPI creates the Huma API on r with every operation.
func (s *server) newAPI(r chi.Router) huma.API {
	hc := huma.DefaultConfig("VoltageEMS edge site API", APIVersion)
	hc.Info.Description = "The public API of one VoltageEMS edge site: realtime points, commands, " +
		"instances, alarms, history, configuration and users. Every operation but login and " +
		"refresh needs a bearer access token; the role each needs is in x-voltage-role " +
		"(viewer < operator < engineer < admin)."
	hc.OpenAPIPath = "" // served below, outside the role table, as public documents
	hc.DocsPath = ""    // no third-party scripts on the site's public door
	hc.SchemasPath = ""
	hc.CreateHooks = nil // no $schema links in bodies
	hc.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", BearerFormat: "JWT"},
	}
	api := humachi.New(r, hc)
	api.UseMiddleware(s.authorize(api))
	s.register(api)

	httpapi.ServeSpecs(r.Get, api.OpenAPI())
	return api
}

// register adds every operation of the API.
func (s *server) register(api huma.API) {
	s.registerAuth(api)
	s.registerUsers(api)
	s.registerSite(api)
	s.registerPoints(api)
	s.registerCommands(api)
	s.registerInstances(api)
	s.registerAlarms(api)
	s.registerRules(api)
	s.registerHistory(api)
	s.registerConfig(api)
	s.registerAudit(api)
}

// op registers one operation with the role it needs. Every operation goes through
// here: the role is in its metadata (checked by authorize) and in the spec.
func op[I, O any](s *server, api huma.API, role Role, o huma.Operation, h func(context.Context, *I) (*O, error)) {
	o.Metadata = map[string]any{metaRole: role}
	o.Extensions = map[string]any{roleExtension: role.String()}
	if role != Public {
		o.Security = []map[string][]string{{"bearer": {}}}
		o.Errors = append(o.Errors, http.StatusUnauthorized, http.StatusForbidden)
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = s.set.MaxBodyBytes
	}
	huma.Register(api, o, h)
}

type principalKey struct{}

// caller is the authenticated user of a request (set by authorize).
func caller(ctx context.Context) principal {
	p, _ := ctx.Value(principalKey{}).(principal)
	return p
}

// authorize checks every operation against its role: a missing role fails closed,
// Public passes, everything else needs a valid access token of a role at least
// the operation's.
func (s *server) authorize(api huma.API) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		need, ok := ctx.Operation().Metadata[metaRole].(Role)
		if !ok {
			_ = huma.WriteErr(api, ctx, http.StatusInternalServerError, "operation has no role; refused")
			return
		}
		if need == Public {
			next(ctx)
			return
		}
		raw, found := strings.CutPrefix(ctx.Header("Authorization"), "Bearer ")
		if !found || raw == "" {
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="voltage"`)
			_ = huma.WriteErr(api, ctx, http.StatusUnauthorized, "missing bearer access token (POST /auth/login)")
			return
		}
		p, err := s.verifyCaller(ctx.Context(), raw)
		switch {
		case errors.Is(err, errBadToken):
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="voltage", error="invalid_token"`)
			_ = huma.WriteErr(api, ctx, http.StatusUnauthorized, err.Error())
			return
		case err != nil:
			s.log.Warn("token check failed", "err", err)
			_ = huma.WriteErr(api, ctx, http.StatusServiceUnavailable, "cannot check the token now; try again")
			return
		}
		if info := httpapi.RequestInfoFrom(ctx.Context()); info != nil {
			info.User = p.User
		}
		if p.Role < need {
			_ = huma.WriteErr(api, ctx, http.StatusForbidden, "this operation needs the role "+need.String()+"; you are "+p.Role.String())
			return
		}
		next(huma.WithValue(ctx, principalKey{}, p))
	}
}

// cors answers the origins of settings' cors.allowed_origins, and only those.
func (s *server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !slices.Contains(s.set.CORS.AllowedOrigins, origin) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Expose-Headers", "X-Request-Id, Link")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func loopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// clientAddr is the address login throttling counts by: the peer's IP.
func clientAddr(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}

// internalAddr is the base URL of an internal service.
func internalAddr(site interface {
	ListenAddr(string, string) string
}, name string) string {
	return "http://" + site.ListenAddr(name, service.DefaultAddrs[name])
}
