package redisx_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/redisx"
	"github.com/voltageems/voltage/shared/testharness"
)

func TestConnectRejectsMalformedURL(t *testing.T) {
	for _, url := range []string{"http://127.0.0.1:6379", "redis://:pw@[::1", ""} {
		c, err := redisx.Connect(context.Background(), url)
		if err == nil {
			c.Close()
			t.Errorf("Connect(%q) succeeded, want an error", url)
			continue
		}
		if strings.Contains(err.Error(), ":pw@") {
			t.Errorf("error %q leaks the password", err)
		}
	}
}

func TestConnectAppliesDefaultsAndOverrides(t *testing.T) {
	ctx := context.Background()
	c, err := redisx.Connect(ctx, "redis://127.0.0.1:1/2")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	o := c.Options()
	if o.PoolSize != 16 || o.MaxRetries != 3 || o.DialTimeout != 2*time.Second || o.DB != 2 || !o.ContextTimeoutEnabled {
		t.Fatalf("defaults not applied: pool %d retries %d dial %v db %d ctx %v", o.PoolSize, o.MaxRetries, o.DialTimeout, o.DB, o.ContextTimeoutEnabled)
	}
	if o.MinRetryBackoff <= 0 || o.MaxRetryBackoff < o.MinRetryBackoff {
		t.Fatalf("retry backoff %v..%v", o.MinRetryBackoff, o.MaxRetryBackoff)
	}

	c2, err := redisx.Connect(ctx, "redis://127.0.0.1:1/0?pool_size=4&dial_timeout=1s", redisx.WithClientName("comsrv"))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if o := c2.Options(); o.PoolSize != 4 || o.DialTimeout != time.Second || o.ClientName != "comsrv" {
		t.Fatalf("URL/option overrides lost: pool %d dial %v name %q", o.PoolSize, o.DialTimeout, o.ClientName)
	}

	c3, err := redisx.Connect(ctx, "redis://127.0.0.1:1/0?pool_size=4", redisx.WithPoolSize(7))
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if c3.Options().PoolSize != 7 {
		t.Fatalf("WithPoolSize(7) gave %d", c3.Options().PoolSize)
	}
}

// TestStartsWhileRedisIsDown is the contract services rely on: Connect succeeds
// without a server, Ping reports the outage, and the same client works once Redis
// is back, without being rebuilt.
func TestStartsWhileRedisIsDown(t *testing.T) {
	r := testharness.StartRedis(t)
	r.Stop(t)
	ctx := context.Background()
	c, err := redisx.Connect(ctx, r.URL(), redisx.WithClientName("redisx-test"))
	if err != nil {
		t.Fatalf("Connect with Redis down: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	start := time.Now()
	if err := redisx.Ping(ctx, c); err == nil {
		t.Fatal("Ping succeeded with Redis down")
	} else if !strings.Contains(err.Error(), "ping redis") {
		t.Fatalf("Ping error %q lacks context", err)
	}
	if d := time.Since(start); d > redisx.PingTimeout+time.Second {
		t.Fatalf("Ping took %v with Redis down, want ≤ %v", d, redisx.PingTimeout)
	}

	r.Restart(t)
	testharness.Eventually(t, 10*time.Second, func() error { return redisx.Ping(ctx, c) })
	name, err := c.ClientGetName(ctx).Result()
	if err != nil || name != "redisx-test" {
		t.Fatalf("CLIENT GETNAME = %q, %v", name, err)
	}

	// And it survives an outage after it was connected.
	r.Kill(t)
	r.Restart(t)
	testharness.Eventually(t, 10*time.Second, func() error { return redisx.Ping(ctx, c) })
}

func TestVersionAndErrorKinds(t *testing.T) {
	r := testharness.StartRedis(t)
	ctx := context.Background()
	c, err := redisx.Connect(ctx, r.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	v, err := redisx.Version(ctx, c)
	if err != nil {
		t.Fatalf("Version = %q, %v; this machine's redis-server must be ≥ 6.2", v, err)
	}
	if !strings.Contains(v, ".") {
		t.Fatalf("Version = %q", v)
	}

	err = c.EvalSha(ctx, strings.Repeat("0", 40), nil).Err()
	if !redisx.IsNoScript(err) {
		t.Fatalf("EVALSHA of an unknown script: IsNoScript(%v) = false", err)
	}
	if redisx.IsNoScript(fmt.Errorf("wrapped: %w", ctx.Err())) || redisx.IsNoScript(nil) {
		t.Fatal("IsNoScript true for a non-NOSCRIPT error")
	}
	if !redisx.IsNoScript(fmt.Errorf("write batch: %w", err)) {
		t.Fatal("IsNoScript false for a wrapped NOSCRIPT error")
	}

	// Block -1: no BLOCK argument, so the read answers at once.
	readArgs := &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{"s", ">"}, Count: 1, Block: -1}
	err = c.XReadGroup(ctx, readArgs).Err()
	if !redisx.IsNoGroup(err) {
		t.Fatalf("XREADGROUP without a group: IsNoGroup(%v) = false", err)
	}
	for range 2 { // the second call meets BUSYGROUP and must succeed
		if err := redisx.EnsureGroup(ctx, c, "s", "g", "0"); err != nil {
			t.Fatalf("EnsureGroup: %v", err)
		}
	}
	if err := c.XGroupCreate(ctx, "s", "g", "0").Err(); !redisx.IsBusyGroup(err) {
		t.Fatalf("IsBusyGroup(%v) = false", err)
	}
	if err := c.XReadGroup(ctx, readArgs).Err(); err != nil && redisx.IsNoGroup(err) {
		t.Fatalf("group still missing after EnsureGroup: %v", err)
	}
}

func TestUseSlogRoutesGoRedisLogs(t *testing.T) {
	var buf syncBuffer
	redisx.UseSlog(slog.New(slog.NewJSONHandler(&buf, nil)))
	t.Cleanup(func() { redisx.UseSlog(slog.New(slog.NewTextHandler(os.Stderr, nil))) })

	r := testharness.StartRedis(t)
	r.Stop(t)
	c, err := redisx.Connect(context.Background(), r.URL(), redisx.WithPoolSize(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = redisx.Ping(context.Background(), c) // fails and makes go-redis log the dial failure
	testharness.WaitFor(t, 5*time.Second, "go-redis log line in slog", func() bool {
		return strings.Contains(buf.String(), `"component":"go-redis"`)
	})
}

// syncBuffer is a bytes.Buffer safe for go-redis's goroutines and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
