package service

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/testharness"
)

func TestInstance(t *testing.T) {
	inst := Instance()
	suffix := "-" + strconv.Itoa(os.Getpid())
	if !strings.HasSuffix(inst, suffix) || len(inst) <= len(suffix) {
		t.Errorf("Instance() = %q, want host name followed by %q", inst, suffix)
	}
	if Instance() != inst {
		t.Error("Instance() is not stable within one process")
	}
}

func TestHeartbeat(t *testing.T) {
	rdb := testharness.StartRedis(t).Client(t)
	key := keyspace.ServiceHeartbeat("testsvc", Instance())
	log := slog.New(slog.NewTextHandler(t.Output(), nil))

	before := time.Now().UnixMilli()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		Heartbeat(ctx, rdb, "testsvc", log)
	}()

	// The test's own Redis calls use a context that outlives the heartbeat's.
	rctx := context.Background()
	var first map[string]string
	testharness.WaitFor(t, 5*time.Second, "heartbeat hash "+key, func() bool {
		h, err := rdb.HGetAll(rctx, key).Result()
		first = h
		return err == nil && len(h) > 0
	})

	hb, err := strconv.ParseInt(first["heartbeat"], 10, 64)
	if err != nil || hb < before || hb > time.Now().UnixMilli() {
		t.Errorf("heartbeat = %q, want Unix ms between %d and now", first["heartbeat"], before)
	}
	if started, err := strconv.ParseInt(first["started"], 10, 64); err != nil || started < before || started > hb {
		t.Errorf("started = %q, want Unix ms between %d and the heartbeat %d", first["started"], before, hb)
	}
	if first["version"] != Version {
		t.Errorf("version = %q, want %q", first["version"], Version)
	}
	if first["pid"] != strconv.Itoa(os.Getpid()) {
		t.Errorf("pid = %q, want %d", first["pid"], os.Getpid())
	}
	ttl, err := rdb.PTTL(rctx, key).Result()
	if err != nil || ttl <= 0 || ttl > HeartbeatTTL {
		t.Errorf("TTL of %s = %v (%v), want 0 < TTL ≤ %v", key, ttl, err, HeartbeatTTL)
	}

	// The hash is refreshed well before it expires: heartbeat moves on, started
	// stays, and the TTL is reset.
	testharness.WaitFor(t, HeartbeatTTL, "a heartbeat refresh", func() bool {
		v, err := rdb.HGet(rctx, key, "heartbeat").Result()
		return err == nil && v != first["heartbeat"]
	})
	if s, _ := rdb.HGet(rctx, key, "started").Result(); s != first["started"] {
		t.Errorf("started changed on refresh: %q → %q", first["started"], s)
	}
	if ttl, err := rdb.PTTL(rctx, key).Result(); err != nil || ttl <= HeartbeatTTL/2 {
		t.Errorf("TTL after refresh = %v (%v), want it reset to about %v", ttl, err, HeartbeatTTL)
	}

	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Heartbeat did not return within 5 s of ctx cancel")
	}
	if n, err := rdb.Exists(rctx, key).Result(); err != nil || n != 0 {
		t.Errorf("%s still exists after Heartbeat returned (exists=%d, err=%v)", key, n, err)
	}
}
