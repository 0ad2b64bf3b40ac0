package modsrv_test

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

// The binary refuses an invalid model with exit code 2 and an error naming the
// place and the problem.
func TestBinaryRejectsInvalidModel(t *testing.T) {
	bin := testharness.BuildBinary(t, "./cmd/modsrv")
	calc := func(expr string) files {
		return files{"modsrv/calculations.yaml": "calculations:\n  - name: c1\n    instance: station\n    measurement: soc\n    expression: " + expr + "\n"}
	}
	cases := []struct {
		name    string
		changes files
		want    string
	}{
		{"cycle", files{"modsrv/calculations.yaml": "calculations:\n" +
			"  - {name: a, instance: station, measurement: soc, expression: station.load_power}\n" +
			"  - {name: b, instance: station, measurement: load_power, expression: station.soc}\n"},
			"calculations.yaml:2:5: calculations form a cycle: a → b → a"},
		{"unknown function", calc("median(pv1.active_power)"), "calculations.yaml:5:17: calculation c1: unknown function median"},
		{"syntax error", calc("(pv1.active_power + 1"), "calculations.yaml:5:"},
		{"route to a missing point", files{"modsrv/instances/pv2/channel_routing.csv": "channel_id,channel_type,channel_point_id,instance_type,instance_point_id\n1,T,42,M,1\n"},
			"channel_routing.csv:2:5: channel 1 (pv) has no telemetry point 42"},
		{"unknown product", files{"modsrv/instances.yaml": "instances:\n  - {id: 1, name: station, product: power_plant}\n"},
			`instances.yaml:2:37: instance station: unknown product "power_plant"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeSite(t, merge(virtualSite, c.changes), "redis://127.0.0.1:1/0")
			cmd := exec.Command(bin, "--config", dir)
			cmd.Env = append(cmd.Environ(), "VOLTAGE_HTTP_ADDR=127.0.0.1:0")
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want code 2; output:\n%s", err, out)
			}
			if !strings.Contains(string(out), c.want) {
				t.Fatalf("output:\n%s\nwant it to contain %q", out, c.want)
			}
		})
	}
}

// A valid site starts (with Redis away), answers /healthz and stops on SIGTERM.
func TestBinaryStartsAndStops(t *testing.T) {
	bin := testharness.BuildBinary(t, "./cmd/modsrv")
	dir := writeSite(t, virtualSite, "redis://127.0.0.1:1/0")
	cmd := exec.Command(bin, "--config", dir, "--log-level", "info")
	cmd.Env = append(cmd.Environ(), "VOLTAGE_HTTP_ADDR=127.0.0.1:0")
	p, _ := testharness.StartLogged(t, cmd, regexp.MustCompile(`modsrv running`), 30*time.Second)

	// SIGHUP reloads: an invalid model is refused, a valid one applied.
	calcs := filepath.Join(dir, "modsrv", "calculations.yaml")
	if err := os.WriteFile(calcs, []byte("calculations:\n  - {name: x, instance: station, measurement: soc, expression: 'nope(1)'}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testharness.WaitFor(t, 20*time.Second, "the refused reload in the log", func() bool {
		return strings.Contains(p.Logs(), "reload refused") && strings.Contains(p.Logs(), "unknown function nope")
	})
	if err := os.WriteFile(calcs, []byte("calculations: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testharness.WaitFor(t, 20*time.Second, "the reload in the log", func() bool {
		return strings.Contains(p.Logs(), "model reloaded")
	})
	if err := p.Stop(t, syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.Logs())
	}
}
