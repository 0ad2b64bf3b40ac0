package auth_test

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/auth"
	"github.com/voltageems/voltage/shared/testharness"
)

func TestUsers(t *testing.T) {
	eachStore(t, func(t *testing.T, st auth.Store) {
		f := newFixture(st, time.Hour)
		ctx := t.Context()
		// "@" is legal in a user name but not in a KV key: the store must cope.
		ann := f.user(t, "ann@plant.example", auth.Operator, "north", "south")
		if _, err := f.users.Create(ctx, ann.Name, auth.Viewer, "other-password", nil); !errors.Is(err, auth.ErrUserExists) {
			t.Fatalf("create twice: %v", err)
		}
		if _, ok, err := f.users.Verify(ctx, ann.Name, ann.Name+"-password"); err != nil || !ok {
			t.Fatalf("right password: ok=%v err=%v", ok, err)
		}
		if _, ok, err := f.users.Verify(ctx, ann.Name, "wrong"); err != nil || ok {
			t.Fatalf("wrong password: ok=%v err=%v", ok, err)
		}
		if _, ok, err := f.users.Verify(ctx, "nobody", "x"); err != nil || ok {
			t.Fatalf("unknown user: ok=%v err=%v", ok, err)
		}
		got, ok, err := f.users.Get(ctx, ann.Name)
		if err != nil || !ok || got.Role != "operator" || strings.Join(got.Sites, ",") != "north,south" || !strings.HasPrefix(got.Hash, "$2") {
			t.Fatalf("get: %+v ok=%v err=%v", got, ok, err)
		}
		f.user(t, "bob", auth.Viewer)
		list, err := f.users.List(ctx)
		if err != nil || len(list) != 2 || list[0].Name != ann.Name || list[1].Name != "bob" {
			t.Fatalf("list: %+v err=%v", list, err)
		}

		up, err := f.users.Update(ctx, ann.Name, func(u *auth.User) error {
			u.Role = auth.Engineer.String()
			u.Sites = []string{"east"}
			return nil
		})
		if err != nil || up.Gen != ann.Gen+1 || up.Role != "engineer" {
			t.Fatalf("update: %+v err=%v", up, err)
		}
		got, _, _ = f.users.Get(ctx, ann.Name)
		if got.Gen != up.Gen || strings.Join(got.Sites, ",") != "east" {
			t.Fatalf("after update: %+v", got)
		}
		refuse := errors.New("refused")
		if _, err := f.users.Update(ctx, ann.Name, func(*auth.User) error { return refuse }); !errors.Is(err, refuse) {
			t.Fatalf("update whose change fails: %v", err)
		}
		if _, err := f.users.Update(ctx, "nobody", func(*auth.User) error { return nil }); !errors.Is(err, auth.ErrUserNotFound) {
			t.Fatalf("update unknown: %v", err)
		}

		if ok, err := f.users.Delete(ctx, "bob"); err != nil || !ok {
			t.Fatalf("delete: ok=%v err=%v", ok, err)
		}
		if ok, err := f.users.Delete(ctx, "bob"); err != nil || ok {
			t.Fatalf("delete twice: ok=%v err=%v", ok, err)
		}
		if _, ok, _ := f.users.Get(ctx, "bob"); ok {
			t.Fatal("deleted user still there")
		}
		// A deleted name can be created again.
		f.user(t, "bob", auth.Admin)
	})
}

// TestConcurrentUpdatesAllLand: updates racing on one user are serialised by the
// store's compare-and-set, none is lost.
func TestConcurrentUpdatesAllLand(t *testing.T) {
	eachStore(t, func(t *testing.T, st auth.Store) {
		f := newFixture(st, time.Hour)
		u := f.user(t, "eve", auth.Viewer)
		const n = 4
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				site := string(rune('a' + i))
				_, err := f.users.Update(t.Context(), "eve", func(u *auth.User) error {
					u.Sites = append(u.Sites, site)
					return nil
				})
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		ok := 0
		for err := range errs {
			if err == nil {
				ok++
			} else if !strings.Contains(err.Error(), "contention") {
				t.Fatalf("update: %v", err)
			}
		}
		got, _, _ := f.users.Get(t.Context(), "eve")
		if len(got.Sites) != ok || got.Gen != u.Gen+int64(ok) || ok == 0 {
			t.Fatalf("%d updates succeeded but the record has sites %v, gen +%d", ok, got.Sites, got.Gen-u.Gen)
		}
	})
}

