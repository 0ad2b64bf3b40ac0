package auth

import (
	"context"
	"errors"
	"time"
)

// Store is what Users, Tokens and Throttle keep: user records, the signing key,
// refresh tokens with their families, and login counters. Implementations:
// RedisStore, KVStore. User records are opaque to the store; RefreshRecord's use
// count is the store's to maintain.
//
// Every method is safe for concurrent use, also by several processes on one store.
type Store interface {
	// GetUser returns the encoded record of a user; found is false when there is none.
	GetUser(ctx context.Context, name string) (rec []byte, found bool, err error)
	// ListUsers returns every user's encoded record by name.
	ListUsers(ctx context.Context) (map[string][]byte, error)
	// HasUsers reports whether at least one user exists.
	HasUsers(ctx context.Context) (bool, error)
	// CreateUser stores rec unless the name is taken (created false then).
	CreateUser(ctx context.Context, name string, rec []byte) (created bool, err error)
	// UpdateUser replaces a user's record with change(old), atomically: when another
	// writer changed the record in between, change is called again on the new one.
	// ErrUserNotFound when there is no such user; an error of change is returned as is.
	UpdateUser(ctx context.Context, name string, change func(old []byte) ([]byte, error)) error
	// DeleteUser removes a user; deleted is false when there was none.
	DeleteUser(ctx context.Context, name string) (deleted bool, err error)

	// SigningKey returns the token signing key, storing fresh first when there is
	// none yet — atomically, so processes starting together agree on one key.
	SigningKey(ctx context.Context, fresh []byte) ([]byte, error)

	// PutRefresh stores a refresh token (by hash) for ttl and keeps its family alive
	// for ttl from now. A new family is created; an existing one is only extended,
	// never revived: a family revoked meanwhile stays revoked and the new token is
	// dead on arrival.
	PutRefresh(ctx context.Context, hash string, rec RefreshRecord, ttl time.Duration, newFamily bool) error
	// SpendRefresh counts one use of a refresh token atomically and returns its record
	// with Uses after this use (1 for the first use, more for a replay), and whether
	// its family was alive when it was spent. found is false for an unknown or
	// expired token.
	SpendRefresh(ctx context.Context, hash string) (rec RefreshRecord, familyAlive, found bool, err error)
	// GetRefresh reads a refresh token without using it.
	GetRefresh(ctx context.Context, hash string) (rec RefreshRecord, found bool, err error)
	// RevokeFamily ends a family: none of its refresh tokens can be used again.
	RevokeFamily(ctx context.Context, family string) error

	// LoginCounters are the counters of login throttling (NewThrottle).
	LoginCounters
}

// RefreshRecord is what a store keeps of one refresh token.
type RefreshRecord struct {
	User   string
	Family string
	Gen    int64 // the user's generation when the token was issued
	Uses   int64
}

// Errors of this package; match them with errors.Is.
var (
	ErrUserExists   = errors.New("user exists")
	ErrUserNotFound = errors.New("user not found")
	ErrBadToken     = errors.New("invalid or expired token")
	ErrRefreshReuse = errors.New("refresh token already used; every token of this login is revoked")
)

// updateAttempts bounds the compare-and-set retries of one user update.
const updateAttempts = 5

// Both stores hold everything.
var (
	_ Store = (*RedisStore)(nil)
	_ Store = (*KVStore)(nil)
)
