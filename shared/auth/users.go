package auth

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// EnvAdminPassword sets the first admin's password on the first start instead of a
// generated one.
const EnvAdminPassword = "VOLTAGE_ADMIN_PASSWORD"

// AdminUser is the user the first start creates.
const AdminUser = "admin"

// AllSites in User.Sites covers every site.
const AllSites = "*"

// User is a user record as stored (JSON; the gateway's gw:users format).
type User struct {
	Name    string   `json:"name"`
	Role    string   `json:"role"`
	Hash    string   `json:"hash"` // bcrypt
	Gen     int64    `json:"gen"`  // raised on every change: older tokens die
	Created int64    `json:"created"`
	Updated int64    `json:"updated"`
	Sites   []string `json:"sites,omitempty"` // site scope (cloud); see CoversSite
}

// CoversSite reports whether the user may act on a site: an admin covers every
// site, any other role the sites listed in Sites ("*" = all). The edge gateway
// serves one site and ignores the scope.
func (u User) CoversSite(site string) bool {
	if u.Role == Admin.String() {
		return true
	}
	return slices.Contains(u.Sites, AllSites) || (site != "" && slices.Contains(u.Sites, site))
}

var userNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// CheckUserName checks a new user's name: 1 to 64 letters, digits, . _ @ -.
func CheckUserName(name string) error {
	if !userNameRE.MatchString(name) {
		return fmt.Errorf("user name %q: 1 to 64 letters, digits, . _ @ -, starting with a letter or digit", name)
	}
	return nil
}

// Users is the user table, with a short cache for the per-request check that a
// token's user still exists with the same generation and role.
type Users struct {
	store Store
	cost  int

	mu    sync.Mutex
	cache map[string]cachedUser
}

type cachedUser struct {
	u       User
	ok      bool
	fetched time.Time
}

// UserCacheTTL bounds how long a revoked token (password change, deletion) can
// still be used: the access token check reads the user at most this much out of date.
const UserCacheTTL = time.Second

// NewUsers returns the user table in store; bcryptCost is the cost of new hashes
// (bcrypt.DefaultCost when 0).
func NewUsers(store Store, bcryptCost int) *Users {
	if bcryptCost == 0 {
		bcryptCost = bcrypt.DefaultCost
	}
	return &Users{store: store, cost: bcryptCost, cache: map[string]cachedUser{}}
}

func decodeUser(name string, b []byte) (User, error) {
	var u User
	if err := json.Unmarshal(b, &u); err != nil {
		return User{}, fmt.Errorf("decode user %s: %w", name, err)
	}
	return u, nil
}

// Get reads a user from the store.
func (s *Users) Get(ctx context.Context, name string) (User, bool, error) {
	b, ok, err := s.store.GetUser(ctx, name)
	if err != nil {
		return User{}, false, fmt.Errorf("read user %s: %w", name, err)
	}
	if !ok {
		return User{}, false, nil
	}
	u, err := decodeUser(name, b)
	return u, err == nil, err
}

