package apigateway

import (
	"context"
	"time"

	"github.com/voltageems/voltage/shared/auth"
)

// claims are the access token's claims; principal is the authenticated caller.
type (
	claims    = auth.Claims
	principal = auth.Principal
	tokenPair = auth.TokenPair
)

var (
	errBadToken     = auth.ErrBadToken
	errRefreshReuse = auth.ErrRefreshReuse
)

// tokens is shared/auth's token service over the gateway's Redis store, under the
// names the operations use.
type tokens struct {
	*auth.Tokens
	now func() time.Time
}

func newTokens(u *users, accessTTL, refreshTTL time.Duration, now func() time.Time) *tokens {
	return &tokens{now: now, Tokens: auth.NewTokens(u.store, u.Users, auth.TokenConfig{
		Issuer: auth.DefaultIssuer, Audience: auth.DefaultAudience,
		AccessTTL: accessTTL, RefreshTTL: refreshTTL, Now: now,
	})}
}

// issue makes a token pair for a new login.
func (t *tokens) issue(ctx context.Context, u storedUser) (tokenPair, error) { return t.Issue(ctx, u) }

// refresh rotates a refresh token; it answers the token's user for the audit log.
func (t *tokens) refresh(ctx context.Context, rt string) (tokenPair, string, error) {
	return t.Refresh(ctx, rt)
}

// revoke ends the login a refresh token belongs to, if it is user's.
func (t *tokens) revoke(ctx context.Context, user, rt string) error { return t.Revoke(ctx, user, rt) }

// verify checks an access token (errBadToken for every refusal).
func (t *tokens) verify(ctx context.Context, raw string) (principal, error) {
	return t.Verify(ctx, raw)
}

// verifyClaims is verify that also returns the token's claims.
func (t *tokens) verifyClaims(ctx context.Context, raw string) (principal, *claims, error) {
	p, c, _, err := t.VerifyUser(ctx, raw)
	return p, c, err
}
