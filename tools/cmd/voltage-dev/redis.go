package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/alicebob/miniredis/v2"

	"github.com/voltageems/voltage/tools/devstack"
)

// startRedis runs redis-server on addr with its data in dir (AOF on) and returns
// its URL. Without redis-server it falls back to an in-process Redis, which it
// returns for the caller to close after the processes that use it.
func startRedis(ctx context.Context, procs *devstack.Procs, dir, addr string, log *slog.Logger) (string, *miniredis.Miniredis, error) {
	_, err := devstack.StartRedis(ctx, procs, dir, addr, "--protected-mode", "yes",
		// Hash tables instead of listpacks for point hashes over 16 fields: several
		// times faster to update (docs/benchmarks.md, "Small hashes are listpacks").
		"--hash-max-listpack-entries", "16")
	if err == nil {
		return "redis://" + addr + "/0", nil, nil
	}
	if !errors.Is(err, devstack.ErrNoRedisServer) {
		return "", nil, err
	}
	mini := miniredis.NewMiniRedis()
	if err := mini.Start(); err != nil {
		return "", nil, fmt.Errorf("in-process redis: %w", err)
	}
	log.Warn("redis-server is not on PATH: using an in-process Redis fallback (no persistence, not for production). Install it with `apt-get install redis-server`.", "addr", mini.Addr())
	return "redis://" + mini.Addr() + "/0", mini, nil
}
