package devstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// ErrNoRedisServer is StartRedis's error when redis-server is not installed.
var ErrNoRedisServer = errors.New("redis-server is not on PATH: install it with `apt-get install redis-server`")

// StartRedis starts redis-server as the process "redis", listening on addr (a
// loopback address) with its data in dir and the append-only file on, extra added
// to its arguments ("--appendfsync", "always"), and waits until it accepts
// connections.
func StartRedis(ctx context.Context, procs *Procs, dir, addr string, extra ...string) (*Proc, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNoRedisServer
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("redis folder: %w", err)
	}
	args := append([]string{"--port", Port(addr), "--bind", "127.0.0.1", "--dir", dir,
		"--appendonly", "yes", "--save", ""}, extra...)
	p, err := procs.Start("redis", bin, dir, nil, args...)
	if err != nil {
		return nil, err
	}
	if err := WaitTCP(ctx, addr, 10*time.Second); err != nil {
		return nil, fmt.Errorf("redis-server: %w; its last output:\n%s", err, p.Tail())
	}
	return p, nil
}
