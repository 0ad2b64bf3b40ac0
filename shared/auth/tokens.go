package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Default claims: the issuer and audience are fixed so a token of another system
// signed with a shared key by mistake is still refused.
const (
	DefaultIssuer   = "voltage-apigateway"
	DefaultAudience = "voltage-api"
	// Leeway is the clock skew tolerated on exp, nbf and iat.
	Leeway = 5 * time.Second
)

// Claims are an access token's claims.
type Claims struct {
	Role string `json:"role"`
	Gen  int64  `json:"gen"`
	jwt.RegisteredClaims
}

// Principal is the authenticated caller of a request.
type Principal struct {
	User string
	Role Role
}

// TokenConfig configures Tokens.
type TokenConfig struct {
	Issuer     string           // iss; DefaultIssuer when ""
	Audience   string           // aud; DefaultAudience when ""
	AccessTTL  time.Duration    // access token life (e.g. 15 min)
	RefreshTTL time.Duration    // refresh token and family life from its last rotation (e.g. 12 h)
	Now        func() time.Time // the clock of issue and verify; time.Now when nil
}

// Tokens issues and checks access tokens (HS256 JWT) and refresh tokens (opaque,
// stored by SHA-256, rotated on every use).
type Tokens struct {
	store Store
	users *Users
	cfg   TokenConfig

	mu  sync.Mutex
	key []byte
}

// NewTokens returns the token service over store, checking tokens against users.
func NewTokens(store Store, users *Users, cfg TokenConfig) *Tokens {
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Tokens{store: store, users: users, cfg: cfg}
}

// Now is the clock tokens are issued and checked with.
func (t *Tokens) Now() time.Time { return t.cfg.Now() }

// signingKey returns the HS256 key, creating it in the store on the very first
// start (atomically, so concurrent processes agree on one). There is no default key.
func (t *Tokens) signingKey(ctx context.Context) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.key != nil {
		return t.key, nil
	}
	fresh := make([]byte, 32)
	_, _ = rand.Read(fresh)
	k, err := t.store.SigningKey(ctx, fresh)
	if err != nil {
		return nil, err
	}
	if len(k) < 32 {
		return nil, fmt.Errorf("signing key is damaged: %d bytes, want ≥ 32; delete it to generate a new one (every session ends)", len(k))
	}
	t.key = k
	return k, nil
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// TokenHash is the SHA-256 (hex) by which a refresh token is stored: the store
// never holds a usable token.
func TokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// TokenPair is what a login and a refresh answer.
type TokenPair struct {
	AccessToken  string `json:"access_token" doc:"JWT (HS256) for the Authorization: Bearer header"`
	TokenType    string `json:"token_type" enum:"Bearer"`
	ExpiresIn    int64  `json:"expires_in" doc:"seconds until the access token expires"`
	RefreshToken string `json:"refresh_token" doc:"single-use token for POST /auth/refresh; rotated on every use"`
	RefreshIn    int64  `json:"refresh_expires_in" doc:"seconds until the refresh token expires"`
	User         string `json:"user"`
	Role         string `json:"role" enum:"viewer,operator,engineer,admin"`
}

// access signs an access token for u.
func (t *Tokens) access(ctx context.Context, u User) (string, error) {
	key, err := t.signingKey(ctx)
	if err != nil {
		return "", err
	}
	now := t.cfg.Now()
	c := Claims{Role: u.Role, Gen: u.Gen, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: t.cfg.Issuer, Subject: u.Name, Audience: jwt.ClaimStrings{t.cfg.Audience},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(t.cfg.AccessTTL)), ID: randomToken()[:16],
	}}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// Issue makes a token pair for u at login: a new refresh family.
func (t *Tokens) Issue(ctx context.Context, u User) (TokenPair, error) {
	return t.issue(ctx, u, "")
}

