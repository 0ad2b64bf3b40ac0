package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
)

// RedisStore keeps users and sessions in a site's Redis, in the gateway's keys of
// shared/keyspace:
//
//	gw:users               hash  user name → JSON User
//	gw:jwt:key             string base64 of the signing key (SET NX)
//	gw:refresh:{sha256}    hash  user, family, gen, uses — expires with the token
//	gw:family:{family}     string user — expires RefreshTTL after the last rotation
//	gw:login:addr:{addr}   counter of login attempts — expires after a minute
//	gw:login:fail:{user}   counter of failed logins — expires after the lockout
//
// Expiry is Redis's own (PEXPIRE / SET PX).
type RedisStore struct {
	rdb *redis.Client
}

// NewRedisStore returns the store in rdb.
func NewRedisStore(rdb *redis.Client) *RedisStore { return &RedisStore{rdb: rdb} }

// GetUser implements Store.
func (s *RedisStore) GetUser(ctx context.Context, name string) ([]byte, bool, error) {
	b, err := s.rdb.HGet(ctx, keyspace.GatewayUsers, name).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// ListUsers implements Store.
func (s *RedisStore) ListUsers(ctx context.Context) (map[string][]byte, error) {
	m, err := s.rdb.HGetAll(ctx, keyspace.GatewayUsers).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = []byte(v)
	}
	return out, nil
}

// HasUsers implements Store.
func (s *RedisStore) HasUsers(ctx context.Context) (bool, error) {
	n, err := s.rdb.HLen(ctx, keyspace.GatewayUsers).Result()
	return n > 0, err
}

// CreateUser implements Store (HSETNX).
func (s *RedisStore) CreateUser(ctx context.Context, name string, rec []byte) (bool, error) {
	return s.rdb.HSetNX(ctx, keyspace.GatewayUsers, name, rec).Result()
}

// UpdateUser implements Store: optimistic, WATCH on gw:users, retried a few times.
func (s *RedisStore) UpdateUser(ctx context.Context, name string, change func([]byte) ([]byte, error)) error {
	txf := func(tx *redis.Tx) error {
		b, err := tx.HGet(ctx, keyspace.GatewayUsers, name).Bytes()
		if errors.Is(err, redis.Nil) {
			return ErrUserNotFound
		}
		if err != nil {
			return err
		}
		nb, err := change(b)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, keyspace.GatewayUsers, name, nb)
			return nil
		})
		return err
	}
	for range updateAttempts {
		err := s.rdb.Watch(ctx, txf, keyspace.GatewayUsers)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		return err
	}
	return errors.New("too much contention")
}

// DeleteUser implements Store.
func (s *RedisStore) DeleteUser(ctx context.Context, name string) (bool, error) {
	n, err := s.rdb.HDel(ctx, keyspace.GatewayUsers, name).Result()
	return n == 1, err
}

// SigningKey implements Store (SET NX, then GET).
func (s *RedisStore) SigningKey(ctx context.Context, fresh []byte) ([]byte, error) {
	if err := s.rdb.SetNX(ctx, keyspace.GatewaySigningKey, base64.StdEncoding.EncodeToString(fresh), 0).Err(); err != nil {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	v, err := s.rdb.Get(ctx, keyspace.GatewaySigningKey).Result()
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	k, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(k) < 32 {
		return nil, fmt.Errorf("signing key in %s is damaged (want ≥ 32 bytes base64); delete it to generate a new one (every session ends)", keyspace.GatewaySigningKey)
	}
	return k, nil
}

// PutRefresh implements Store: the token hash and the family in one MULTI; an
// existing family is extended with SET XX, so a revoked one is not revived.
func (s *RedisStore) PutRefresh(ctx context.Context, hash string, rec RefreshRecord, ttl time.Duration, newFamily bool) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		k := keyspace.GatewayRefreshToken(hash)
		p.HSet(ctx, k, "user", rec.User, "family", rec.Family, "gen", rec.Gen, "uses", 0)
		p.PExpire(ctx, k, ttl)
		fk := keyspace.GatewayRefreshFamily(rec.Family)
		if newFamily {
			p.Set(ctx, fk, rec.User, ttl)
		} else {
			p.SetXX(ctx, fk, rec.User, ttl)
		}
		return nil
	})
	return err
}

