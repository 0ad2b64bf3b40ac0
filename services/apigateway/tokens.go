package apigateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
)

// Token claims: the issuer and audience are fixed so a token of another system
// signed with a shared key by mistake is still refused.
const (
	tokenIssuer   = "voltage-apigateway"
	tokenAudience = "voltage-api"
	tokenLeeway   = 5 * time.Second
)

// claims are the access token's claims.
type claims struct {
	Role string `json:"role"`
	Gen  int64  `json:"gen"`
	jwt.RegisteredClaims
}

// principal is the authenticated caller of a request.
type principal struct {
	User string
	Role Role
}

var (
	errBadToken     = errors.New("invalid or expired token")
	errRefreshReuse = errors.New("refresh token already used; every token of this login is revoked")
)

// tokens issues and checks access tokens (HS256 JWT) and refresh tokens (opaque,
// stored in Redis by hash, rotated on every use).
type tokens struct {
	rdb        *redis.Client
	users      *users
	accessTTL  time.Duration
	refreshTTL time.Duration
	now        func() time.Time

	mu  sync.Mutex
	key []byte
}

// signingKey returns the HS256 key, creating it in Redis on the very first start
// (SET NX, so concurrent gateways agree on one). There is no default key.
func (t *tokens) signingKey(ctx context.Context) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.key != nil {
		return t.key, nil
	}
	fresh := make([]byte, 32)
	_, _ = rand.Read(fresh)
	_, err := t.rdb.SetNX(ctx, keyspace.GatewaySigningKey, base64.StdEncoding.EncodeToString(fresh), 0).Result()
	if err != nil {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	s, err := t.rdb.Get(ctx, keyspace.GatewaySigningKey).Result()
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(k) < 32 {
		return nil, fmt.Errorf("signing key in %s is damaged (want ≥ 32 bytes base64); delete it to generate a new one (every session ends)", keyspace.GatewaySigningKey)
	}
	t.key = k
	return k, nil
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func tokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// tokenPair is what login and refresh answer.
type tokenPair struct {
	AccessToken  string `json:"access_token" doc:"JWT (HS256) for the Authorization: Bearer header"`
	TokenType    string `json:"token_type" enum:"Bearer"`
	ExpiresIn    int64  `json:"expires_in" doc:"seconds until the access token expires"`
	RefreshToken string `json:"refresh_token" doc:"single-use token for POST /auth/refresh; rotated on every use"`
	RefreshIn    int64  `json:"refresh_expires_in" doc:"seconds until the refresh token expires"`
	User         string `json:"user"`
	Role         string `json:"role" enum:"viewer,operator,engineer,admin"`
}

// access signs an access token for u.
func (t *tokens) access(ctx context.Context, u storedUser) (string, error) {
	key, err := t.signingKey(ctx)
	if err != nil {
		return "", err
	}
	now := t.now()
	c := claims{Role: u.Role, Gen: u.Gen, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: tokenIssuer, Subject: u.Name, Audience: jwt.ClaimStrings{tokenAudience},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(t.accessTTL)), ID: randomToken()[:16],
	}}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// issue makes a token pair; family "" starts a new login (a new refresh family).
func (t *tokens) issue(ctx context.Context, u storedUser, family string) (tokenPair, error) {
	at, err := t.access(ctx, u)
	if err != nil {
		return tokenPair{}, err
	}
	if family == "" {
		family = randomToken()[:22]
	}
	rt := randomToken()
	_, err = t.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		k := keyspace.GatewayRefreshToken(tokenHash(rt))
		p.HSet(ctx, k, "user", u.Name, "family", family, "gen", u.Gen, "uses", 0)
		p.PExpire(ctx, k, t.refreshTTL)
		p.Set(ctx, keyspace.GatewayRefreshFamily(family), u.Name, t.refreshTTL)
		return nil
	})
	if err != nil {
		return tokenPair{}, fmt.Errorf("store refresh token: %w", err)
	}
	return tokenPair{
		AccessToken: at, TokenType: "Bearer", ExpiresIn: int64(t.accessTTL / time.Second),
		RefreshToken: rt, RefreshIn: int64(t.refreshTTL / time.Second), User: u.Name, Role: u.Role,
	}, nil
}

