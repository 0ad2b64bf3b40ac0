package apigateway

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/voltageems/voltage/shared/auth"
)

// Cloud trust: a site may let the users of one cloud hub in through the hub's
// site API proxy (cloud/hub/proxy.go; the edge bridge brings the request to this
// gateway on loopback). The hub signs a delegation token for every request with
// its Ed25519 trust key; the gateway accepts it only when cloud_trust names that
// public key, the token is for this site (aud = site id), signed with EdDSA, from
// the issuer voltage-cloud and not expired. Its caller is cloud:{user} with the
// role the cloud gave, capped at cloud_trust.max_role, and every operation checks
// that role as for a local user. Without cloud_trust no such token is accepted.

// Delegation token contract (the hub's side: cloud/hub/trustkey.go).
const (
	// CloudIssuer is the iss of the hub's delegation tokens.
	CloudIssuer = "voltage-cloud"
	// CloudUserPrefix marks a cloud user in audit:log, X-Voltage-User and /auth/me.
	CloudUserPrefix = "cloud:"
	// CloudTokenMaxTTL bounds how far in the future a delegation token may expire:
	// the hub gives 60 s; a longer one is refused, whatever its signature.
	CloudTokenMaxTTL = 60 * time.Second
	// cloudKeyPrefix starts the one-line form of the hub's public key.
	cloudKeyPrefix = "ed25519:"
)

// CloudTrustSettings are apigateway.yaml's cloud_trust.
type CloudTrustSettings struct {
	// PublicKey is the hub's trust key as the hub shows it (GET /trust-key on the
	// hub, and its log at start): "ed25519:" + base64, or a PEM PUBLIC KEY block.
	// Empty (and no PublicKeyFile): cloud users are not let in.
	PublicKey string `yaml:"public_key"`
	// PublicKeyFile is a file holding the same (instead of PublicKey).
	PublicKeyFile string `yaml:"public_key_file"`
	// MaxRole is the highest role a cloud user gets on this site (default admin:
	// the cloud's own role holds).
	MaxRole string `yaml:"max_role"`
}

// cloudTrust is the parsed cloud_trust; nil when off.
type cloudTrust struct {
	key     ed25519.PublicKey
	maxRole Role
}

// parseCloudKey reads the hub's public key in either form.
func parseCloudKey(text string) (ed25519.PublicKey, error) {
	text = strings.TrimSpace(text)
	if b64, ok := strings.CutPrefix(text, cloudKeyPrefix); ok {
		k, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(k) != ed25519.PublicKeySize {
			return nil, errors.New(`want "ed25519:" and the base64 of a 32-byte Ed25519 public key, as the hub's GET /trust-key shows it`)
		}
		return ed25519.PublicKey(k), nil
	}
	block, _ := pem.Decode([]byte(text))
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New(`want "ed25519:…" or a PEM PUBLIC KEY block, as the hub's GET /trust-key shows it`)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("PEM public key: %w", err)
	}
	k, ok := pub.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("the PEM key is a %T, not an Ed25519 key", pub)
	}
	return k, nil
}

// validate checks cloud_trust and parses it into c (nil: off).
func (t CloudTrustSettings) validate(bad func(string, ...any)) *cloudTrust {
	text := t.PublicKey
	switch {
	case t.PublicKey != "" && t.PublicKeyFile != "":
		bad("cloud_trust: public_key and public_key_file exclude each other")
		return nil
	case t.PublicKeyFile != "":
		b, err := os.ReadFile(t.PublicKeyFile)
		if err != nil {
			bad("cloud_trust.public_key_file: %v", err)
			return nil
		}
		text = string(b)
	}
	maxRole := Admin
	if t.MaxRole != "" {
		r, err := ParseRole(t.MaxRole)
		if err != nil {
			bad("cloud_trust.max_role: %v", err)
			return nil
		}
		maxRole = r
	}
	if strings.TrimSpace(text) == "" {
		return nil
	}
	k, err := parseCloudKey(text)
	if err != nil {
		bad("cloud_trust.public_key: %v", err)
		return nil
	}
	return &cloudTrust{key: k, maxRole: maxRole}
}

// cloudClaims are a delegation token's claims.
type cloudClaims struct {
	Role string `json:"role"`
	jwt.RegisteredClaims
}

// isCloudToken tells a delegation token (EdDSA) from the gateway's own (HS256)
// by its header, without trusting it: the verifier that follows decides.
func isCloudToken(raw string) bool {
	head, _, ok := strings.Cut(raw, ".")
	if !ok {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	return err == nil && strings.Contains(string(b), `"EdDSA"`)
}

// verify checks a delegation token for site at now. Every refusal wraps
// auth.ErrBadToken.
func (c *cloudTrust) verify(raw, site string, now time.Time) (principal, error) {
	if c == nil {
		return principal{}, fmt.Errorf("%w: this site does not accept cloud tokens (apigateway.yaml cloud_trust)", auth.ErrBadToken)
	}
	var cl cloudClaims
	_, err := jwt.ParseWithClaims(raw, &cl, func(*jwt.Token) (any, error) { return c.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(CloudIssuer), jwt.WithAudience(site),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(auth.Leeway),
		jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		return principal{}, fmt.Errorf("%w: cloud token: %v", auth.ErrBadToken, err)
	}
	if cl.ExpiresAt.Sub(now) > CloudTokenMaxTTL+auth.Leeway {
		return principal{}, fmt.Errorf("%w: cloud token lives longer than %s", auth.ErrBadToken, CloudTokenMaxTTL)
	}
	role, err := ParseRole(cl.Role)
	if err != nil || auth.CheckUserName(cl.Subject) != nil {
		return principal{}, fmt.Errorf("%w: cloud token without a valid user and role", auth.ErrBadToken)
	}
	return principal{User: CloudUserPrefix + cl.Subject, Role: min(role, c.maxRole)}, nil
}

// verifyCaller checks a bearer token: the hub's delegation token when its header
// says EdDSA, else the gateway's own access token.
func (s *server) verifyCaller(ctx context.Context, raw string) (principal, error) {
	if isCloudToken(raw) {
		site := ""
		if s.cfg.Site != nil {
			site = s.cfg.Site.Site.Site.ID
		}
		if site == "" {
			return principal{}, fmt.Errorf("%w: this gateway has no site id to check a cloud token's audience against", auth.ErrBadToken)
		}
		return s.set.cloud.verify(raw, site, s.tokens.now())
	}
	return s.tokens.verify(ctx, raw)
}

// isCloudUser tells a cloud principal (no stored user) from a local one.
func isCloudUser(name string) bool { return strings.HasPrefix(name, CloudUserPrefix) }