// spendRefresh counts a use of a refresh token and reads it and whether its
// family exists, in one atomic step: nil when the token does not exist. The family
// key is built in the script from the prefix in ARGV (its id is only known there);
// a site runs one Redis, not a cluster, so an undeclared key is fine.
var spendRefresh = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local n = redis.call('HINCRBY', KEYS[1], 'uses', 1)
local f = redis.call('HMGET', KEYS[1], 'user', 'family', 'gen')
local alive = 0
if f[2] then alive = redis.call('EXISTS', ARGV[1] .. f[2]) end
return {n, f[1] or '', f[2] or '', f[3] or '0', alive}`)

// SpendRefresh implements Store with one Lua script.
func (s *RedisStore) SpendRefresh(ctx context.Context, hash string) (RefreshRecord, bool, bool, error) {
	familyPrefix := keyspace.GatewayRefreshFamily("")
	v, err := spendRefresh.Run(ctx, s.rdb, []string{keyspace.GatewayRefreshToken(hash)}, familyPrefix).Slice()
	if errors.Is(err, redis.Nil) {
		return RefreshRecord{}, false, false, nil
	}
	if err != nil {
		return RefreshRecord{}, false, false, err
	}
	if len(v) != 5 {
		return RefreshRecord{}, false, false, fmt.Errorf("spend refresh token: unexpected reply %v", v)
	}
	n, _ := v[0].(int64)
	user, _ := v[1].(string)
	family, _ := v[2].(string)
	genS, _ := v[3].(string)
	alive, _ := v[4].(int64)
	gen, _ := strconv.ParseInt(genS, 10, 64)
	return RefreshRecord{User: user, Family: family, Gen: gen, Uses: n}, alive == 1, true, nil
}

// GetRefresh implements Store.
func (s *RedisStore) GetRefresh(ctx context.Context, hash string) (RefreshRecord, bool, error) {
	f, err := s.rdb.HGetAll(ctx, keyspace.GatewayRefreshToken(hash)).Result()
	if err != nil {
		return RefreshRecord{}, false, err
	}
	if len(f) == 0 {
		return RefreshRecord{}, false, nil
	}
	gen, _ := strconv.ParseInt(f["gen"], 10, 64)
	uses, _ := strconv.ParseInt(f["uses"], 10, 64)
	return RefreshRecord{User: f["user"], Family: f["family"], Gen: gen, Uses: uses}, true, nil
}

// RevokeFamily implements Store.
func (s *RedisStore) RevokeFamily(ctx context.Context, family string) error {
	return s.rdb.Del(ctx, keyspace.GatewayRefreshFamily(family)).Err()
}

// CountAddressAttempt implements LoginCounters (gw:login:addr:{addr}).
func (s *RedisStore) CountAddressAttempt(ctx context.Context, addr string, window time.Duration) (int64, error) {
	return s.count(ctx, keyspace.GatewayLoginAttempts(addr), window)
}

// count increments a counter and starts its window on the first count.
func (s *RedisStore) count(ctx context.Context, key string, window time.Duration) (int64, error) {
	n, err := s.rdb.Incr(ctx, key).Result()
	if err != nil {
		return 0, err
	}
	if n == 1 {
		if err := s.rdb.PExpire(ctx, key, window).Err(); err != nil {
			return n, err
		}
	}
	return n, nil
}

// UserFailures implements LoginCounters (gw:login:fail:{user}).
func (s *RedisStore) UserFailures(ctx context.Context, user string) (int64, time.Duration, error) {
	k := keyspace.GatewayLoginFailures(user)
	n, err := s.rdb.Get(ctx, k).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	ttl, err := s.rdb.PTTL(ctx, k).Result()
	if err != nil {
		return n, 0, err
	}
	return n, max(ttl, 0), nil
}

// CountUserFailure implements LoginCounters.
func (s *RedisStore) CountUserFailure(ctx context.Context, user string, window time.Duration) error {
	_, err := s.count(ctx, keyspace.GatewayLoginFailures(user), window)
	return err
}

// ClearUserFailures implements LoginCounters.
func (s *RedisStore) ClearUserFailures(ctx context.Context, user string) error {
	return s.rdb.Del(ctx, keyspace.GatewayLoginFailures(user)).Err()
}
