package service

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
)

// HeartbeatTTL is how long a heartbeat hash lives without a refresh (DESIGN §4).
const HeartbeatTTL = 10 * time.Second

// Instance names this process in svc:{name}:{instance}: the host name and pid.
func Instance() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "localhost"
	}
	return h + "-" + strconv.Itoa(os.Getpid())
}

// Heartbeat refreshes svc:{name}:{instance} every few seconds until ctx is done,
// then deletes it. Redis being away is logged once per outage, not fatal.
func Heartbeat(ctx context.Context, rdb redis.UniversalClient, name string, log *slog.Logger) {
	key := keyspace.ServiceHeartbeat(name, Instance())
	started := strconv.FormatInt(time.Now().UnixMilli(), 10)
	tick := time.NewTicker(HeartbeatTTL / 3)
	defer tick.Stop()
	failing := false
	for {
		pipe := rdb.TxPipeline()
		pipe.HSet(ctx, key, "heartbeat", time.Now().UnixMilli(), "version", Version, "started", started, "pid", os.Getpid())
		pipe.Expire(ctx, key, HeartbeatTTL)
		_, err := pipe.Exec(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			log.Warn("heartbeat not written", "key", key, "err", err)
			failing = true
		case err == nil && failing:
			log.Info("heartbeat written again", "key", key)
			failing = false
		}
		select {
		case <-ctx.Done():
			delCtx, cancel := context.WithTimeout(context.Background(), time.Second)
			rdb.Del(delCtx, key)
			cancel()
			return
		case <-tick.C:
		}
	}
}
