package keyspace

// Keys of the apigateway (users, tokens, login throttling) beyond DESIGN §4's table.
// They hold secrets and password hashes: nothing but the gateway reads them.
const (
	// GatewayUsers is the hash user name → JSON of the user (role, bcrypt hash,
	// token generation). Raising a user's generation invalidates every token issued
	// before (password change, role change, deletion).
	GatewayUsers = "gw:users"
	// GatewaySigningKey is the string holding the random HS256 key of the access
	// tokens, generated on the gateway's first start (SET NX), never a default.
	GatewaySigningKey = "gw:jwt:key"
)

// GatewayRefreshToken is the hash of one refresh token, by the SHA-256 of the
// token (hex) — the token itself is never stored. Fields: user, family, gen, uses.
// It expires with the token.
func GatewayRefreshToken(sha string) string { return "gw:refresh:" + sha }

// GatewayRefreshFamily is the string that keeps a login's chain of rotated refresh
// tokens alive; deleting it (logout, reuse of a rotated token) revokes the chain.
func GatewayRefreshFamily(family string) string { return "gw:family:" + family }

// GatewayLoginFailures counts the failed logins of one user name within the
// lockout window (INCR with a TTL).
func GatewayLoginFailures(user string) string { return "gw:login:fail:" + user }

// GatewayLoginAttempts counts the login attempts of one client address within a
// minute (rate limit).
func GatewayLoginAttempts(addr string) string { return "gw:login:addr:" + addr }
