package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/voltageems/voltage/shared/subjects"
)

// KVStore keeps users and sessions in two NATS JetStream key-value buckets (the
// cloud hub's store):
//
//	subjects.AuthUsersBucket     u.{base64url(name)} → JSON User; "signing-key" → the key
//	subjects.AuthSessionsBucket  t.{sha256} → JSON refresh token; f.{family} → JSON family;
//	                             a.{base64url(addr)}, l.{base64url(user)} → login counters
//
// User names are base64url-encoded in keys because a name may hold "@", which a
// KV key may not.
//
// Atomic steps are revision compare-and-set: Create for new keys, Update with the
// revision read for changes, retried when another writer came first. Spending a
// refresh token is an Update of its use count, so of two racing spends exactly
// one moves it from 0 to 1.
//
// Expiry is stored in each session record and checked on read, rather than
// per-key TTLs: the client sets a per-key TTL only on Create (a rotation rewrites
// the family and a spend rewrites the token with Update/Put, which cannot carry
// one), and it needs a server ≥ 2.11 with message TTLs enabled on the bucket. The
// stored expiry is exact whatever the server does; the sessions bucket's MaxAge
// (KVConfig.SessionMaxAge) only collects the garbage: every record is rewritten at
// most its TTL before it expires, so set MaxAge to at least the refresh-token TTL.
type KVStore struct {
	users    jetstream.KeyValue
	sessions jetstream.KeyValue
	now      func() time.Time
}

// KVConfig configures NewKVStore.
type KVConfig struct {
	UsersBucket    string        // subjects.AuthUsersBucket when ""
	SessionsBucket string        // subjects.AuthSessionsBucket when ""
	SessionMaxAge  time.Duration // garbage collection of session records; ≥ the refresh TTL; 0 = 31 days
	Replicas       int           // bucket replicas in a JetStream cluster; 1 when 0
}

const signingKeyKey = "signing-key"

// NewKVStore opens (creating or updating) the buckets in js.
func NewKVStore(ctx context.Context, js jetstream.JetStream, cfg KVConfig) (*KVStore, error) {
	if cfg.UsersBucket == "" {
		cfg.UsersBucket = subjects.AuthUsersBucket
	}
	if cfg.SessionsBucket == "" {
		cfg.SessionsBucket = subjects.AuthSessionsBucket
	}
	if cfg.SessionMaxAge == 0 {
		cfg.SessionMaxAge = 31 * 24 * time.Hour
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	users, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: cfg.UsersBucket, Description: "VoltageEMS API users and token signing key",
		History: 1, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("open KV bucket %s: %w", cfg.UsersBucket, err)
	}
	sessions, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: cfg.SessionsBucket, Description: "VoltageEMS API refresh tokens and their families",
		History: 1, TTL: cfg.SessionMaxAge, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("open KV bucket %s: %w", cfg.SessionsBucket, err)
	}
	return &KVStore{users: users, sessions: sessions, now: time.Now}, nil
}

func userKey(name string) string { return "u." + base64.RawURLEncoding.EncodeToString([]byte(name)) }

// isConflict reports a lost compare-and-set.
func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)
}

// GetUser implements Store.
func (s *KVStore) GetUser(ctx context.Context, name string) ([]byte, bool, error) {
	e, err := s.users.Get(ctx, userKey(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return e.Value(), true, nil
}

// ListUsers implements Store.
func (s *KVStore) ListUsers(ctx context.Context) (map[string][]byte, error) {
	keys, err := s.userKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(keys))
	for _, k := range keys {
		e, err := s.users.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted since listed
		}
		if err != nil {
			return nil, err
		}
		name, err := base64.RawURLEncoding.DecodeString(k[len("u."):])
		if err != nil {
			return nil, fmt.Errorf("user key %q: %w", k, err)
		}
		out[string(name)] = e.Value()
	}
	return out, nil
}

// userKeys lists the user keys. The lister is read to its end: its goroutine
// blocks on a full channel if the reader leaves early.
func (s *KVStore) userKeys(ctx context.Context) ([]string, error) {
	l, err := s.users.ListKeysFiltered(ctx, "u.>")
	if err != nil {
		return nil, err
	}
	var keys []string
	for k := range l.Keys() {
		keys = append(keys, k)
	}
	return keys, ctx.Err()
}

// HasUsers implements Store.
func (s *KVStore) HasUsers(ctx context.Context) (bool, error) {
	keys, err := s.userKeys(ctx)
	return len(keys) > 0, err
}

