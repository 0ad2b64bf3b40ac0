package auth_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/auth"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/testharness"
)

// TestRedisStoreKeepsGatewayKeys: the Redis store reads and writes exactly the
// gateway's existing keys, so a site upgraded to shared/auth keeps its users and
// sessions.
func TestRedisStoreKeepsGatewayKeys(t *testing.T) {
	r := testharness.StartRedis(t)
	rdb := r.Client(t)
	ctx := t.Context()
	// A user as the gateway wrote it before shared/auth (no site scope).
	old := `{"name":"op","role":"operator","hash":"$2a$04$abcdefghijklmnopqrstuu5M7L0Yx7l1bM0kzG1B1y6j9xk8Q1G2e","gen":7,"created":1,"updated":2}`
	if err := rdb.HSet(ctx, keyspace.GatewayUsers, "op", old).Err(); err != nil {
		t.Fatal(err)
	}
	f := newFixture(auth.NewRedisStore(rdb), time.Hour)
	u, ok, err := f.users.Get(ctx, "op")
	if err != nil || !ok || u.Gen != 7 || u.Role != "operator" || u.Sites != nil {
		t.Fatalf("old record: %+v ok=%v err=%v", u, ok, err)
	}
	p := f.login(t, u)
	if k := rdb.Get(ctx, keyspace.GatewaySigningKey).Val(); len(k) < 40 {
		t.Fatalf("signing key in %s: %q", keyspace.GatewaySigningKey, k)
	}
	rk := keyspace.GatewayRefreshToken(auth.TokenHash(p.RefreshToken))
	h := rdb.HGetAll(ctx, rk).Val()
	if h["user"] != "op" || h["gen"] != "7" || h["uses"] != "0" || h["family"] == "" {
		t.Fatalf("refresh token hash %s: %v", rk, h)
	}
	if ttl := rdb.PTTL(ctx, rk).Val(); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("refresh token TTL %v", ttl)
	}
	fk := keyspace.GatewayRefreshFamily(h["family"])
	if v := rdb.Get(ctx, fk).Val(); v != "op" || rdb.PTTL(ctx, fk).Val() <= 0 {
		t.Fatalf("family %s = %q", fk, v)
	}
	// Site scope is stored with the user when given.
	f.user(t, "scoped", auth.Viewer, "north")
	var rec map[string]any
	if err := json.Unmarshal([]byte(rdb.HGet(ctx, keyspace.GatewayUsers, "scoped").Val()), &rec); err != nil {
		t.Fatal(err)
	}
	if s, _ := rec["sites"].([]any); len(s) != 1 || s[0] != "north" {
		t.Fatalf("stored record: %v", rec)
	}
}
