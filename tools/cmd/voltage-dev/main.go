// Command voltage-dev runs the whole local stack for development (`go tool task
// dev`): Redis (a redis-server from PATH with its data under .dev/, or an in-process
// fallback), the device simulator and every service, with their logs interleaved
// and prefixed. Ctrl-C stops everything.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/voltageems/voltage/shared/config"
)

func main() {
	configDir := flag.String("config", "./config", "site configuration folder")
	stateDir := flag.String("dir", ".dev", "folder for binaries, Redis data and logs")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *configDir, *stateDir, log); err != nil {
		fmt.Fprintf(os.Stderr, "voltage-dev: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, configDir, stateDir string, log *slog.Logger) error {
	if _, err := config.Load(configDir); err != nil {
		return fmt.Errorf("the site configuration in %s is invalid:\n%w", configDir, err)
	}
	binDir, err := filepath.Abs(filepath.Join(stateDir, "bin"))
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "building binaries into", binDir, "...")
	build := exec.CommandContext(ctx, "go", "build", "-o", binDir+string(filepath.Separator),
		"./services/comsrv/cmd/comsrv", "./tools/cmd/voltsim")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build: %w", err)
	}

	st := &stack{log: log}
	defer st.stopAll()

	redisURL, err := st.startRedis(ctx, filepath.Join(stateDir, "redis"))
	if err != nil {
		return err
	}
	simControl := addrOrFree("127.0.0.1:6090")
	comsrvAddr := addrOrFree("127.0.0.1:6001")
	env := []string{"VOLTAGE_REDIS_URL=" + redisURL}

	if err := st.start(ctx, "voltsim", filepath.Join(binDir, "voltsim"), env,
		"--config", configDir, "--control", simControl); err != nil {
		return err
	}
	if err := st.start(ctx, "comsrv", filepath.Join(binDir, "comsrv"), append(env, "VOLTAGE_HTTP_ADDR="+comsrvAddr),
		"--config", configDir); err != nil {
		return err
	}

	fmt.Fprintf(os.Stderr, `
VoltageEMS dev stack is running (Ctrl-C stops it):
  redis            %s
  voltsim control  http://%s/channels
  comsrv           http://%s/channels   /healthz /readyz /metrics
Try: redis-cli -u %s HGETALL comsrv:1:T

`, redisURL, simControl, comsrvAddr, redisURL)

	select {
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "\nstopping ...")
		return nil
	case p := <-st.exited:
		return fmt.Errorf("%s exited: %v", p.name, p.err)
	}
}

// addrOrFree returns addr when its port is free, else a free loopback port, so the
// stack runs next to a machine's own services.
func addrOrFree(addr string) string {
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		return addr
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return addr
	}
	defer ln.Close()
	return ln.Addr().String()
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

var errStopped = errors.New("stopped")

func waitTCP(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not accept connections within %s: %w", addr, timeout, err)
		}
		select {
		case <-ctx.Done():
			return errStopped
		case <-time.After(50 * time.Millisecond):
		}
	}
}
