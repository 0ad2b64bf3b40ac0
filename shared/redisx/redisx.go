// Package redisx opens the Redis connection every service uses for its realtime
// state (DESIGN §4) and holds the few checks around it: reachability, the server
// version the stream consumers need, and the error kinds callers branch on.
//
// A service must start while Redis is down and report not-ready, so Connect never
// dials: go-redis connects lazily and reconnects on its own with capped backoff.
package redisx

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Defaults sized for a 2-core edge box whose Redis is local: a handful of
// connections is enough, and a command that takes seconds means Redis is in
// trouble, so fail it and let the caller's retry loop report the outage.
const (
	defaultPoolSize        = 16
	defaultDialTimeout     = 2 * time.Second
	defaultReadTimeout     = 3 * time.Second
	defaultWriteTimeout    = 3 * time.Second
	defaultPoolTimeout     = 4 * time.Second
	defaultMaxRetries      = 3
	defaultMinRetryBackoff = 8 * time.Millisecond
	defaultMaxRetryBackoff = 512 * time.Millisecond
	defaultConnMaxIdleTime = 5 * time.Minute

	// PingTimeout bounds Ping, which readiness probes call.
	PingTimeout = 2 * time.Second
)

// MinVersion is the oldest server supported (DESIGN §4): the stream consumers take
// over a crashed consumer's entries with XAUTOCLAIM, which came in 6.2.
var MinVersion = [3]int{6, 2, 0}

// Option adjusts the client options after the URL and the defaults are applied.
type Option func(*redis.Options)

// WithClientName names the connections (CLIENT LIST shows which service is which).
func WithClientName(name string) Option {
	return func(o *redis.Options) { o.ClientName = name }
}

// WithPoolSize sets the number of pooled connections.
func WithPoolSize(n int) Option {
	return func(o *redis.Options) { o.PoolSize = n }
}

// Connect builds a client for url (redis://, rediss:// or unix://; go-redis query
// parameters such as ?pool_size=4 or ?dial_timeout=1s override the defaults). It
// does not dial, so it succeeds while Redis is down; callers Ping to learn whether
// it is up. Only a malformed URL is an error. ctx is accepted for symmetry with
// the rest of the start-up path; nothing here blocks.
func Connect(ctx context.Context, url string, opts ...Option) (*redis.Client, error) {
	_ = ctx
	o, err := redis.ParseURL(url)
	if err != nil {
		// net/url quotes the whole URL in its errors, password included.
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("parse redis url %q: %w", redactURL(url), err)
	}
	applyDefaults(o)
	for _, opt := range opts {
		opt(o)
	}
	return redis.NewClient(o), nil
}

// applyDefaults fills what the URL left unset.
func applyDefaults(o *redis.Options) {
	setDur := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if o.PoolSize == 0 {
		o.PoolSize = defaultPoolSize
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = defaultMaxRetries
	}
	setDur(&o.DialTimeout, defaultDialTimeout)
	setDur(&o.ReadTimeout, defaultReadTimeout)
	setDur(&o.WriteTimeout, defaultWriteTimeout)
	setDur(&o.PoolTimeout, defaultPoolTimeout)
	setDur(&o.MinRetryBackoff, defaultMinRetryBackoff)
	setDur(&o.MaxRetryBackoff, defaultMaxRetryBackoff)
	setDur(&o.ConnMaxIdleTime, defaultConnMaxIdleTime)
	// Deadlines of the caller's context bound each command, so a shutdown or a
	// request timeout is not held up by the socket timeouts above.
	o.ContextTimeoutEnabled = true
	// Maintenance notifications are a Redis Enterprise/Cloud feature; on a site's
	// own Redis the handshake would only cost an extra command per connection.
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
}

// redactURL hides a password in a URL that is about to be logged or returned in
// an error.
func redactURL(url string) string {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return url
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return url
	}
	if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		return scheme + "://" + user + ":xxxxx@" + host
	}
	return url
}

// Ping checks that Redis answers within PingTimeout (or ctx's deadline, if sooner).
func Ping(ctx context.Context, c redis.UniversalClient) error {
	ctx, cancel := context.WithTimeout(ctx, PingTimeout)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

// ErrTooOld is wrapped by Version when the server is older than MinVersion.
var ErrTooOld = errors.New("redis server too old")

// Version returns the server's version (INFO server's redis_version, which Valkey
// also reports) and an error wrapping ErrTooOld when it is older than MinVersion.
// A too-old server still answers, so callers log the error rather than exit.
func Version(ctx context.Context, c redis.UniversalClient) (string, error) {
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return "", fmt.Errorf("read redis version: %w", err)
	}
	v := infoField(info, "redis_version")
	if v == "" {
		return "", errors.New("read redis version: INFO server has no redis_version")
	}
	return v, checkVersion(v)
}

// checkVersion returns an error wrapping ErrTooOld when v is older than MinVersion.
func checkVersion(v string) error {
	got, err := parseVersion(v)
	if err != nil {
		return fmt.Errorf("read redis version: %w", err)
	}
	if compareVersion(got, MinVersion) < 0 {
		return fmt.Errorf("%w: %s, need ≥ %d.%d", ErrTooOld, v, MinVersion[0], MinVersion[1])
	}
	return nil
}

func infoField(info, name string) string {
	for line := range strings.Lines(info) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && k == name {
			return v
		}
	}
	return ""
}

func parseVersion(s string) ([3]int, error) {
	var v [3]int
	parts := strings.SplitN(s, ".", 3)
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return v, fmt.Errorf("malformed version %q", s)
		}
		v[i] = n
	}
	return v, nil
}

func compareVersion(a, b [3]int) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}