// Cached is Get through the cache: at most UserCacheTTL out of date.
func (s *Users) Cached(ctx context.Context, name string) (User, bool, error) {
	now := time.Now()
	s.mu.Lock()
	c, hit := s.cache[name]
	s.mu.Unlock()
	if hit && now.Sub(c.fetched) < UserCacheTTL {
		return c.u, c.ok, nil
	}
	u, ok, err := s.Get(ctx, name)
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

func (s *Users) forget(name string) {
	s.mu.Lock()
	delete(s.cache, name)
	s.mu.Unlock()
}

// List returns every user, by name.
func (s *Users) List(ctx context.Context) ([]User, error) {
	m, err := s.store.ListUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out := make([]User, 0, len(m))
	for name, b := range m {
		u, err := decodeUser(name, b)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Hash hashes a password with the table's bcrypt cost (for Update).
func (s *Users) Hash(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// Create adds a user; ErrUserExists when the name is taken. The name is not
// checked here (CheckUserName does, where names enter). sites is the site scope
// (nil for the edge).
func (s *Users) Create(ctx context.Context, name string, role Role, password string, sites []string) (User, error) {
	h, err := s.Hash(password)
	if err != nil {
		return User{}, err
	}
	now := time.Now()
	// Gen starts at the clock, not 1: a user deleted and created again must not
	// revive tokens of the old one.
	u := User{Name: name, Role: role.String(), Hash: h, Gen: now.UnixNano(),
		Created: now.UnixMilli(), Updated: now.UnixMilli(), Sites: slices.Clone(sites)}
	b, err := json.Marshal(u)
	if err != nil {
		return User{}, fmt.Errorf("encode user %s: %w", name, err)
	}
	ok, err := s.store.CreateUser(ctx, name, b)
	if err != nil {
		return User{}, fmt.Errorf("create user %s: %w", name, err)
	}
	if !ok {
		return User{}, ErrUserExists
	}
	s.forget(name)
	return u, nil
}

// Update changes a user atomically (change may run more than once when writers
// race); ErrUserNotFound when there is none. The generation is raised, so every
// token issued before dies.
func (s *Users) Update(ctx context.Context, name string, change func(*User) error) (User, error) {
	var out User
	err := s.store.UpdateUser(ctx, name, func(old []byte) ([]byte, error) {
		u, err := decodeUser(name, old)
		if err != nil {
			return nil, err
		}
		if err := change(&u); err != nil {
			return nil, err
		}
		u.Name = name
		u.Gen++
		u.Updated = time.Now().UnixMilli()
		out = u
		return json.Marshal(u)
	})
	s.forget(name)
	if err != nil {
		if errors.Is(err, ErrUserNotFound) {
			return User{}, err
		}
		return User{}, fmt.Errorf("update user %s: %w", name, err)
	}
	return out, nil
}

// Delete removes a user; false when there was none.
func (s *Users) Delete(ctx context.Context, name string) (bool, error) {
	ok, err := s.store.DeleteUser(ctx, name)
	s.forget(name)
	if err != nil {
		return false, fmt.Errorf("delete user %s: %w", name, err)
	}
	return ok, nil
}

// dummyHash is compared against when the user does not exist, so a login takes
// as long for an unknown name as for a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("not a password"), bcrypt.MinCost)

// Verify checks a password; a missing user still costs a bcrypt comparison.
func (s *Users) Verify(ctx context.Context, name, password string) (User, bool, error) {
	u, ok, err := s.Get(ctx, name)
	if err != nil {
		return u, false, err
	}
	if !ok {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return u, false, nil
	}
	return u, bcrypt.CompareHashAndPassword([]byte(u.Hash), []byte(password)) == nil, nil
}

// Bootstrap is how the first admin is made.
type Bootstrap struct {
	Password  string    // "" generates one (128 bits) and prints it to Out, once
	MinLength int       // a given Password must be at least this long
	Out       io.Writer // where a generated password is printed (not the log); nil = not printed
	Service   string    // names the service in the printed notice, e.g. "apigateway"
}

// Bootstrap creates the admin user (role admin, every site) when there is no user
// at all; created is false when there already is one, also when another process
// won the race.
func (s *Users) Bootstrap(ctx context.Context, b Bootstrap) (created bool, err error) {
	exists, err := s.store.HasUsers(ctx)
	if err != nil {
		return false, fmt.Errorf("count users: %w", err)
	}
	if exists {
		return false, nil
	}
	pw := b.Password
	generated := pw == ""
	if generated {
		pw = rand.Text() // 26 characters, 128 bits
	} else if len(pw) < b.MinLength {
		return false, fmt.Errorf("%s: shorter than %d characters", EnvAdminPassword, b.MinLength)
	}
	if _, err := s.Create(ctx, AdminUser, Admin, pw, nil); err != nil {
		if errors.Is(err, ErrUserExists) {
			return false, nil
		}
		return false, err
	}
	if generated && b.Out != nil {
		fmt.Fprintf(b.Out, "\n*** %s first start: user %q created with password %s\n*** It is shown only this once; change it (POST /auth/password).\n\n", b.Service, AdminUser, pw)
	}
	return true, nil
}
