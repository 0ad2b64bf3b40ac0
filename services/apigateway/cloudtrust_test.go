package apigateway_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/voltageems/voltage/services/apigateway"
)

// cloudKey is a test hub's trust key.
type cloudKey struct {
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
}

func newCloudKey(t *testing.T) cloudKey {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return cloudKey{pub, priv}
}

func (k cloudKey) text() string { return "ed25519:" + base64.StdEncoding.EncodeToString(k.pub) }

// token signs a delegation token as the hub does (cloud/hub/trustkey.go).
func (k cloudKey) token(t *testing.T, site, user, role string, iat time.Time, ttl time.Duration) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"iss": "voltage-cloud", "aud": []string{site}, "sub": user, "role": role,
		"iat": iat.Unix(), "nbf": iat.Unix(), "exp": iat.Add(ttl).Unix(),
	}).SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func withCloudTrust(c apigateway.CloudTrustSettings) gwOption {
	return func(cfg *apigatewayConfig) {
		set := *cfg.Settings
		set.CloudTrust = c
		cfg.Settings = &set
	}
}

// TestCloudTrust: with cloud_trust a delegation token of the hub lets a cloud
// user in under its cloud role (capped by max_role) as cloud:{user}; a token for
// another site, expired, too long-lived, signed by another key, with another
// algorithm, or any cloud token without cloud_trust is refused.
func TestCloudTrust(t *testing.T) {
	hubKey, otherKey := newCloudKey(t), newCloudKey(t)
	g := newGateway(t, withCloudTrust(apigateway.CloudTrustSettings{PublicKey: hubKey.text()}))
	now := time.Now()

	op := hubKey.token(t, "gw-site", "olga", "operator", now, time.Minute)
	var me struct{ Name, Role string }
	g.expect(g.do("GET", "/auth/me", op, nil), 200).decode(t, &me)
	if me.Name != "cloud:olga" || me.Role != "operator" {
		t.Errorf("me = %+v, want cloud:olga operator", me)
	}
	g.expect(g.do("GET", "/points?pattern=1:T:*", op, nil), 200)
	g.expect(g.do("POST", "/commands", op, map[string]any{"channel": 1, "type": "A", "point": 1, "value": 42}), 202)
	var recent struct {
		Commands []struct{ User, Target string }
	}
	g.expect(g.do("GET", "/commands", g.admin(), nil), 200).decode(t, &recent)
	if len(recent.Commands) != 1 || recent.Commands[0].User != "cloud:olga" {
		t.Errorf("recent commands = %+v, want one by cloud:olga", recent.Commands)
	}
	// The site checks the role of each operation: an operator manages no users.
	g.expect(g.do("GET", "/users", op, nil), 403)
	viewer := hubKey.token(t, "gw-site", "vera", "viewer", now, time.Minute)
	g.expect(g.do("POST", "/commands", viewer, map[string]any{"channel": 1, "type": "A", "point": 1, "value": 1}), 403)

	hs256, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "voltage-cloud", "aud": "gw-site", "sub": "olga", "role": "admin", "exp": now.Add(time.Minute).Unix(),
	}).SignedString([]byte(hubKey.pub)) // the public key as an HMAC secret: the classic confusion
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{
		"iss": "voltage-cloud", "aud": "gw-site", "sub": "olga", "role": "admin", "exp": now.Add(time.Minute).Unix(),
	}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for name, tok := range map[string]string{
		"another site":     hubKey.token(t, "other-site", "olga", "admin", now, time.Minute),
		"expired":          hubKey.token(t, "gw-site", "olga", "admin", now.Add(-5*time.Minute), time.Minute),
		"too long-lived":   hubKey.token(t, "gw-site", "olga", "admin", now, time.Hour),
		"another key":      otherKey.token(t, "gw-site", "olga", "admin", now, time.Minute),
		"HS256":            hs256,
		"alg none":         none,
		"no role":          hubKey.token(t, "gw-site", "olga", "root", now, time.Minute),
		"bad user":         hubKey.token(t, "gw-site", "a b", "admin", now, time.Minute),
		"tampered payload": tamper(hubKey.token(t, "gw-site", "olga", "viewer", now, time.Minute)),
	} {
		if r := g.do("GET", "/auth/me", tok, nil); r.status != 401 {
			t.Errorf("%s: status %d %s, want 401", name, r.status, r.body)
		}
	}

	// max_role caps what the cloud gives.
	capped := newGateway(t, withCloudTrust(apigateway.CloudTrustSettings{PublicKey: hubKey.text(), MaxRole: "viewer"}))
	adm := hubKey.token(t, "gw-site", "root", "admin", now, time.Minute)
	capped.expect(capped.do("GET", "/auth/me", adm, nil), 200).decode(t, &me)
	if me.Role != "viewer" {
		t.Errorf("capped role = %q, want viewer", me.Role)
	}
	capped.expect(capped.do("POST", "/commands", adm, map[string]any{"channel": 1, "type": "A", "point": 1, "value": 1}), 403)

	// Without cloud_trust (the default) no cloud token is accepted.
	off := newGateway(t)
	r := off.expect(off.do("GET", "/auth/me", op, nil), 401)
	if !strings.Contains(string(r.body), "cloud_trust") {
		t.Errorf("refusal without trust = %s, want it to name cloud_trust", r.body)
	}
}

