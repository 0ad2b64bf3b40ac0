package main

import (
	"bufio"
	"bytes"
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
	bin := filepath.Join(t.TempDir(), "voltage-edge")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
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
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()

	running := regexp.MustCompile(`msg="edge appliance running".* http=(\S+)`)
	addr := make(chan string, 1)
	var logs bytes.Buffer // read only after scanned is closed
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if m := running.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		close(addr)
	}()
	var httpAddr string
	select {
	case a, ok := <-addr:
		if !ok {
			<-scanned
			t.Fatalf("voltage-edge exited before it was running: %v\n%s", cmd.Wait(), &logs)
		}
		httpAddr = a
	case <-time.After(20 * time.Second):
		t.Fatal("voltage-edge did not log that it was running within 20 s")
	}
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
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		<-scanned
		if err != nil {
			t.Errorf("voltage-edge exited with %v; logs:\n%s", err, &logs)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("voltage-edge did not stop within 5 s of SIGTERM")
	}
}