// useRefresh counts a use of a refresh token atomically: -1 when it does not exist.
var useRefresh = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('HINCRBY', KEYS[1], 'uses', 1)`)

// refresh rotates a refresh token: the old one is spent, a new pair is issued in
// the same family. A second use of a spent token revokes the whole family — the
// token was stolen, or the client is broken; either way the login ends.
func (t *tokens) refresh(ctx context.Context, rt string) (tokenPair, string, error) {
	k := keyspace.GatewayRefreshToken(tokenHash(rt))
	n, err := useRefresh.Run(ctx, t.rdb, []string{k}).Int64()
	if err != nil {
		return tokenPair{}, "", fmt.Errorf("use refresh token: %w", err)
	}
	if n < 0 {
		return tokenPair{}, "", errBadToken
	}
	f, err := t.rdb.HGetAll(ctx, k).Result()
	if err != nil {
		return tokenPair{}, "", fmt.Errorf("read refresh token: %w", err)
	}
	user, family := f["user"], f["family"]
	if n > 1 {
		if err := t.rdb.Del(ctx, keyspace.GatewayRefreshFamily(family)).Err(); err != nil {
			return tokenPair{}, user, fmt.Errorf("revoke refresh family: %w", err)
		}
		return tokenPair{}, user, errRefreshReuse
	}
	alive, err := t.rdb.Exists(ctx, keyspace.GatewayRefreshFamily(family)).Result()
	if err != nil {
		return tokenPair{}, user, fmt.Errorf("check refresh family: %w", err)
	}
	u, ok, err := t.users.get(ctx, user)
	if err != nil {
		return tokenPair{}, user, err
	}
	gen, _ := strconv.ParseInt(f["gen"], 10, 64)
	if alive == 0 || !ok || u.Gen != gen {
		return tokenPair{}, user, errBadToken
	}
	p, err := t.issue(ctx, u, family)
	return p, user, err
}

// revoke ends the login a refresh token belongs to, if it is user's.
func (t *tokens) revoke(ctx context.Context, user, rt string) error {
	f, err := t.rdb.HGetAll(ctx, keyspace.GatewayRefreshToken(tokenHash(rt))).Result()
	if err != nil {
		return fmt.Errorf("read refresh token: %w", err)
	}
	if f["user"] != user || f["family"] == "" {
		return errBadToken
	}
	if err := t.rdb.Del(ctx, keyspace.GatewayRefreshFamily(f["family"])).Err(); err != nil {
		return fmt.Errorf("revoke refresh family: %w", err)
	}
	return nil
}

// verify checks an access token: HS256 only (alg "none" and every other algorithm
// are refused before the key is looked at), issuer, audience, expiry — and that
// the user still exists with the same generation (not deleted, password and role
// unchanged).
func (t *tokens) verify(ctx context.Context, raw string) (principal, error) {
	p, _, err := t.verifyClaims(ctx, raw)
	return p, err
}

// verifyClaims is verify that also returns the token's claims.
func (t *tokens) verifyClaims(ctx context.Context, raw string) (principal, *claims, error) {
	key, err := t.signingKey(ctx)
	if err != nil {
		return principal{}, nil, err
	}
	var c claims
	_, err = jwt.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(tokenIssuer), jwt.WithAudience(tokenAudience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(tokenLeeway),
		jwt.WithTimeFunc(t.now))
	if err != nil {
		return principal{}, nil, errBadToken
	}
	u, ok, err := t.users.cached(ctx, c.Subject)
	if err != nil {
		return principal{}, nil, err
	}
	if !ok || u.Gen != c.Gen || u.Role != c.Role {
		return principal{}, nil, errBadToken
	}
	r, err := ParseRole(u.Role)
	if err != nil {
		return principal{}, nil, errBadToken
	}
	return principal{User: u.Name, Role: r}, &c, nil
}
