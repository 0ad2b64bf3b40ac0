// Package auth is the user and token authentication of VoltageEMS's HTTP APIs: the
// edge's apigateway and the cloud hub run the same code, each over its own store.
//
// Four parts:
//
//   - Role: viewer < operator < engineer < admin (DESIGN §11); each includes the
//     ones below it.
//   - Users: user records (bcrypt-hashed password, role, per-user generation, site
//     scope), the first-start bootstrap of the admin, and a 1 s in-process cache for
//     the per-request check that a token's user is unchanged.
//   - Tokens: short-lived HS256 JWT access tokens (issuer, audience, algorithm pinned,
//     expiry required, 5 s leeway, generation checked against the user) and opaque,
//     single-use, rotating refresh tokens grouped in families: presenting a spent
//     refresh token revokes its whole family.
//   - Throttle: logins refused before the password is checked — too many attempts
//     from one address per minute, or a user name locked after too many failures.
//
// Everything that must persist goes through Store, which has two implementations:
// RedisStore (the edge: the gw:* keys of shared/keyspace, unchanged from the
// gateway's first version, so sites keep their users and sessions) and KVStore (the
// cloud hub: two NATS JetStream key-value buckets named in shared/subjects).
//
// Concurrency: Users and Tokens are safe for concurrent use by many requests and by
// several processes sharing one store. A refresh token is single-use even when two
// requests present it at the same moment: the store counts uses atomically (a Lua
// script in Redis, a revision compare-and-set in JetStream KV), exactly one request
// rotates it, the other is a reuse and revokes the family.
//
// # Using it
//
//	st := auth.NewRedisStore(rdb)                         // edge: the site's Redis
//	st, err := auth.NewKVStore(ctx, js, auth.KVConfig{    // cloud: JetStream KV
//		SessionMaxAge: refreshTTL})
//	users := auth.NewUsers(st, 12)                        // bcrypt cost
//	tokens := auth.NewTokens(st, users, auth.TokenConfig{
//		Issuer: "voltage-cloud", AccessTTL: 15 * time.Minute, RefreshTTL: 12 * time.Hour})
//	created, err := users.Bootstrap(ctx, auth.Bootstrap{  // first start: the admin
//		Password: os.Getenv(auth.EnvAdminPassword), MinLength: 12, Out: os.Stderr, Service: "cloud hub"})
//
// Login: NewThrottle(st, limits).Admit, then users.Verify, then Failed or
// Succeeded, then tokens.Issue. Refresh: tokens.Refresh (ErrRefreshReuse: the
// login was revoked; audit it). Logout: tokens.Revoke. Every request:
// tokens.VerifyUser(ctx, bearer) → Principal (user, role) and the User (for
// User.CoversSite); ErrBadToken is a 401, any other error a 503 (the store does
// not answer). Compare Principal.Role with the operation's Role (>=).
//
// Issuer and audience are part of the check: give each API its own issuer so a
// token of one is not accepted by the other even if they shared a store.
package auth
