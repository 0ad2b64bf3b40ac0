package apigateway_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/voltageems/voltage/services/apigateway"
)

// TestCheckedInSpecMatchesCode fails when the API changed and openapi/ was not
// refreshed: run `go generate ./services/apigateway`.
func TestCheckedInSpecMatchesCode(t *testing.T) {
	v31, v30, err := apigateway.Spec()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]byte{"openapi.json": v31, "openapi-3.0.json": v30} {
		got, err := os.ReadFile(filepath.Join("..", "..", "openapi", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("openapi/%s differs from the code; run `go generate ./services/apigateway` and commit the result", name)
		}
	}
	var doc struct{ OpenAPI string }
	_ = json.Unmarshal(v30, &doc)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi-3.0.json is version %q", doc.OpenAPI)
	}
}

// TestServedSpecIsCheckedInSpec compares what a live gateway serves (public, no
// token) with the checked-in documents.
func TestServedSpecIsCheckedInSpec(t *testing.T) {
	g := newGateway(t)
	for path, file := range map[string]string{"/openapi.json": "openapi.json", "/openapi-3.0.json": "openapi-3.0.json"} {
		r := g.expect(g.do("GET", path, "", nil), 200)
		want, err := os.ReadFile(filepath.Join("..", "..", "openapi", file))
		if err != nil {
			t.Fatal(err)
		}
		var a, b bytes.Buffer
		if err := json.Compact(&a, r.body); err != nil {
			t.Fatal(err)
		}
		if err := json.Compact(&b, want); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("%s differs from openapi/%s", path, file)
		}
	}
}

func TestHeadersCORSRequestID(t *testing.T) {
	g := newGateway(t, func(c *apigatewayConfig) {
		c.Settings.CORS.AllowedOrigins = []string{"https://hmi.example"}
	})
	r := g.do("GET", "/site", g.admin(), nil)
	for h, want := range map[string]string{
		"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Cache-Control": "no-store",
		"Referrer-Policy": "no-referrer",
	} {
		if got := r.header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if len(r.header.Get("X-Request-Id")) < 8 {
		t.Errorf("no request id: %v", r.header)
	}

	req := func(origin, reqID string) reply {
		hr, _ := newRequest("OPTIONS", g.url+"/site", origin, reqID)
		return send(t, hr)
	}
	pre := req("https://hmi.example", "abc-123")
	if pre.status != 204 || pre.header.Get("Access-Control-Allow-Origin") != "https://hmi.example" ||
		pre.header.Get("X-Request-Id") != "abc-123" {
		t.Errorf("preflight from an allowed origin: %d %v", pre.status, pre.header)
	}
	evil := req("https://evil.example", "bad id with spaces")
	if evil.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS answered a foreign origin: %v", evil.header)
	}
	if evil.header.Get("X-Request-Id") == "bad id with spaces" {
		t.Error("an unsafe request id was echoed")
	}
	// Metrics are for the local scraper only; the test client is local.
	g.expect(g.do("GET", "/metrics", "", nil), 200)
}