// tamper raises the role in a token's payload, keeping its signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(b), `"viewer"`, `"admin"`, 1)))
	return strings.Join(parts, ".")
}

func TestCloudTrustSettings(t *testing.T) {
	k := newCloudKey(t)
	der, _ := x509.MarshalPKIXPublicKey(k.pub)
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	keyFile := filepath.Join(t.TempDir(), "hub.pub")
	if err := os.WriteFile(keyFile, []byte(pemText), 0o600); err != nil {
		t.Fatal(err)
	}
	load := func(yaml string) error {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "apigateway"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, apigateway.SettingsFile), []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := apigateway.LoadSettings(dir)
		return err
	}
	for _, ok := range []string{
		"cloud_trust: {public_key: \"" + k.text() + "\"}\n",
		"cloud_trust: {public_key_file: " + keyFile + ", max_role: operator}\n",
		"cloud_trust:\n  public_key: |\n    " + strings.ReplaceAll(strings.TrimSpace(pemText), "\n", "\n    ") + "\n",
		"cloud_trust: {public_key: \"\"}\n",
	} {
		if err := load(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	// The environment names the key over the file, and with no file at all.
	t.Setenv(apigateway.EnvCloudTrustKey, "ed25519:AAAA")
	if err := load("cloud_trust: {public_key_file: " + keyFile + "}\n"); err == nil || !strings.Contains(err.Error(), "cloud_trust.public_key") {
		t.Errorf("a bad key in %s: %v", apigateway.EnvCloudTrustKey, err)
	}
	if _, err := apigateway.LoadSettings(t.TempDir()); err == nil {
		t.Errorf("a bad key in %s without a file: accepted", apigateway.EnvCloudTrustKey)
	}
	t.Setenv(apigateway.EnvCloudTrustKey, k.text())
	if _, err := apigateway.LoadSettings(t.TempDir()); err != nil {
		t.Errorf("%s without a file: %v", apigateway.EnvCloudTrustKey, err)
	}
	t.Setenv(apigateway.EnvCloudTrustKey, "")

	for _, c := range []struct{ yaml, want string }{
		{"cloud_trust: {public_key: \"ed25519:AAAA\"}\n", "cloud_trust.public_key"},
		{"cloud_trust: {public_key: \"ssh-ed25519 AAAA\"}\n", "cloud_trust.public_key"},
		{"cloud_trust: {public_key: \"" + k.text() + "\", public_key_file: " + keyFile + "}\n", "exclude each other"},
		{"cloud_trust: {public_key_file: /nonexistent/hub.pub}\n", "cloud_trust.public_key_file"},
		{"cloud_trust: {public_key: \"" + k.text() + "\", max_role: root}\n", "cloud_trust.max_role"},
		{"cloud_trust: {key: x}\n", "apigateway.yaml:1"},
	} {
		if err := load(c.yaml); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want it to name %q", c.yaml, err, c.want)
		}
	}
}
