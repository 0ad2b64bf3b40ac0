package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// signalTimeout bounds every wait for a signal's effect; it is a deadline, not a delay.
const signalTimeout = 5 * time.Second

func TestMainBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--bogus"}, {"--config", t.TempDir(), "stray"}} {
		var stderr bytes.Buffer
		ran := false
		code := Main("testsvc", args, &stderr, func(context.Context, Env) error { ran = true; return nil })
		if code != ExitConfig {
			t.Errorf("Main(%q) = %d, want ExitConfig (%d)", args, code, ExitConfig)
		}
		if ran {
			t.Errorf("Main(%q) ran the service despite bad flags", args)
		}
		if !strings.Contains(stderr.String(), "testsvc: ") {
			t.Errorf("Main(%q) stderr %q does not report the error with the service name", args, stderr.String())
		}
	}
}

func TestMainInvalidConfig(t *testing.T) {
	clearEnv(t)
	dir := writeSite(t, "site:\n  id: x\nlogging:\n  level: loud\n")
	var stderr bytes.Buffer
	ran := false
	code := Main("testsvc", []string{"--config", dir}, &stderr, func(context.Context, Env) error { ran = true; return nil })
	if code != ExitConfig {
		t.Errorf("Main with invalid config = %d, want %d", code, ExitConfig)
	}
	if ran {
		t.Error("Main ran the service on invalid config")
	}
	if want := filepath.Join(dir, "site.yaml") + ":4:"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q does not point at %s", stderr.String(), want)
	}
}

func TestMainBadLogFlag(t *testing.T) {
	clearEnv(t)
	dir := writeSite(t, "site: {id: x}\n")
	var stderr bytes.Buffer
	code := Main("testsvc", []string{"--config", dir, "--log-level", "loud"}, &stderr, func(context.Context, Env) error { return nil })
	if code != ExitConfig || !strings.Contains(stderr.String(), `"loud"`) {
		t.Errorf("Main --log-level loud = %d, stderr %q; want %d and the bad level named", code, stderr.String(), ExitConfig)
	}
}

func TestMainExitCodes(t *testing.T) {
	clearEnv(t)
	dir := writeSite(t, "site: {id: x}\n")
	cases := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"context canceled", fmt.Errorf("shutting down: %w", context.Canceled), 0},
		{"runtime error", errors.New("redis: connection refused"), 1},
		{"config error", &ConfigError{Err: errors.New("channel 3: host is required")}, ExitConfig},
		{"wrapped config error", fmt.Errorf("start driver: %w", &ConfigError{Err: errors.New("bad port")}), ExitConfig},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := Main("testsvc", []string{"--config", dir}, &stderr, func(context.Context, Env) error { return c.err })
			if code != c.want {
				t.Errorf("Main with run returning %v = %d, want %d; stderr:\n%s", c.err, code, c.want, stderr.String())
			}
			if c.want != 0 && !strings.Contains(stderr.String(), c.err.Error()) {
				t.Errorf("stderr does not report %q:\n%s", c.err, stderr.String())
			}
		})
	}
}

func TestMainEnvAndLogger(t *testing.T) {
	clearEnv(t)
	t.Setenv(EnvSiteID, "from-env")
	dir := writeSite(t, "site: {id: x}\nlogging: {format: json}\n")
	var stderr bytes.Buffer
	var got Env
	code := Main("testsvc", []string{"--config", dir}, &stderr, func(ctx context.Context, env Env) error {
		got = env
		env.Log.Info("hello from run")
		return nil
	})
	if code != 0 {
		t.Fatalf("Main = %d, want 0; stderr:\n%s", code, stderr.String())
	}
	if got.Name != "testsvc" || got.ConfigDir != dir || got.Config == nil || got.Log == nil || got.Reload == nil {
		t.Fatalf("run got Env %+v, want name, config dir, config, logger and reload channel", got)
	}
	if got.Config.Site.Site.ID != "from-env" {
		t.Errorf("site id = %q, want the %s override", got.Config.Site.Site.ID, EnvSiteID)
	}
	// site.yaml asked for JSON logs; every record carries the service name.
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	found := false
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if rec["service"] != "testsvc" {
			t.Errorf("log line %q lacks service=testsvc", line)
		}
		found = found || rec["msg"] == "hello from run"
	}
	if !found {
		t.Errorf("the service's own log line is missing from stderr:\n%s", stderr.String())
	}
}

// TestMainSignals sends real signals to this process while Main runs (and only
// then: Main's handlers are installed only for that long, and an unhandled SIGHUP
// or SIGTERM would end the test binary).
func TestMainSignals(t *testing.T) {
	clearEnv(t)
	dir := writeSite(t, "site: {id: x}\n")
	for _, stopSig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(stopSig.String(), func(t *testing.T) {
			var stderr bytes.Buffer
			code := Main("testsvc", []string{"--config", dir}, &stderr, func(ctx context.Context, env Env) error {
				if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
					return fmt.Errorf("send SIGHUP: %w", err)
				}
				select {
				case <-env.Reload:
				case <-time.After(signalTimeout):
					return fmt.Errorf("no reload within %v of SIGHUP", signalTimeout)
				}
				if ctx.Err() != nil {
					return errors.New("SIGHUP cancelled the run context; it must only reload")
				}

				if err := syscall.Kill(os.Getpid(), stopSig); err != nil {
					return fmt.Errorf("send %v: %w", stopSig, err)
				}
				select {
				case <-ctx.Done():
					return ctx.Err() // what a service returns when told to stop
				case <-time.After(signalTimeout):
					return fmt.Errorf("run context not cancelled within %v of %v", signalTimeout, stopSig)
				}
			})
			if code != 0 {
				t.Errorf("Main = %d, want 0 after %v; stderr:\n%s", code, stopSig, stderr.String())
			}
		})
	}
}

// TestMainReloadCoalesces checks that SIGHUPs arriving while a reload is pending do
// not block the signal loop: the service sees (at least) one reload and Main still
// stops on SIGTERM.
func TestMainReloadCoalesces(t *testing.T) {
	clearEnv(t)
	dir := writeSite(t, "site: {id: x}\n")
	var stderr bytes.Buffer
	code := Main("testsvc", []string{"--config", dir}, &stderr, func(ctx context.Context, env Env) error {
		for range 3 {
			if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
				return fmt.Errorf("send SIGHUP: %w", err)
			}
		}
		select {
		case <-env.Reload:
		case <-time.After(signalTimeout):
			return fmt.Errorf("no reload within %v of three SIGHUPs", signalTimeout)
		}
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			return fmt.Errorf("send SIGTERM: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(signalTimeout):
			return fmt.Errorf("run context not cancelled within %v of SIGTERM", signalTimeout)
		}
	})
	if code != 0 {
		t.Errorf("Main = %d, want 0; stderr:\n%s", code, stderr.String())
	}
}

// TestMainHelpGoesToStderrWriter guards against the flag package writing usage
// (and its own "flag provided but not defined" line) to os.Stderr instead of the
// stderr Main was given, as it did before ParseFlags took an output writer.
func TestMainHelpGoesToStderrWriter(t *testing.T) {
	var stderr bytes.Buffer
	code := Main("testsvc", []string{"-h"}, &stderr, func(context.Context, Env) error { return nil })
	if code != 0 {
		t.Errorf("Main -h = %d, want 0", code)
	}
	if !strings.Contains(stderr.String(), "-config") {
		t.Errorf("Main -h wrote no usage to the stderr it was given (got %q)", stderr.String())
	}
}
