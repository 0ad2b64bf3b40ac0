package auth_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/voltageems/voltage/shared/auth"
	"github.com/voltageems/voltage/shared/testharness"
)

// eachStore runs test against both stores: a real redis-server and an embedded
// NATS server with JetStream.
func eachStore(t *testing.T, test func(t *testing.T, st auth.Store)) {
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		test(t, redisStore(t))
	})
	t.Run("jetstream-kv", func(t *testing.T) {
		t.Parallel()
		test(t, kvStore(t))
	})
}

func redisStore(t *testing.T) *auth.RedisStore {
	r := testharness.StartRedis(t)
	return auth.NewRedisStore(r.Client(t))
}

func kvStore(t *testing.T) *auth.KVStore {
	n := testharness.StartNATS(t)
	js, err := jetstream.New(n.Conn(t))
	if err != nil {
		t.Fatal(err)
	}
	st, err := auth.NewKVStore(t.Context(), js, auth.KVConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// fixture is a user table and token service over one store, with a clock the test
// can move.
type fixture struct {
	st     auth.Store
	users  *auth.Users
	tokens *auth.Tokens
	offset time.Duration
}

func newFixture(st auth.Store, refreshTTL time.Duration) *fixture {
	f := &fixture{st: st, users: auth.NewUsers(st, bcrypt.MinCost)}
	f.tokens = auth.NewTokens(st, f.users, auth.TokenConfig{
		AccessTTL: 15 * time.Minute, RefreshTTL: refreshTTL,
		Now: func() time.Time { return time.Now().Add(f.offset) },
	})
	return f
}

func (f *fixture) user(t *testing.T, name string, role auth.Role, sites ...string) auth.User {
	t.Helper()
	u, err := f.users.Create(t.Context(), name, role, name+"-password", sites)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return u
}

func (f *fixture) login(t *testing.T, u auth.User) auth.TokenPair {
	t.Helper()
	p, err := f.tokens.Issue(t.Context(), u)
	if err != nil {
		t.Fatalf("issue for %s: %v", u.Name, err)
	}
	return p
}