// CreateUser implements Store (KV Create: only when the key is absent or deleted).
func (s *KVStore) CreateUser(ctx context.Context, name string, rec []byte) (bool, error) {
	_, err := s.users.Create(ctx, userKey(name), rec)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	return err == nil, err
}

// UpdateUser implements Store (Update with the revision read, retried on conflict).
func (s *KVStore) UpdateUser(ctx context.Context, name string, change func([]byte) ([]byte, error)) error {
	k := userKey(name)
	for range updateAttempts {
		e, err := s.users.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return ErrUserNotFound
		}
		if err != nil {
			return err
		}
		nb, err := change(e.Value())
		if err != nil {
			return err
		}
		_, err = s.users.Update(ctx, k, nb, e.Revision())
		if isConflict(err) {
			continue
		}
		return err
	}
	return errors.New("too much contention")
}

// DeleteUser implements Store.
func (s *KVStore) DeleteUser(ctx context.Context, name string) (bool, error) {
	k := userKey(name)
	e, err := s.users.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	err = s.users.Delete(ctx, k, jetstream.LastRevision(e.Revision()))
	if isConflict(err) {
		// Changed meanwhile: delete whatever it is now; it existed.
		err = s.users.Delete(ctx, k)
	}
	return err == nil, err
}

// SigningKey implements Store (Create, then Get).
func (s *KVStore) SigningKey(ctx context.Context, fresh []byte) ([]byte, error) {
	_, err := s.users.Create(ctx, signingKeyKey, fresh)
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	e, err := s.users.Get(ctx, signingKeyKey)
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	return e.Value(), nil
}

// kvRefresh is a refresh token in the sessions bucket.
type kvRefresh struct {
	User    string `json:"user"`
	Family  string `json:"family"`
	Gen     int64  `json:"gen"`
	Uses    int64  `json:"uses"`
	Expires int64  `json:"expires"` // Unix ms
}

// kvFamily is a family in the sessions bucket.
type kvFamily struct {
	User    string `json:"user"`
	Expires int64  `json:"expires"` // Unix ms
}

func tokenKey(hash string) string    { return "t." + hash }
func familyKey(family string) string { return "f." + family }

// PutRefresh implements Store. An existing family is extended with Update at the
// revision read, so a family deleted (revoked) meanwhile is not revived.
func (s *KVStore) PutRefresh(ctx context.Context, hash string, rec RefreshRecord, ttl time.Duration, newFamily bool) error {
	exp := s.now().Add(ttl).UnixMilli()
	tb, _ := json.Marshal(kvRefresh{User: rec.User, Family: rec.Family, Gen: rec.Gen, Expires: exp})
	if _, err := s.sessions.Put(ctx, tokenKey(hash), tb); err != nil {
		return err
	}
	fb, _ := json.Marshal(kvFamily{User: rec.User, Expires: exp})
	fk := familyKey(rec.Family)
	if newFamily {
		_, err := s.sessions.Put(ctx, fk, fb)
		return err
	}
	for range updateAttempts {
		_, rev, alive, err := s.family(ctx, rec.Family)
		if err != nil || !alive {
			return err // a revoked or expired family stays so
		}
		_, err = s.sessions.Update(ctx, fk, fb, rev)
		if isConflict(err) {
			continue
		}
		return err
	}
	return errors.New("extend refresh family: too much contention")
}

// family reads a family: alive when present and not expired.
func (s *KVStore) family(ctx context.Context, family string) (kvFamily, uint64, bool, error) {
	e, err := s.sessions.Get(ctx, familyKey(family))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return kvFamily{}, 0, false, nil
	}
	if err != nil {
		return kvFamily{}, 0, false, err
	}
	var f kvFamily
	if err := json.Unmarshal(e.Value(), &f); err != nil {
		return kvFamily{}, 0, false, fmt.Errorf("decode refresh family: %w", err)
	}
	return f, e.Revision(), s.now().UnixMilli() < f.Expires, nil
}

// refresh reads a refresh token: found when present and not expired.
func (s *KVStore) refresh(ctx context.Context, hash string) (kvRefresh, uint64, bool, error) {
	e, err := s.sessions.Get(ctx, tokenKey(hash))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return kvRefresh{}, 0, false, nil
	}
	if err != nil {
		return kvRefresh{}, 0, false, err
	}
	var r kvRefresh
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return kvRefresh{}, 0, false, fmt.Errorf("decode refresh token: %w", err)
	}
	return r, e.Revision(), s.now().UnixMilli() < r.Expires, nil
}

