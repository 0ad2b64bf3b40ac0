package auth

import (
	"context"
	"fmt"
	"time"
)

// LoginCounters are the counters behind login throttling, part of Store. Each counter starts with a
// window when it is first counted and is gone when the window ends.
type LoginCounters interface {
	// CountAddressAttempt counts one login attempt from a client address and
	// returns the attempts within the current window.
	CountAddressAttempt(ctx context.Context, addr string, window time.Duration) (int64, error)
	// UserFailures returns the failed logins of a user name within the current
	// window and the time left of it.
	UserFailures(ctx context.Context, user string) (n int64, left time.Duration, err error)
	// CountUserFailure counts one failed login of a user name.
	CountUserFailure(ctx context.Context, user string, window time.Duration) error
	// ClearUserFailures forgets a user name's failures (after a good login).
	ClearUserFailures(ctx context.Context, user string) error
}

// LoginLimits are the throttling rules of logins.
type LoginLimits struct {
	PerAddressPerMinute int           // attempts of one client address per minute
	MaxFailures         int           // failed logins of one user name that lock it …
	Lockout             time.Duration // … for the rest of this window
}

// Throttle refuses logins before the password is looked at: too many attempts
// from one address (cheap, protects every user) or a user name locked after too
// many failures.
type Throttle struct {
	c LoginCounters
	l LoginLimits
}

// NewThrottle returns the throttle over c; it holds no state of its own, so it is
// cheap to make per request.
func NewThrottle(c LoginCounters, l LoginLimits) *Throttle { return &Throttle{c: c, l: l} }

// Refusal says why a login attempt is refused.
type Refusal struct {
	Locked     bool          // false: the address is throttled; true: the user name is locked
	RetryAfter time.Duration // when to try again
}

// Admit counts an attempt from addr for user and returns a Refusal when the
// attempt must be refused without checking the password; nil admits it.
func (t *Throttle) Admit(ctx context.Context, addr, user string) (*Refusal, error) {
	n, err := t.c.CountAddressAttempt(ctx, addr, time.Minute)
	if err != nil {
		return nil, fmt.Errorf("count login attempt: %w", err)
	}
	if n > int64(t.l.PerAddressPerMinute) {
		return &Refusal{RetryAfter: time.Minute}, nil
	}
	fails, left, err := t.c.UserFailures(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("read login failures: %w", err)
	}
	if fails >= int64(t.l.MaxFailures) {
		return &Refusal{Locked: true, RetryAfter: left}, nil
	}
	return nil, nil
}

// Failed records a wrong password for user.
func (t *Throttle) Failed(ctx context.Context, user string) error {
	return t.c.CountUserFailure(ctx, user, t.l.Lockout)
}

// Succeeded clears user's failures.
func (t *Throttle) Succeeded(ctx context.Context, user string) error {
	return t.c.ClearUserFailures(ctx, user)
}