func TestBootstrap(t *testing.T) {
	eachStore(t, func(t *testing.T, st auth.Store) {
		f := newFixture(st, time.Hour)
		ctx := t.Context()
		if _, err := f.users.Bootstrap(ctx, auth.Bootstrap{Password: "short", MinLength: 12}); err == nil {
			t.Fatal("a given password below the minimum was accepted")
		}
		var out bytes.Buffer
		created, err := f.users.Bootstrap(ctx, auth.Bootstrap{MinLength: 12, Out: &out, Service: "hub"})
		if err != nil || !created {
			t.Fatalf("first bootstrap: created=%v err=%v", created, err)
		}
		m := regexp.MustCompile(`hub first start: user "admin" created with password ([A-Z2-7]{26})`).FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("no password printed: %q", out.String())
		}
		u, ok, err := f.users.Verify(ctx, auth.AdminUser, m[1])
		if err != nil || !ok || u.Role != "admin" || !u.CoversSite("any-site") {
			t.Fatalf("admin: %+v ok=%v err=%v", u, ok, err)
		}
		out.Reset()
		created, err = f.users.Bootstrap(ctx, auth.Bootstrap{MinLength: 12, Out: &out})
		if err != nil || created || out.Len() != 0 {
			t.Fatalf("second bootstrap: created=%v err=%v out=%q", created, err, out.String())
		}
	})
}

func TestGivenAdminPassword(t *testing.T) {
	eachStore(t, func(t *testing.T, st auth.Store) {
		f := newFixture(st, time.Hour)
		var out bytes.Buffer
		if created, err := f.users.Bootstrap(t.Context(), auth.Bootstrap{Password: "a-long-given-pw", MinLength: 12, Out: &out}); err != nil || !created {
			t.Fatalf("bootstrap: %v %v", created, err)
		}
		if out.Len() != 0 {
			t.Fatalf("a given password was printed: %q", out.String())
		}
		if _, ok, _ := f.users.Verify(t.Context(), "admin", "a-long-given-pw"); !ok {
			t.Fatal("the given password does not verify")
		}
	})
}

func TestGenerationBumpKillsTokens(t *testing.T) {
	eachStore(t, func(t *testing.T, st auth.Store) {
		f := newFixture(st, time.Hour)
		ctx := t.Context()
		u := f.user(t, "carl", auth.Engineer)
		p := f.login(t, u)
		who, err := f.tokens.Verify(ctx, p.AccessToken)
		if err != nil || who.User != "carl" || who.Role != auth.Engineer {
			t.Fatalf("verify: %+v %v", who, err)
		}
		h, _ := f.users.Hash("a-new-password")
		if _, err := f.users.Update(ctx, "carl", func(u *auth.User) error { u.Hash = h; return nil }); err != nil {
			t.Fatal(err)
		}
		// The check reads the user at most UserCacheTTL out of date.
		testharness.Eventually(t, 3*auth.UserCacheTTL, func() error {
			if _, err := f.tokens.Verify(ctx, p.AccessToken); !errors.Is(err, auth.ErrBadToken) {
				return errors.New("the old access token still verifies")
			}
			return nil
		})
		if _, _, err := f.tokens.Refresh(ctx, p.RefreshToken); !errors.Is(err, auth.ErrBadToken) {
			t.Fatalf("refresh of the old generation: %v", err)
		}
		// A user deleted and created again does not inherit the old tokens.
		q := f.login(t, mustGet(t, f, "carl"))
		if _, err := f.users.Delete(ctx, "carl"); err != nil {
			t.Fatal(err)
		}
		f.user(t, "carl", auth.Engineer)
		testharness.Eventually(t, 3*auth.UserCacheTTL, func() error {
			if _, err := f.tokens.Verify(ctx, q.AccessToken); !errors.Is(err, auth.ErrBadToken) {
				return errors.New("the deleted user's token still verifies")
			}
			return nil
		})
		if _, _, err := f.tokens.Refresh(ctx, q.RefreshToken); !errors.Is(err, auth.ErrBadToken) {
			t.Fatalf("refresh of a deleted user's token: %v", err)
		}
	})
}

