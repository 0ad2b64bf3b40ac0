package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

var testFiles = fstest.MapFS{
	"index.html":           {Data: []byte("<!doctype html><title>app</title>")},
	"assets/index-abc.js":  {Data: []byte("console.log(1)")},
	"assets/index-abc.css": {Data: []byte("body{}")},
}

func get(t *testing.T, h http.Handler, method, path, accept string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	r.Host = "site.local:6005"
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandler(t *testing.T) {
	h := handler(testFiles, "")
	html := "text/html,application/xhtml+xml,*/*;q=0.8"
	cases := []struct {
		name, method, path, accept string
		status                     int
		body, cache, ctype         string
	}{
		{"root is the app", "GET", "/", html, 200, "<title>app</title>", "no-cache", "text/html"},
		{"index.html itself", "GET", "/index.html", html, 200, "<title>app</title>", "no-cache", "text/html"},
		{"hashed asset cached for a year", "GET", "/assets/index-abc.js", "*/*", 200, "console.log", "immutable", "javascript"},
		{"css", "GET", "/assets/index-abc.css", "text/css,*/*", 200, "body{}", "immutable", "text/css"},
		{"reload of a page falls back to the app", "GET", "/some/page", html, 200, "<title>app</title>", "no-cache", "text/html"},
		{"HEAD", "HEAD", "/", html, 200, "", "no-cache", "text/html"},
		{"an API client's unknown path is a problem", "GET", "/no-such-api", "application/json", 404, `"status":404`, "no-store", "application/problem+json"},
		{"a missing asset is not the app", "GET", "/assets/gone.js", "*/*", 404, `"status":404`, "no-store", "application/problem+json"},
		{"POST is never the app", "POST", "/", html, 404, `"status":404`, "no-store", "application/problem+json"},
		{"dot-dot stays inside", "GET", "/../../etc/passwd", html, 200, "<title>app</title>", "no-cache", "text/html"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := get(t, h, c.method, c.path, c.accept)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, c.status, w.Body)
			}
			if !strings.Contains(w.Body.String(), c.body) {
				t.Errorf("body %q, want %q in it", w.Body, c.body)
			}
			if cc := w.Header().Get("Cache-Control"); !strings.Contains(cc, c.cache) {
				t.Errorf("Cache-Control %q, want %q", cc, c.cache)
			}
			if ct := w.Header().Get("Content-Type"); !strings.Contains(ct, c.ctype) {
				t.Errorf("Content-Type %q, want %q", ct, c.ctype)
			}
		})
	}
}

func TestHandlerCSP(t *testing.T) {
	h := handler(testFiles, "")
	csp := get(t, h, "GET", "/", "text/html").Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "connect-src 'self' ws://site.local:6005 wss://site.local:6005", "frame-ancestors 'none'", "object-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") || strings.Contains(csp, "*") {
		t.Errorf("CSP %q allows more than the origin", csp)
	}
	// A Host header that could end the directive is left out, not copied.
	r := httptest.NewRequest("GET", "/", nil)
	r.Host = "evil; script-src *"
	r.Header.Set("Accept", "text/html")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if got := w.Header().Get("Content-Security-Policy"); strings.Contains(got, "evil") || strings.Contains(got, "*") {
		t.Errorf("CSP with a hostile Host: %q", got)
	}
}

// TestEmbeddedApp serves the real embedded build: its index.html loads only
// files that exist, from the origin.
func TestEmbeddedApp(t *testing.T) {
	h := Handler()
	w := get(t, h, "GET", "/", "text/html")
	if w.Code != 200 {
		t.Fatalf("GET /: %d", w.Code)
	}
	body := w.Body.String()
	n := 0
	for _, part := range strings.Split(body, `"`) {
		if strings.HasPrefix(part, "/assets/") {
			n++
			if a := get(t, h, "GET", part, "*/*"); a.Code != 200 {
				t.Errorf("index.html refers to %s: %d", part, a.Code)
			}
		} else if strings.HasPrefix(part, "http:") || strings.HasPrefix(part, "https:") || strings.HasPrefix(part, "//") {
			t.Errorf("index.html loads %s from elsewhere", part)
		}
	}
	if n == 0 {
		t.Fatalf("index.html loads no assets: %s", body)
	}
}

func TestFleetHandler(t *testing.T) {
	h := handler(fstest.MapFS{"index.html": {Data: []byte("<html><head><title>app</title></head></html>")}}, "fleet")
	for _, p := range []string{"/", "/index.html", "/x"} {
		w := get(t, h, "GET", p, "text/html")
		if w.Code != 200 || !strings.Contains(w.Body.String(), `<head><meta name="voltage-app" content="fleet"><title>`) {
			t.Fatalf("GET %s: %d %s", p, w.Code, w.Body)
		}
		if !strings.Contains(w.Header().Get("Content-Security-Policy"), "script-src 'self'") {
			t.Fatalf("GET %s: no CSP", p)
		}
	}
	if w := get(t, handler(testFiles, ""), "GET", "/", "text/html"); strings.Contains(w.Body.String(), "voltage-app") {
		t.Fatalf("the site app is marked: %s", w.Body)
	}
}