// SpendRefresh implements Store: read the token, read its family, then Update the
// token's use count at the revision read. The family is read before the spend: a
// concurrent spender can only revoke it after losing to this one, so the winner
// saw the family as it was when the token was first used.
func (s *KVStore) SpendRefresh(ctx context.Context, hash string) (RefreshRecord, bool, bool, error) {
	k := tokenKey(hash)
	for range 4 * updateAttempts {
		r, rev, found, err := s.refresh(ctx, hash)
		if err != nil || !found {
			return RefreshRecord{}, false, false, err
		}
		_, _, alive, err := s.family(ctx, r.Family)
		if err != nil {
			return RefreshRecord{}, false, false, err
		}
		r.Uses++
		b, _ := json.Marshal(r)
		_, err = s.sessions.Update(ctx, k, b, rev)
		if isConflict(err) {
			continue
		}
		if err != nil {
			return RefreshRecord{}, false, false, err
		}
		return RefreshRecord{User: r.User, Family: r.Family, Gen: r.Gen, Uses: r.Uses}, alive, true, nil
	}
	return RefreshRecord{}, false, false, errors.New("too much contention")
}

// GetRefresh implements Store.
func (s *KVStore) GetRefresh(ctx context.Context, hash string) (RefreshRecord, bool, error) {
	r, _, found, err := s.refresh(ctx, hash)
	if err != nil || !found {
		return RefreshRecord{}, false, err
	}
	return RefreshRecord{User: r.User, Family: r.Family, Gen: r.Gen, Uses: r.Uses}, true, nil
}

// RevokeFamily implements Store.
func (s *KVStore) RevokeFamily(ctx context.Context, family string) error {
	return s.sessions.Delete(ctx, familyKey(family))
}

// kvCounter is a login counter in the sessions bucket.
type kvCounter struct {
	N       int64 `json:"n"`
	Expires int64 `json:"expires"` // Unix ms
}

// Counter keys hold the address or user name base64url-encoded (":" of IPv6 and
// "@" are not legal in a KV key).
func addrKey(addr string) string { return "a." + base64.RawURLEncoding.EncodeToString([]byte(addr)) }
func failKey(user string) string { return "l." + base64.RawURLEncoding.EncodeToString([]byte(user)) }

// counter reads a counter: zero when absent or expired; rev 0 when absent.
func (s *KVStore) counter(ctx context.Context, key string) (kvCounter, uint64, error) {
	e, err := s.sessions.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return kvCounter{}, 0, nil
	}
	if err != nil {
		return kvCounter{}, 0, err
	}
	var c kvCounter
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return kvCounter{}, 0, fmt.Errorf("decode counter %s: %w", key, err)
	}
	if s.now().UnixMilli() >= c.Expires {
		c = kvCounter{}
	}
	return c, e.Revision(), nil
}

// count increments a counter with compare-and-set, starting its window on the
// first count.
func (s *KVStore) count(ctx context.Context, key string, window time.Duration) (int64, error) {
	for range 4 * updateAttempts {
		c, rev, err := s.counter(ctx, key)
		if err != nil {
			return 0, err
		}
		if c.N == 0 {
			c.Expires = s.now().Add(window).UnixMilli()
		}
		c.N++
		b, _ := json.Marshal(c)
		if rev == 0 {
			_, err = s.sessions.Create(ctx, key, b)
		} else {
			_, err = s.sessions.Update(ctx, key, b, rev)
		}
		if isConflict(err) {
			continue
		}
		return c.N, err
	}
	return 0, errors.New("too much contention")
}

// CountAddressAttempt implements LoginCounters.
func (s *KVStore) CountAddressAttempt(ctx context.Context, addr string, window time.Duration) (int64, error) {
	return s.count(ctx, addrKey(addr), window)
}

// UserFailures implements LoginCounters.
func (s *KVStore) UserFailures(ctx context.Context, user string) (int64, time.Duration, error) {
	c, _, err := s.counter(ctx, failKey(user))
	if err != nil || c.N == 0 {
		return 0, 0, err
	}
	return c.N, time.UnixMilli(c.Expires).Sub(s.now()), nil
}

// CountUserFailure implements LoginCounters.
func (s *KVStore) CountUserFailure(ctx context.Context, user string, window time.Duration) error {
	_, err := s.count(ctx, failKey(user), window)
	return err
}

// ClearUserFailures implements LoginCounters.
func (s *KVStore) ClearUserFailures(ctx context.Context, user string) error {
	return s.sessions.Delete(ctx, failKey(user))
}