func mustGet(t *testing.T, f *fixture, name string) auth.User {
	t.Helper()
	u, ok, err := f.users.Get(t.Context(), name)
	if err != nil || !ok {
		t.Fatalf("get %s: ok=%v err=%v", name, ok, err)
	}
	return u
}

func TestRefreshRotationAndReuse(t *testing.T) {
	eachStore(t, func(t *testing.T, st auth.Store) {
		f := newFixture(st, time.Hour)
		ctx := t.Context()
		u := f.user(t, "dora", auth.Viewer)
		p0 := f.login(t, u)
		other := f.login(t, u) // a second login of the same user: another family
		p1, who, err := f.tokens.Refresh(ctx, p0.RefreshToken)
		if err != nil || who != "dora" || p1.RefreshToken == p0.RefreshToken || p1.User != "dora" || p1.Role != "viewer" {
			t.Fatalf("refresh: %+v %s %v", p1, who, err)
		}
		if _, err := f.tokens.Verify(ctx, p1.AccessToken); err != nil {
			t.Fatalf("rotated access token: %v", err)
		}
		p2, _, err := f.tokens.Refresh(ctx, p1.RefreshToken)
		if err != nil {
			t.Fatalf("second rotation: %v", err)
		}
		// Replaying a spent token revokes the family: the newest token dies too.
		if _, who, err := f.tokens.Refresh(ctx, p0.RefreshToken); !errors.Is(err, auth.ErrRefreshReuse) || who != "dora" {
			t.Fatalf("replay: %s %v", who, err)
		}
		if _, _, err := f.tokens.Refresh(ctx, p2.RefreshToken); !errors.Is(err, auth.ErrBadToken) {
			t.Fatalf("newest token after the family was revoked: %v", err)
		}
		// The other login is untouched.
		if _, _, err := f.tokens.Refresh(ctx, other.RefreshToken); err != nil {
			t.Fatalf("other login: %v", err)
		}
		if _, _, err := f.tokens.Refresh(ctx, "never-issued"); !errors.Is(err, auth.ErrBadToken) {
			t.Fatalf("unknown token: %v", err)
		}
	})
}

func TestRevoke(t *testing.T) {
	eachStore(t, func(t *testing.T, st auth.Store) {
		f := newFixture(st, time.Hour)
		ctx := t.Context()
		p := f.login(t, f.user(t, "finn", auth.Viewer))
		if err := f.tokens.Revoke(ctx, "someone-else", p.RefreshToken); !errors.Is(err, auth.ErrBadToken) {
			t.Fatalf("revoke another user's login: %v", err)
		}
		if err := f.tokens.Revoke(ctx, "finn", p.RefreshToken); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.tokens.Refresh(ctx, p.RefreshToken); !errors.Is(err, auth.ErrBadToken) {
			t.Fatalf("refresh after logout: %v", err)
		}
	})
}

// TestConcurrentRefresh: several requests present one refresh token at the same
// moment; exactly one gets a new pair, every other one is a reuse, and the family
// ends up revoked (the winner's new refresh token is dead too).
func TestConcurrentRefresh(t *testing.T) {
	eachStore(t, func(t *testing.T, st auth.Store) {
		f := newFixture(st, time.Hour)
		u := f.user(t, "gus", auth.Operator)
		for round := range 10 {
			p := f.login(t, u)
			const racers = 6
			start := make(chan struct{})
			type result struct {
				p   auth.TokenPair
				err error
			}
			results := make(chan result, racers)
			var wg sync.WaitGroup
			for range racers {
				wg.Go(func() {
					<-start
					np, _, err := f.tokens.Refresh(t.Context(), p.RefreshToken)
					results <- result{np, err}
				})
			}
			close(start)
			wg.Wait()
			close(results)
			var won []auth.TokenPair
			for r := range results {
				switch {
				case r.err == nil:
					won = append(won, r.p)
				case errors.Is(r.err, auth.ErrRefreshReuse):
				default:
					t.Fatalf("round %d: unexpected error %v", round, r.err)
				}
			}
			if len(won) != 1 {
				t.Fatalf("round %d: %d of %d racing refreshes succeeded, want exactly 1", round, len(won), racers)
			}
			if _, _, err := f.tokens.Refresh(t.Context(), won[0].RefreshToken); !errors.Is(err, auth.ErrBadToken) {
				t.Fatalf("round %d: the winner's refresh token after the reuse: %v", round, err)
			}
		}
	})
}