// issue makes a token pair; family "" starts a new login (a new refresh family).
func (t *Tokens) issue(ctx context.Context, u User, family string) (TokenPair, error) {
	at, err := t.access(ctx, u)
	if err != nil {
		return TokenPair{}, err
	}
	newFamily := family == ""
	if newFamily {
		family = randomToken()[:22]
	}
	rt := randomToken()
	rec := RefreshRecord{User: u.Name, Family: family, Gen: u.Gen}
	if err := t.store.PutRefresh(ctx, TokenHash(rt), rec, t.cfg.RefreshTTL, newFamily); err != nil {
		return TokenPair{}, fmt.Errorf("store refresh token: %w", err)
	}
	return TokenPair{
		AccessToken: at, TokenType: "Bearer", ExpiresIn: int64(t.cfg.AccessTTL / time.Second),
		RefreshToken: rt, RefreshIn: int64(t.cfg.RefreshTTL / time.Second), User: u.Name, Role: u.Role,
	}, nil
}

// Refresh rotates a refresh token: the old one is spent, a new pair is issued in
// the same family. It also answers the token's user ("" when unknown) for the
// audit log. A second use of a spent token revokes the whole family
// (ErrRefreshReuse) — the token was stolen, or the client is broken; either way
// the login ends. Of two requests racing with one token exactly one gets a pair;
// the other is a reuse.
func (t *Tokens) Refresh(ctx context.Context, rt string) (TokenPair, string, error) {
	rec, alive, found, err := t.store.SpendRefresh(ctx, TokenHash(rt))
	if err != nil {
		return TokenPair{}, "", fmt.Errorf("use refresh token: %w", err)
	}
	if !found {
		return TokenPair{}, "", ErrBadToken
	}
	if rec.Uses > 1 {
		if err := t.store.RevokeFamily(ctx, rec.Family); err != nil {
			return TokenPair{}, rec.User, fmt.Errorf("revoke refresh family: %w", err)
		}
		return TokenPair{}, rec.User, ErrRefreshReuse
	}
	u, ok, err := t.users.Get(ctx, rec.User)
	if err != nil {
		return TokenPair{}, rec.User, err
	}
	if !alive || !ok || u.Gen != rec.Gen {
		return TokenPair{}, rec.User, ErrBadToken
	}
	p, err := t.issue(ctx, u, rec.Family)
	return p, rec.User, err
}

// Revoke ends the login a refresh token belongs to, if it is user's (ErrBadToken
// otherwise).
func (t *Tokens) Revoke(ctx context.Context, user, rt string) error {
	rec, found, err := t.store.GetRefresh(ctx, TokenHash(rt))
	if err != nil {
		return fmt.Errorf("read refresh token: %w", err)
	}
	if !found || rec.User != user || rec.Family == "" {
		return ErrBadToken
	}
	if err := t.store.RevokeFamily(ctx, rec.Family); err != nil {
		return fmt.Errorf("revoke refresh family: %w", err)
	}
	return nil
}

// Verify checks an access token: HS256 only (alg "none" and every other algorithm
// are refused before the key is looked at), issuer, audience, expiry — and that
// the user still exists with the same generation and role (not deleted, password
// and role unchanged; read at most UserCacheTTL out of date). Every refusal is
// ErrBadToken; other errors mean the store did not answer.
func (t *Tokens) Verify(ctx context.Context, raw string) (Principal, error) {
	p, _, _, err := t.VerifyUser(ctx, raw)
	return p, err
}

// VerifyUser is Verify that also returns the token's claims and the user record
// (for its site scope).
func (t *Tokens) VerifyUser(ctx context.Context, raw string) (Principal, *Claims, User, error) {
	key, err := t.signingKey(ctx)
	if err != nil {
		return Principal{}, nil, User{}, err
	}
	var c Claims
	_, err = jwt.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(t.cfg.Issuer), jwt.WithAudience(t.cfg.Audience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(t.cfg.Now))
	if err != nil {
		return Principal{}, nil, User{}, ErrBadToken
	}
	u, ok, err := t.users.Cached(ctx, c.Subject)
	if err != nil {
		return Principal{}, nil, User{}, err
	}
	if !ok || u.Gen != c.Gen || u.Role != c.Role {
		return Principal{}, nil, User{}, ErrBadToken
	}
	r, err := ParseRole(u.Role)
	if err != nil {
		return Principal{}, nil, User{}, ErrBadToken
	}
	return Principal{User: u.Name, Role: r}, &c, u, nil
}
