package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"regexp"
	"time"
)

// The middleware of the public APIs (the site gateway and the cloud hub): request
// ids with an access log, and the security headers of an API answer.

// RequestInfo travels in a request's context, so that whoever authenticates the
// caller can name them in the access log.
type RequestInfo struct {
	ID   string // the X-Request-Id of the request and its answer
	User string // set by the authentication once it knows the caller
}

type requestInfoKey struct{}

// RequestInfoFrom returns the request's info, or nil outside AccessLog.
func RequestInfoFrom(ctx context.Context) *RequestInfo {
	i, _ := ctx.Value(requestInfoKey{}).(*RequestInfo)
	return i
}

// HeaderRequestID names a request and its answer.
const HeaderRequestID = "X-Request-Id"

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// statusWriter remembers the status and size of an answer for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (WebSocket upgrade,
// deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// AccessLog gives every request an id (the client's X-Request-Id when it is 1–64
// of [A-Za-z0-9._-], else a new one), answers with it, and logs the request when
// it ends — at warn for a 5xx — with the user RequestInfo learnt. The probes
// (/healthz, /readyz, /metrics) are not logged. done, when set, sees every
// answer's status (metrics).
func AccessLog(log *slog.Logger, done func(status int)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			id := r.Header.Get(HeaderRequestID)
			if !requestIDRE.MatchString(id) {
				b := make([]byte, 8)
				_, _ = rand.Read(b)
				id = hex.EncodeToString(b)
			}
			w.Header().Set(HeaderRequestID, id)
			info := &RequestInfo{ID: id}
			sw := &statusWriter{ResponseWriter: w}
			next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info)))
			if done != nil {
				done(sw.status)
			}
			if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics" {
				return
			}
			lvl := slog.LevelInfo
			if sw.status >= 500 {
				lvl = slog.LevelWarn
			}
			log.Log(r.Context(), lvl, "http", "method", r.Method, "path", r.URL.Path, "status", sw.status,
				"bytes", sw.bytes, "ms", time.Since(start).Milliseconds(), "user", info.User,
				"remote", r.RemoteAddr, "request_id", id)
		})
	}
}

// SecurityHeaders are set on every API answer: it is never framed, sniffed,
// cached or allowed to load anything; with TLS, browsers are told to keep to it.
// A handler serving pages (the web UI) sets its own Content-Security-Policy.
func SecurityHeaders(tlsOn bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
			h.Set("Cross-Origin-Resource-Policy", "same-origin")
			h.Set("Cache-Control", "no-store")
			if tlsOn {
				h.Set("Strict-Transport-Security", "max-age=31536000")
			}
			next.ServeHTTP(w, r)
		})
	}
}