func TestExpiry(t *testing.T) {
	eachStore(t, func(t *testing.T, st auth.Store) {
		f := newFixture(st, time.Second)
		ctx := t.Context()
		u := f.user(t, "hana", auth.Viewer)

		// Access tokens: 15 min, 5 s leeway.
		f.offset = -15*time.Minute - 3*time.Second
		within := f.login(t, u)
		f.offset = -15*time.Minute - 10*time.Second
		past := f.login(t, u)
		f.offset = 0
		if _, err := f.tokens.Verify(ctx, within.AccessToken); err != nil {
			t.Fatalf("expired 3 s ago (within the leeway): %v", err)
		}
		if _, err := f.tokens.Verify(ctx, past.AccessToken); !errors.Is(err, auth.ErrBadToken) {
			t.Fatalf("expired 10 s ago: %v", err)
		}
		f.offset = time.Hour
		future := f.login(t, u)
		f.offset = 0
		if _, err := f.tokens.Verify(ctx, future.AccessToken); !errors.Is(err, auth.ErrBadToken) {
			t.Fatalf("issued an hour in the future: %v", err)
		}

		// Refresh tokens: 1 s here. Wait (without using it) until the store no
		// longer has it, then it is refused as unknown, not as a reuse.
		p := f.login(t, u)
		if _, ok, err := st.GetRefresh(ctx, auth.TokenHash(p.RefreshToken)); err != nil || !ok {
			t.Fatalf("fresh refresh token not stored: %v %v", ok, err)
		}
		testharness.Eventually(t, 5*time.Second, func() error {
			_, ok, err := st.GetRefresh(ctx, auth.TokenHash(p.RefreshToken))
			if err != nil || ok {
				return errors.New("refresh token still stored")
			}
			return nil
		})
		if _, _, err := f.tokens.Refresh(ctx, p.RefreshToken); !errors.Is(err, auth.ErrBadToken) {
			t.Fatalf("expired refresh token: %v", err)
		}
	})
}

func TestSharedSigningKey(t *testing.T) {
	eachStore(t, func(t *testing.T, st auth.Store) {
		// Two processes on one store agree on one key: the first creates it, the
		// second reads it.
		a, b := newFixture(st, time.Hour), newFixture(st, time.Hour)
		p := a.login(t, a.user(t, "ida", auth.Viewer))
		if _, err := b.tokens.Verify(t.Context(), p.AccessToken); err != nil {
			t.Fatalf("token of one process in the other: %v", err)
		}
		k1, err := st.SigningKey(t.Context(), bytes.Repeat([]byte{1}, 32))
		if err != nil || len(k1) != 32 || bytes.Equal(k1, bytes.Repeat([]byte{1}, 32)) {
			t.Fatalf("signing key replaced by a later fresh one: %x %v", k1, err)
		}
	})
}

func TestCoversSite(t *testing.T) {
	for _, c := range []struct {
		role  auth.Role
		sites []string
		site  string
		want  bool
	}{
		{auth.Admin, nil, "north", true},
		{auth.Viewer, nil, "north", false},
		{auth.Operator, []string{"north"}, "north", true},
		{auth.Operator, []string{"north"}, "south", false},
		{auth.Engineer, []string{"*"}, "south", true},
		{auth.Viewer, []string{"north"}, "", false},
	} {
		u := auth.User{Role: c.role.String(), Sites: c.sites}
		if got := u.CoversSite(c.site); got != c.want {
			t.Errorf("%s %v covers %q = %v, want %v", c.role, c.sites, c.site, got, c.want)
		}
	}
}

func TestRoles(t *testing.T) {
	for _, n := range auth.UserRoles {
		r, err := auth.ParseRole(n)
		if err != nil || r.String() != n {
			t.Errorf("%s: %v %v", n, r, err)
		}
	}
	for _, bad := range []string{"public", "root", "", "Admin"} {
		if _, err := auth.ParseRole(bad); err == nil {
			t.Errorf("role %q accepted", bad)
		}
	}
	if !(auth.Viewer < auth.Operator && auth.Operator < auth.Engineer && auth.Engineer < auth.Admin) {
		t.Error("roles out of order")
	}
}
