package bridge

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzCheckAPIPath: a path the proxy lets through is a plain absolute path, as
// sent and decoded, and none of the local-only endpoints; nothing panics.
func FuzzCheckAPIPath(f *testing.F) {
	for _, s := range []string{"/points", "/metrics", "/%6detrics", "//x", "/a/../b", "/a/%2e%2e/b", "/auth/me", "/auth/login", "", "/\x00", "/ws"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		code, _ := checkAPIPath(p)
		if code != 0 {
			if code != http.StatusBadRequest && code != http.StatusForbidden {
				t.Fatalf("%q: status %d", p, code)
			}
			return
		}
		d, err := url.PathUnescape(p)
		if err != nil {
			t.Fatalf("%q accepted but does not decode", p)
		}
		for _, x := range []string{p, d} {
			if !strings.HasPrefix(x, "/") || strings.HasPrefix(x, "//") || strings.Contains(x, "/../") || strings.HasSuffix(x, "/..") ||
				x == "/metrics" || x == "/ws" || strings.HasPrefix(x, "/debug/") || strings.HasPrefix(x, "/auth/") && x != "/auth/me" {
				t.Fatalf("%q (decoded %q) accepted", p, d)
			}
		}
	})
}
