package rulesrv_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/testharness"
)

// The binary refuses invalid rules with exit code 2 and file:line:col errors;
// a valid site starts (with Redis away), reloads on SIGHUP (refusing an invalid
// rule, keeping the running ones) and stops on SIGTERM.
func TestBinary(t *testing.T) {
	bin := testharness.BuildBinary(t, "./cmd/rulesrv")
	t.Run("invalid rules", func(t *testing.T) {
		dir := writeSite(t, withRule("bad", "id: bad\ncondition: meter.active_power >> 1\nactions:\n  - event: {name: x}\n"), "redis://127.0.0.1:1/0")
		cmd := exec.Command(bin, "--config", dir)
		cmd.Env = append(cmd.Environ(), "VOLTAGE_HTTP_ADDR=127.0.0.1:0")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Fatalf("exit %v, want code 2; output:\n%s", err, out)
		}
		if !regexp.MustCompile(`bad\.yaml:2:\d+: condition: `).Match(out) {
			t.Fatalf("output:\n%s\nwant bad.yaml:2:col: condition: ...", out)
		}
	})
	t.Run("start reload stop", func(t *testing.T) {
		dir := writeSite(t, virtualSite, "redis://127.0.0.1:1/0")
		cmd := exec.Command(bin, "--config", dir, "--log-level", "info")
		cmd.Env = append(cmd.Environ(), "VOLTAGE_HTTP_ADDR=127.0.0.1:0")
		p, _ := testharness.StartLogged(t, cmd, regexp.MustCompile(`rulesrv running`), 30*time.Second)
		f := filepath.Join(dir, "rulesrv", "rules", "x.yaml")
		if err := os.WriteFile(f, []byte("id: x\ncondition: nope.x > 1\nactions:\n  - event: {name: x}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		testharness.WaitFor(t, 20*time.Second, "the refused reload in the log", func() bool {
			return strings.Contains(p.Logs(), "reload refused") && strings.Contains(p.Logs(), "x.yaml:2:12")
		})
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
		if err := p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		testharness.WaitFor(t, 20*time.Second, "the reload in the log", func() bool { return strings.Contains(p.Logs(), "rules reloaded") })
		if err := p.Stop(t, syscall.SIGTERM, 10*time.Second); err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.Logs())
		}
	})
}
