package apigateway

import (
	"crypto/ed25519"
	"testing"
	"time"
)

// FuzzCloudToken: no byte string is a valid delegation token without the hub's
// signature, and none panics the check.
func FuzzCloudToken(f *testing.F) {
	pub, _, _ := ed25519.GenerateKey(nil)
	c := &cloudTrust{key: pub, maxRole: Admin}
	for _, s := range []string{"", "a.b.c", "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.", "eyJhbGciOiJub25lIn0.e30."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		_ = isCloudToken(raw)
		if p, err := c.verify(raw, "site", time.Now()); err == nil {
			t.Fatalf("%q accepted as %+v", raw, p)
		}
		if _, err := parseCloudKey(raw); err == nil && len(raw) < 10 {
			t.Fatalf("%q accepted as a key", raw)
		}
	})
}
