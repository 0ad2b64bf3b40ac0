package apigateway

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/voltageems/voltage/shared/keyspace"
)

// EnvAdminPassword sets the first admin's password on the first start instead of a
// generated one.
const EnvAdminPassword = "VOLTAGE_ADMIN_PASSWORD"

// AdminUser is the user the first start creates.
const AdminUser = "admin"

// storedUser is a user as kept in keyspace.GatewayUsers.
type storedUser struct {
	Name    string `json:"name"`
	Role    string `json:"role"`
	Hash    string `json:"hash"` // bcrypt
	Gen     int64  `json:"gen"`  // raised on every password or role change: older tokens die
	Created int64  `json:"created"`
	Updated int64  `json:"updated"`
}

var (
	errUserExists   = errors.New("user exists")
	errUserNotFound = errors.New("user not found")
	userNameRE      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)
)

// users is the user table in Redis, with a short cache for the per-request check
// that a token's user still exists with the same generation and role.
type users struct {
	rdb  *redis.Client
	cost int

	mu    sync.Mutex
	cache map[string]cachedUser
}

type cachedUser struct {
	u       storedUser
	ok      bool
	fetched time.Time
}

// userCacheTTL bounds how long a revoked token (password change, deletion) can
// still be used: the access token check reads the user at most this much out of date.
const userCacheTTL = time.Second

func newUsers(rdb *redis.Client, cost int) *users {
	return &users{rdb: rdb, cost: cost, cache: map[string]cachedUser{}}
}

func checkUserName(name string) error {
	if !userNameRE.MatchString(name) {
		return fmt.Errorf("user name %q: 1 to 64 letters, digits, . _ @ -, starting with a letter or digit", name)
	}
	return nil
}

func (s *users) get(ctx context.Context, name string) (storedUser, bool, error) {
	b, err := s.rdb.HGet(ctx, keyspace.GatewayUsers, name).Bytes()
	if errors.Is(err, redis.Nil) {
		return storedUser{}, false, nil
	}
	if err != nil {
		return storedUser{}, false, fmt.Errorf("read user %s: %w", name, err)
	}
	var u storedUser
	if err := json.Unmarshal(b, &u); err != nil {
		return storedUser{}, false, fmt.Errorf("decode user %s: %w", name, err)
	}
	return u, true, nil
}

// cached is get through the cache.
func (s *users) cached(ctx context.Context, name string) (storedUser, bool, error) {
	now := time.Now()
	s.mu.Lock()
	c, hit := s.cache[name]
	s.mu.Unlock()
	if hit && now.Sub(c.fetched) < userCacheTTL {
		return c.u, c.ok, nil
	}
	u, ok, err := s.get(ctx, name)
	if err != nil {
		return u, ok, err
	}
	s.mu.Lock()
	if len(s.cache) > 10_000 {
		clear(s.cache)
	}
	s.cache[name] = cachedUser{u: u, ok: ok, fetched: now}
	s.mu.Unlock()
	return u, ok, nil
}

func (s *users) forget(name string) {
	s.mu.Lock()
	delete(s.cache, name)
	s.mu.Unlock()
}

func (s *users) list(ctx context.Context) ([]storedUser, error) {
	m, err := s.rdb.HGetAll(ctx, keyspace.GatewayUsers).Result()
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out := make([]storedUser, 0, len(m))
	for name, v := range m {
		var u storedUser
		if err := json.Unmarshal([]byte(v), &u); err != nil {
			return nil, fmt.Errorf("decode user %s: %w", name, err)
		}
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *users) hash(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// create adds a user; errUserExists when the name is taken.
func (s *users) create(ctx context.Context, name string, role Role, password string) (storedUser, error) {
	h, err := s.hash(password)
	if err != nil {
		return storedUser{}, err
	}
	now := time.Now().UnixMilli()
	// Gen starts at the clock, not 1: a user deleted and created again must not
	// revive tokens of the old one.
	u := storedUser{Name: name, Role: role.String(), Hash: h, Gen: time.Now().UnixNano(), Created: now, Updated: now}
	b, _ := json.Marshal(u)
	ok, err := s.rdb.HSetNX(ctx, keyspace.GatewayUsers, name, b).Result()
	if err != nil {
		return storedUser{}, fmt.Errorf("create user %s: %w", name, err)
	}
	if !ok {
		return storedUser{}, errUserExists
	}
	s.forget(name)
	return u, nil
}

// update changes a user atomically (optimistic: WATCH, retried a few times). The
// generation is raised, so every token issued before dies.
func (s *users) update(ctx context.Context, name string, change func(*storedUser) error) (storedUser, error) {
	var out storedUser
	txf := func(tx *redis.Tx) error {
		b, err := tx.HGet(ctx, keyspace.GatewayUsers, name).Bytes()
		if errors.Is(err, redis.Nil) {
			return errUserNotFound
		}
		if err != nil {
			return err
		}
		var u storedUser
		if err := json.Unmarshal(b, &u); err != nil {
			return fmt.Errorf("decode user %s: %w", name, err)
		}
		if err := change(&u); err != nil {
			return err
		}
		u.Gen++
		u.Updated = time.Now().UnixMilli()
		nb, _ := json.Marshal(u)
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, keyspace.GatewayUsers, name, nb)
			return nil
		})
		out = u
		return err
	}
	for range 5 {
		err := s.rdb.Watch(ctx, txf, keyspace.GatewayUsers)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		s.forget(name)
		return out, err
	}
	return out, fmt.Errorf("update user %s: too much contention", name)
}

func (s *users) delete(ctx context.Context, name string) (bool, error) {
	n, err := s.rdb.HDel(ctx, keyspace.GatewayUsers, name).Result()
	s.forget(name)
	if err != nil {
		return false, fmt.Errorf("delete user %s: %w", name, err)
	}
	return n == 1, nil
}

// dummyHash is compared against when the user does not exist, so a login takes
// as long for an unknown name as for a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("not a password"), bcrypt.MinCost)

// verify checks a password; a missing user still costs a bcrypt comparison.
func (s *users) verify(ctx context.Context, name, password string) (storedUser, bool, error) {
	u, ok, err := s.get(ctx, name)
	if err != nil {
		return u, false, err
	}
	if !ok {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return u, false, nil
	}
	return u, bcrypt.CompareHashAndPassword([]byte(u.Hash), []byte(password)) == nil, nil
}

// bootstrap creates the admin user when there is no user at all. The password is
// taken from VOLTAGE_ADMIN_PASSWORD or generated and written to out, once.
func (s *users) bootstrap(ctx context.Context, envPassword string, minLen int, out io.Writer) (bool, error) {
	n, err := s.rdb.HLen(ctx, keyspace.GatewayUsers).Result()
	if err != nil {
		return false, fmt.Errorf("count users: %w", err)
	}
	if n > 0 {
		return false, nil
	}
	pw := envPassword
	generated := pw == ""
	if generated {
		pw = randomPassword()
	} else if len(pw) < minLen {
		return false, fmt.Errorf("%s: shorter than %d characters", EnvAdminPassword, minLen)
	}
	if _, err := s.create(ctx, AdminUser, Admin, pw); err != nil {
		if errors.Is(err, errUserExists) {
			return false, nil // another gateway won the race
		}
		return false, err
	}
	if generated {
		fmt.Fprintf(out, "\n*** apigateway first start: user %q created with password %s\n*** It is shown only this once; change it (POST /auth/password).\n\n", AdminUser, pw)
	}
	return true, nil
}

func randomPassword() string { return rand.Text() } // 26 characters, 128 bits
