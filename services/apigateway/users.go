package apigateway

import (
	"context"
	"io"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/auth"
)

// EnvAdminPassword sets the first admin's password on the first start instead of a
// generated one.
const EnvAdminPassword = auth.EnvAdminPassword

// AdminUser is the user the first start creates.
const AdminUser = auth.AdminUser

// storedUser is a user as kept in keyspace.GatewayUsers (shared/auth's record; the
// gateway serves one site and ignores its site scope).
type storedUser = auth.User

var (
	errUserExists   = auth.ErrUserExists
	errUserNotFound = auth.ErrUserNotFound
)

func checkUserName(name string) error { return auth.CheckUserName(name) }

// users is shared/auth's user table in the site's Redis (auth.RedisStore: the gw:*
// keys), under the names the operations use.
type users struct {
	*auth.Users
	store *auth.RedisStore
}

func newUsers(rdb *redis.Client, cost int) *users {
	st := auth.NewRedisStore(rdb)
	return &users{Users: auth.NewUsers(st, cost), store: st}
}

func (s *users) get(ctx context.Context, name string) (storedUser, bool, error) {
	return s.Get(ctx, name)
}

// cached is get through auth's 1 s cache (the per-request token check).
func (s *users) cached(ctx context.Context, name string) (storedUser, bool, error) {
	return s.Cached(ctx, name)
}

func (s *users) list(ctx context.Context) ([]storedUser, error) { return s.List(ctx) }

func (s *users) hash(password string) (string, error) { return s.Hash(password) }

// create adds a user (no site scope); errUserExists when the name is taken.
func (s *users) create(ctx context.Context, name string, role Role, password string) (storedUser, error) {
	return s.Create(ctx, name, role, password, nil)
}

// update changes a user atomically and raises its generation: every token issued
// before dies.
func (s *users) update(ctx context.Context, name string, change func(*storedUser) error) (storedUser, error) {
	return s.Update(ctx, name, change)
}

func (s *users) delete(ctx context.Context, name string) (bool, error) { return s.Delete(ctx, name) }

// verify checks a password; a missing user still costs a bcrypt comparison.
func (s *users) verify(ctx context.Context, name, password string) (storedUser, bool, error) {
	return s.Verify(ctx, name, password)
}

// bootstrap creates the admin user when there is no user at all. The password is
// taken from VOLTAGE_ADMIN_PASSWORD or generated and written to out, once.
func (s *users) bootstrap(ctx context.Context, envPassword string, minLen int, out io.Writer) (bool, error) {
	return s.Bootstrap(ctx, auth.Bootstrap{Password: envPassword, MinLength: minLen, Out: out, Service: Name})
}
