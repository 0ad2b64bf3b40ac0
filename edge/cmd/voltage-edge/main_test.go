package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/testharness"
)

// TestBinaryRunsAndStopsOnSIGTERM builds voltage-edge and runs it as an operator
// would, every listener on a free port and no hub configured: it becomes ready,
// survives SIGHUP, and SIGTERM stops it with exit code 0.
func TestBinaryRunsAndStopsOnSIGTERM(t *testing.T) {
	rd := testharness.StartRedis(t)
	bin := testharness.BuildBinary(t, ".")
	dir := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("site.yaml", "site: {id: bin-site}\nredis: {url: "+rd.URL()+"}\nlisten: {comsrv: \"127.0.0.1:0\"}\n")
	write("comsrv/channels.yaml", "channels: [{id: 1, name: v, protocol: virtual, parameters: {poll_interval_ms: 50, generators: [{type: T, point: 1, kind: constant, value: 1}]}}]\n")
	write("comsrv/1/telemetry.csv", "point_id,signal_name,scale,offset,unit,reverse,data_type\n1,one,1,0,,0,float\n")

	cmd := exec.Command(bin, "--config", dir, "--log-format", "text")
	cmd.Dir = t.TempDir() // the JetStream store goes to ./data/edge under it
	cmd.Env = append(os.Environ(), "VOLTAGE_HTTP_ADDR=127.0.0.1:0", "VOLTAGE_NATS_URL=nats://127.0.0.1:0")
	proc, httpAddr := testharness.StartLogged(t, cmd, regexp.MustCompile(`msg="edge appliance running".* http=(\S+)`), 20*time.Second)
	testharness.Eventually(t, 10*time.Second, func() error {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /readyz = %d %s", resp.StatusCode, body)
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(cmd.Dir, "data", "edge", "jetstream")); err != nil {
		t.Errorf("JetStream store not in ./data/edge/jetstream: %v", err)
	}

	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := proc.Stop(t, syscall.SIGTERM, 5*time.Second); err != nil {
		t.Errorf("voltage-edge exited with %v; logs:\n%s", err, proc.Logs())
	}
}
