package apigateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/testharness"
)

func TestFirstStartCreatesAdminOnce(t *testing.T) {
	site := newGatewaySite(t)
	g := startGateway(t, site, func(c *apigatewayConfig) { c.AdminPassword = "" })
	out := g.out.String()
	i := strings.Index(out, "with password ")
	if i < 0 {
		t.Fatalf("first start printed no password: %q", out)
	}
	pw := strings.Fields(out[i+len("with password "):])[0]
	g.login("admin", pw)
	hash := site.HGet(keyspace.GatewayUsers, "admin")
	if strings.Contains(hash, pw) || !strings.Contains(hash, `"hash":"$2`) {
		t.Fatalf("stored user is not bcrypt-hashed: %s", hash)
	}
	key := site.RDB.Get(t.Context(), keyspace.GatewaySigningKey).Val()
	if len(key) < 40 {
		t.Fatalf("signing key %q too short", key)
	}
	g.svc.Stop()
	// A second start keeps the admin and the key, and prints nothing.
	g2 := startGateway(t, site, func(c *apigatewayConfig) { c.AdminPassword = "" })
	if g2.out.Len() != 0 {
		t.Fatalf("second start printed %q", g2.out.String())
	}
	g2.login("admin", pw)
	if k := site.RDB.Get(t.Context(), keyspace.GatewaySigningKey).Val(); k != key {
		t.Fatal("signing key changed on restart")
	}
}

func TestLoginRefreshLogout(t *testing.T) {
	g := newGateway(t)
	tk := g.login("admin", adminPassword)
	if tk.Role != "admin" || tk.Access == "" || tk.Refresh == "" {
		t.Fatalf("login answered %+v", tk)
	}
	var me struct{ Name, Role string }
	g.expect(g.do("GET", "/auth/me", tk.Access, nil), 200).decode(t, &me)
	if me.Name != "admin" || me.Role != "admin" {
		t.Fatalf("me = %+v", me)
	}
	g.expect(g.do("POST", "/auth/login", "", map[string]string{"user": "admin", "password": "wrong"}), 401)
	g.expect(g.do("POST", "/auth/login", "", map[string]string{"user": "nobody", "password": "wrong"}), 401)

	// Rotation: the new refresh token works, the old one is spent, and using the
	// spent one revokes the whole family (the new one too).
	var tk2 tokens
	g.expect(g.do("POST", "/auth/refresh", "", map[string]string{"refresh_token": tk.Refresh}), 200).decode(t, &tk2)
	if tk2.Refresh == tk.Refresh || tk2.Access == "" {
		t.Fatal("refresh did not rotate")
	}
	g.expect(g.do("POST", "/auth/refresh", "", map[string]string{"refresh_token": tk.Refresh}), 401)
	g.expect(g.do("POST", "/auth/refresh", "", map[string]string{"refresh_token": tk2.Refresh}), 401)

	// Logout ends that login only.
	a := g.login("admin", adminPassword)
	b := g.login("admin", adminPassword)
	g.expect(g.do("POST", "/auth/logout", a.Access, map[string]string{"refresh_token": a.Refresh}), 204)
	g.expect(g.do("POST", "/auth/refresh", "", map[string]string{"refresh_token": a.Refresh}), 401)
	g.expect(g.do("POST", "/auth/refresh", "", map[string]string{"refresh_token": b.Refresh}), 200)
	// Nobody can log out someone else's session.
	op := g.user("olga", "operator")
	c := g.login("admin", adminPassword)
	g.expect(g.do("POST", "/auth/logout", op, map[string]string{"refresh_token": c.Refresh}), 401)
	g.expect(g.do("POST", "/auth/refresh", "", map[string]string{"refresh_token": c.Refresh}), 200)

	assertAudit(t, g, "login", "admin")
	assertAudit(t, g, "login_failed", "nobody")
	assertAudit(t, g, "refresh_reuse_revoked", "admin")
	assertAudit(t, g, "logout", "admin")
}

