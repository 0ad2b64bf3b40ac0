package hub

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/voltageems/voltage/shared/subjects"
)

// The trust key is the hub's Ed25519 key pair that signs delegation tokens: a
// token per request of the site API proxy (proxy.go) that tells a site's gateway
// who the cloud user is and which role the cloud gives it. A site accepts them
// only when its gateway is configured with the public key (apigateway.yaml
// cloud_trust.public_key), so trusting a hub is the site's decision, and the
// private key never leaves the hub. It is created at the first start and kept in
// the JetStream key-value bucket subjects.CloudTrustBucket, like the users.

// Delegation token contract (checked by services/apigateway/cloudtrust.go).
const (
	// DelegationIssuer is the iss of every delegation token.
	DelegationIssuer = "voltage-cloud"
	// DelegationTTL is the life of a delegation token: one proxied request.
	DelegationTTL = 60 * time.Second
	// TrustKeyPrefix starts the one-line text form of the public key.
	TrustKeyPrefix = "ed25519:"
)

const trustKeyName = "ed25519_seed"

// trustKey is the hub's signing key.
type trustKey struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
}

// loadTrustKey reads the key pair from its bucket, creating it on the first start.
// Two hubs starting on one JetStream at once agree: only one Create succeeds.
func loadTrustKey(ctx context.Context, js jetstream.JetStream) (*trustKey, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: subjects.CloudTrustBucket, Description: "the cloud hub's delegation signing key (site API proxy)",
		History: 1, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("open KV bucket %s: %w", subjects.CloudTrustBucket, err)
	}
	for range 3 {
		e, err := kv.Get(ctx, trustKeyName)
		switch {
		case err == nil:
			seed, err := hex.DecodeString(string(e.Value()))
			if err != nil || len(seed) != ed25519.SeedSize {
				return nil, fmt.Errorf("KV %s/%s does not hold an Ed25519 seed; delete the key to make a new one (sites must then be given the new public key)", subjects.CloudTrustBucket, trustKeyName)
			}
			priv := ed25519.NewKeyFromSeed(seed)
			return &trustKey{priv: priv, pub: priv.Public().(ed25519.PublicKey)}, nil
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return nil, fmt.Errorf("read the trust key: %w", err)
		}
		seed := make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return nil, fmt.Errorf("make the trust key: %w", err)
		}
		if _, err := kv.Create(ctx, trustKeyName, []byte(hex.EncodeToString(seed))); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("store the trust key: %w", err)
		}
		// Read back what was stored: ours, or another hub's that was first.
	}
	return nil, errors.New("the trust key could not be created")
}

// PublicText is the public key in its one-line form, "ed25519:" + base64.
func (k *trustKey) PublicText() string {
	return TrustKeyPrefix + base64.StdEncoding.EncodeToString(k.pub)
}

// PublicPEM is the public key as a PEM "PUBLIC KEY" block (PKIX).
func (k *trustKey) PublicPEM() string {
	der, _ := x509.MarshalPKIXPublicKey(k.pub)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// DelegationClaims are the claims of a delegation token.
type DelegationClaims struct {
	Role string `json:"role"` // the cloud user's role: viewer, operator, engineer or admin
	jwt.RegisteredClaims
}

// delegate signs a token for one request of user (with its cloud role) to site.
func (k *trustKey) delegate(site, user, role string, now time.Time) (string, error) {
	c := DelegationClaims{Role: role, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: DelegationIssuer, Subject: user, Audience: jwt.ClaimStrings{site},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(DelegationTTL)),
	}}
	s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(k.priv)
	if err != nil {
		return "", fmt.Errorf("sign delegation token: %w", err)
	}
	return s, nil
}
