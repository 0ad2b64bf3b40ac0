package testharness

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// readyTimeout bounds how long a spawned server may take to accept clients.
	readyTimeout = 15 * time.Second
	// bindAttempts is how often a start is retried on a new port when another
	// process took the chosen one first.
	bindAttempts = 5
)

// RedisOptions changes how StartRedisWith runs redis-server.
type RedisOptions struct {
	// AppendOnly turns on the AOF (appendfsync everysec), so data survives Restart
	// and, for what was fsynced, Kill.
	AppendOnly bool
	// Args are extra redis-server arguments, e.g. {"--maxmemory", "64mb"}.
	Args []string
}

// Redis is a redis-server process owned by one test.
type Redis struct {
	Addr string // host:port on 127.0.0.1
	Dir  string // the server's working directory (AOF files live here)

	proc *process
}

// StartRedis starts a redis-server without persistence on a random loopback port
// and stops it when the test ends.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	return StartRedisWith(t, RedisOptions{})
}

// StartRedisWith is StartRedis with options.
func StartRedisWith(t testing.TB, opts RedisOptions) *Redis {
	t.Helper()
	bin := Binary(t, "redis-server", "redis-server")
	dir := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "redis.log")
	var lastErr error
	for range bindAttempts {
		port := FreePort(t)
		r := &Redis{
			Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			Dir:  dir,
			proc: &process{name: "redis-server", bin: bin, args: redisArgs(port, dir, opts), logPath: logPath},
		}
		err := r.start()
		if err == nil {
			t.Cleanup(func() {
				if err := r.proc.signal(syscall.SIGTERM); err != nil {
					t.Errorf("stop redis-server: %v", err)
				}
			})
			return r
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("start redis-server: %v", lastErr)
	return nil
}

func redisArgs(port int, dir string, opts RedisOptions) []string {
	aof := "no"
	if opts.AppendOnly {
		aof = "yes"
	}
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--save", "",
		"--appendonly", aof,
		"--daemonize", "no",
		"--logfile", "", // log to stdout, which the harness captures
	}
	return append(args, opts.Args...)
}

// start launches the process and waits until it answers PING.
func (r *Redis) start() error {
	if err := r.proc.start(); err != nil {
		return err
	}
	err := waitUntil(readyTimeout, func() bool { return pingRedis(r.Addr) == nil }, r.proc.exitErr)
	if err == nil {
		return nil
	}
	_ = r.proc.signal(syscall.SIGKILL)
	tail := r.proc.logTail()
	if strings.Contains(tail, "Address already in use") {
		return fmt.Errorf("%s: %w", r.Addr, errPortTaken)
	}
	return fmt.Errorf("redis-server on %s: %v; log tail:\n%s", r.Addr, err, tail)
}

// pingRedis speaks just enough RESP to check that the server answers; the go-redis
// client would retry and log on its own while the server is still starting.
func pingRedis(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		// e.g. "-LOADING Redis is loading the dataset in memory" after a restart
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// URL is the server's address as a redis:// URL selecting database 0.
func (r *Redis) URL() string { return "redis://" + r.Addr + "/0" }

// Client returns a new go-redis client for the server, closed when the test ends.
func (r *Redis) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Stop shuts the server down with SIGTERM and waits for it to exit. Without AOF
// the data is gone; Restart brings the server back on the same port.
func (r *Redis) Stop(t testing.TB) {
	t.Helper()
	if err := r.proc.signal(syscall.SIGTERM); err != nil {
		t.Fatalf("stop redis-server: %v", err)
	}
}

// Kill ends the server with SIGKILL, as a crash or an OOM kill would.
func (r *Redis) Kill(t testing.TB) {
	t.Helper()
	if err := r.proc.signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill redis-server: %v", err)
	}
}

// Restart stops the server if it is running and starts it again on the same port
// and directory, returning once it answers PING. Use it (or Stop/Kill, then
// Restart) for outage tests.
func (r *Redis) Restart(t testing.TB) {
	t.Helper()
	r.Stop(t)
	if err := r.start(); err != nil {
		t.Fatalf("restart redis-server: %v", err)
	}
}

// Running reports whether the server process is alive.
func (r *Redis) Running() bool { return r.proc.running() }