// TestConcurrentRefreshOneWins: requests racing with one refresh token get one
// new pair between them; the others are reuses, which end the login.
func TestConcurrentRefreshOneWins(t *testing.T) {
	g := newGateway(t)
	tk := g.login("admin", adminPassword)
	const racers = 4
	start := make(chan struct{})
	codes := make(chan int, racers)
	var wg sync.WaitGroup
	for range racers {
		wg.Go(func() {
			<-start
			body := strings.NewReader(`{"refresh_token":"` + tk.Refresh + `"}`)
			resp, err := http.Post(g.url+"/auth/refresh", "application/json", body)
			if err != nil {
				codes <- -1
				return
			}
			_ = resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	close(start)
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	if got[200] != 1 || got[401] != racers-1 {
		t.Fatalf("racing refreshes answered %v, want one 200 and %d × 401", got, racers-1)
	}
	assertAudit(t, g, "refresh_reuse_revoked", "admin")
}

func TestPasswordChangeRevokesTokens(t *testing.T) {
	g := newGateway(t)
	g.user("vera", "viewer")
	tk := g.login("vera", "vera-password")
	g.expect(g.do("POST", "/auth/password", tk.Access, map[string]string{"current_password": "wrong-password", "new_password": "new-password-1"}), 422)
	g.expect(g.do("POST", "/auth/password", tk.Access, map[string]string{"current_password": "vera-password", "new_password": "short"}), 422)
	g.expect(g.do("POST", "/auth/password", tk.Access, map[string]string{"current_password": "vera-password", "new_password": "new-password-1"}), 204)
	g.expect(g.do("POST", "/auth/refresh", "", map[string]string{"refresh_token": tk.Refresh}), 401)
	// The access token dies within the user cache's second.
	waitStatus(t, g, "GET", "/auth/me", tk.Access, 401)
	g.expect(g.do("POST", "/auth/login", "", map[string]string{"user": "vera", "password": "vera-password"}), 401)
	g.login("vera", "new-password-1")
	assertAudit(t, g, "password_changed", "vera")
}

func TestLoginLockoutAndRateLimit(t *testing.T) {
	g := newGateway(t)
	g.user("lee", "viewer")
	for range 5 {
		g.expect(g.do("POST", "/auth/login", "", map[string]string{"user": "lee", "password": "bad"}), 401)
	}
	r := g.expect(g.do("POST", "/auth/login", "", map[string]string{"user": "lee", "password": "lee-password"}), 429)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	assertAudit(t, g, "login_locked", "lee")
	// The lock ends with its window.
	g.site.RDB.Del(t.Context(), keyspace.GatewayLoginFailures("lee"))
	g.login("lee", "lee-password")

	// One address may try 30 times a minute, whatever the user names.
	n := 0
	for ; n < 40; n++ {
		r := g.do("POST", "/auth/login", "", map[string]string{"user": "u" + string(rune('a'+n%26)), "password": "x"})
		if r.status == 429 {
			break
		}
	}
	if n >= 40 {
		t.Fatal("no rate limit after 40 attempts from one address")
	}
}

func TestUsersAdminOnly(t *testing.T) {
	g := newGateway(t)
	adm := g.admin()
	eng := g.user("erik", "engineer")
	g.expect(g.do("GET", "/users", eng, nil), 403)
	g.expect(g.do("POST", "/users", eng, map[string]string{"name": "x", "role": "admin", "password": "long-enough-pw"}), 403)
	g.expect(g.do("POST", "/users", adm, map[string]string{"name": "erik", "role": "viewer", "password": "long-enough-pw"}), 409)
	g.expect(g.do("POST", "/users", adm, map[string]string{"name": "../x", "role": "viewer", "password": "long-enough-pw"}), 422)
	g.expect(g.do("POST", "/users", adm, map[string]string{"name": "y", "role": "root", "password": "long-enough-pw"}), 422)
	var list struct{ Users []struct{ Name, Role string } }
	g.expect(g.do("GET", "/users", adm, nil), 200).decode(t, &list)
	if len(list.Users) != 2 || list.Users[0].Name != "admin" || list.Users[1].Name != "erik" {
		t.Fatalf("users = %+v", list.Users)
	}
	// A role change revokes the user's tokens: an engineer token must not keep
	// engineer rights after a demotion.
	g.expect(g.do("PATCH", "/users/erik", adm, map[string]string{"role": "viewer"}), 200)
	waitStatus(t, g, "GET", "/site", eng, 401)
	g.expect(g.do("DELETE", "/users/erik", adm, nil), 204)
	g.expect(g.do("DELETE", "/users/erik", adm, nil), 404)
	g.expect(g.do("DELETE", "/users/admin", adm, nil), 409)
	g.expect(g.do("PATCH", "/users/admin", adm, map[string]string{"role": "viewer"}), 422)
	assertAudit(t, g, "user_deleted", "admin")
}

// waitStatus waits until a request answers status (token checks read users with a
// cache of a second).
func waitStatus(t *testing.T, g *gw, method, path, token string, status int) {
	t.Helper()
	last := 0
	testharness.WaitFor(t, 10*time.Second, fmt.Sprintf("%s %s answering %d (last %d)", method, path, status, last), func() bool {
		last = g.do(method, path, token, nil).status
		return last == status
	})
}

// assertAudit checks audit:log has an entry of action by user.
func assertAudit(t *testing.T, g *gw, action, user string) {
	t.Helper()
	msgs, err := g.site.RDB.XRevRangeN(t.Context(), keyspace.Audit, "+", "-", 1000).Result()
	if err != nil && err != redis.Nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.Values["action"] == action && m.Values["user"] == user {
			return
		}
	}
	t.Fatalf("audit:log has no %s by %s", action, user)
}
