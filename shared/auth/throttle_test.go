package auth_test

import (
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/auth"
	"github.com/voltageems/voltage/shared/testharness"
)

func TestThrottle(t *testing.T) {
	eachStore(t, func(t *testing.T, st auth.Store) {
		ctx := t.Context()
		th := auth.NewThrottle(st, auth.LoginLimits{PerAddressPerMinute: 5, MaxFailures: 2, Lockout: time.Minute})
		admit := func(addr, user string) *auth.Refusal {
			t.Helper()
			r, err := th.Admit(ctx, addr, user)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		// A user name is locked after MaxFailures failures, for the rest of the window.
		for range 2 {
			if r := admit("10.0.0.1", "ann@x"); r != nil {
				t.Fatalf("refused before the limit: %+v", r)
			}
			if err := th.Failed(ctx, "ann@x"); err != nil {
				t.Fatal(err)
			}
		}
		r := admit("10.0.0.1", "ann@x")
		if r == nil || !r.Locked || r.RetryAfter <= 0 || r.RetryAfter > time.Minute {
			t.Fatalf("locked user: %+v", r)
		}
		if r := admit("10.0.0.1", "bob"); r != nil {
			t.Fatalf("another user is locked too: %+v", r)
		}
		if err := th.Succeeded(ctx, "ann@x"); err != nil {
			t.Fatal(err)
		}
		if r := admit("10.0.0.1", "ann@x"); r != nil {
			t.Fatalf("still locked after a good login: %+v", r)
		}
		// That was the 5th attempt from this address: the 6th is throttled, whoever
		// it is for, and another address is not.
		if r := admit("10.0.0.1", "carl"); r == nil || r.Locked || r.RetryAfter != time.Minute {
			t.Fatalf("6th attempt from one address: %+v", r)
		}
		if r := admit("[2001:db8::1]:443", "carl"); r != nil {
			t.Fatalf("another address throttled: %+v", r)
		}
	})
}

func TestLockoutEnds(t *testing.T) {
	eachStore(t, func(t *testing.T, st auth.Store) {
		ctx := t.Context()
		lc := st
		if err := lc.CountUserFailure(ctx, "dora", 300*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		n, left, err := lc.UserFailures(ctx, "dora")
		if err != nil || n != 1 || left <= 0 || left > 300*time.Millisecond {
			t.Fatalf("failures: %d left %v err %v", n, left, err)
		}
		testharness.WaitFor(t, 5*time.Second, "the failure window ended", func() bool {
			n, _, err := lc.UserFailures(ctx, "dora")
			return err == nil && n == 0
		})
		// A new window starts from one.
		if err := lc.CountUserFailure(ctx, "dora", time.Minute); err != nil {
			t.Fatal(err)
		}
		if n, _, _ := lc.UserFailures(ctx, "dora"); n != 1 {
			t.Fatalf("new window starts at %d", n)
		}
	})
}
