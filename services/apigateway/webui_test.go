package apigateway_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestWebUIMounted: the gateway serves the embedded UI at / with its own CSP,
// while every API path keeps the API's answer and headers.
func TestWebUIMounted(t *testing.T) {
	g := newGateway(t)
	get := func(path, accept string) reply {
		r, err := http.NewRequest("GET", g.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Accept", accept)
		return send(t, r)
	}
	html := "text/html,*/*;q=0.8"

	ui := get("/", html)
	if ui.status != 200 || !strings.Contains(string(ui.body), "<div id=\"app\">") {
		t.Fatalf("GET /: %d %.200s", ui.status, ui.body)
	}
	if csp := ui.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "connect-src 'self' ws://") {
		t.Fatalf("UI CSP %q", csp)
	}
	// A reloaded page of the app gets the app; the app routes by #fragment.
	if r := get("/some/page", html); r.status != 200 || !strings.Contains(string(r.body), "<div id=\"app\">") {
		t.Fatalf("GET /some/page: %d", r.status)
	}
	// API paths stay the API's, even when a browser asks for HTML.
	api := get("/channels", html)
	if api.status != 401 || api.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("GET /channels: %d %s", api.status, api.header.Get("Content-Type"))
	}
	if csp := api.header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'none'") {
		t.Fatalf("API CSP %q", csp)
	}
	if r := get("/openapi.json", html); r.status != 200 || !strings.Contains(string(r.body), `"openapi"`) {
		t.Fatalf("GET /openapi.json: %d", r.status)
	}
	// An API client's unknown path is a problem, not a page.
	if r := get("/no-such-operation", "application/json"); r.status != 404 || r.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("GET /no-such-operation: %d %s", r.status, r.header.Get("Content-Type"))
	}
}
