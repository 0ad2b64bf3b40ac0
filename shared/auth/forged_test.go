package auth_test

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/voltageems/voltage/shared/auth"
)

func TestForgedTokens(t *testing.T) {
	eachStore(t, func(t *testing.T, st auth.Store) {
		f := newFixture(st, time.Hour)
		ctx := t.Context()
		u := f.user(t, "admin", auth.Admin)
		good := f.login(t, u).AccessToken
		key, err := st.SigningKey(ctx, make([]byte, 32)) // the existing key
		if err != nil {
			t.Fatal(err)
		}
		base := func() jwt.MapClaims {
			return jwt.MapClaims{"sub": "admin", "role": "admin", "gen": u.Gen, "iss": auth.DefaultIssuer,
				"aud": []string{auth.DefaultAudience}, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
		}
		with := func(k string, v any) jwt.MapClaims {
			c := base()
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
			return c
		}
		sign := func(m jwt.SigningMethod, c jwt.MapClaims, k any) string {
			s, err := jwt.NewWithClaims(m, c).SignedString(k)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		// The same claims signed with the real key are accepted: the refusals below
		// are about exactly one thing each.
		if _, err := f.tokens.Verify(ctx, sign(jwt.SigningMethodHS256, base(), key)); err != nil {
			t.Fatalf("well-formed token refused: %v", err)
		}
		wrongKey := make([]byte, 32)
		_, _ = rand.Read(wrongKey)
		parts := strings.Split(good, ".")
		for name, tok := range map[string]string{
			"alg none":        sign(jwt.SigningMethodNone, base(), jwt.UnsafeAllowNoneSignatureType),
			"other key":       sign(jwt.SigningMethodHS256, base(), wrongKey),
			"HS512":           sign(jwt.SigningMethodHS512, base(), key),
			"HS384":           sign(jwt.SigningMethodHS384, base(), key),
			"other issuer":    sign(jwt.SigningMethodHS256, with("iss", "someone-else"), key),
			"other audience":  sign(jwt.SigningMethodHS256, with("aud", []string{"other-api"}), key),
			"no expiry":       sign(jwt.SigningMethodHS256, with("exp", nil), key),
			"old generation":  sign(jwt.SigningMethodHS256, with("gen", u.Gen-1), key),
			"escalated role":  sign(jwt.SigningMethodHS256, with("role", "viewer"), key),
			"unknown user":    sign(jwt.SigningMethodHS256, with("sub", "mallory"), key),
			"tampered claims": parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","role":"admin"}`)) + "." + parts[2],
			"garbage":         "not.a.jwt",
			"empty":           "",
		} {
			if _, err := f.tokens.Verify(ctx, tok); !errors.Is(err, auth.ErrBadToken) {
				t.Errorf("%s: %v, want ErrBadToken", name, err)
			}
		}
	})
}
