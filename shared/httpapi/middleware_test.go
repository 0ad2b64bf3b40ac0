package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/voltageems/voltage/shared/httpapi"
)

func TestAccessLogRequestIDAndUser(t *testing.T) {
	var logs bytes.Buffer
	var statuses []int
	h := httpapi.AccessLog(slog.New(slog.NewTextHandler(&logs, nil)), func(s int) { statuses = append(statuses, s) })(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			httpapi.RequestInfoFrom(r.Context()).User = "ada"
			w.WriteHeader(http.StatusTeapot)
		}))
	for _, tc := range []struct{ sent, kept string }{{"abc-1.2_3", "abc-1.2_3"}, {"bad id!", ""}, {strings.Repeat("x", 65), ""}} {
		req := httptest.NewRequest("GET", "/things", nil)
		req.Header.Set(httpapi.HeaderRequestID, tc.sent)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got := rec.Header().Get(httpapi.HeaderRequestID)
		if tc.kept != "" && got != tc.kept || tc.kept == "" && (got == tc.sent || len(got) != 16) {
			t.Errorf("request id %q answered %q", tc.sent, got)
		}
	}
	if len(statuses) != 3 || statuses[0] != http.StatusTeapot {
		t.Errorf("statuses %v", statuses)
	}
	if !strings.Contains(logs.String(), "user=ada") || !strings.Contains(logs.String(), "status=418") {
		t.Errorf("access log %s", logs.String())
	}
	logs.Reset()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/healthz", nil))
	if logs.Len() != 0 {
		t.Errorf("a probe was logged: %s", logs.String())
	}
	if httpapi.RequestInfoFrom(context.Background()) != nil {
		t.Error("request info outside AccessLog")
	}
}

func TestSecurityHeaders(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		rec := httptest.NewRecorder()
		httpapi.SecurityHeaders(tlsOn)(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		h := rec.Header()
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "no-store" ||
			!strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("headers %v", h)
		}
		if (h.Get("Strict-Transport-Security") != "") != tlsOn {
			t.Errorf("tls %v: HSTS %q", tlsOn, h.Get("Strict-Transport-Security"))
		}
	}
}

type fakeSpec struct{ fail bool }

func (f fakeSpec) MarshalJSON() ([]byte, error) { return []byte(`{"openapi":"3.1.0"}`), nil }
func (f fakeSpec) Downgrade() ([]byte, error) {
	if f.fail {
		return nil, errors.New("cannot")
	}
	return []byte(`{"openapi":"3.0.3"}`), nil
}

func TestSpecs(t *testing.T) {
	v31, v30, err := httpapi.SpecDocuments(fakeSpec{})
	if err != nil || string(v31) != "{\n  \"openapi\": \"3.1.0\"\n}\n" || !strings.Contains(string(v30), "3.0.3") {
		t.Fatalf("documents %q %q %v", v31, v30, err)
	}
	if _, _, err := httpapi.SpecDocuments(fakeSpec{fail: true}); err == nil {
		t.Fatal("a failing downgrade gave no error")
	}
	mux := http.NewServeMux()
	httpapi.ServeSpecs(func(p string, h http.HandlerFunc) { mux.HandleFunc("GET "+p, h) }, fakeSpec{})
	var wg sync.WaitGroup
	for range 8 { // concurrent first requests encode once, without a race
		wg.Go(func() {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest("GET", "/openapi-3.0.json", nil))
			if rec.Body.String() != `{"openapi":"3.0.3"}` || rec.Header().Get("Content-Type") != "application/openapi+json" {
				t.Errorf("served %q %v", rec.Body.String(), rec.Header())
			}
		})
	}
	wg.Wait()
}
