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
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/service"
)

func TestBadConfigExitsWithConfigCode(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cloud.yaml"), []byte("http: {addr: 127.0.0.1:0}\nnats: {leaf: 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := run([]string{"--config", dir}, &stderr); code != service.ExitConfig {
		t.Errorf("exit code %d, want %d; stderr:\n%s", code, service.ExitConfig, &stderr)
	}
	if want := "cloud.yaml:2:8: unknown key \"leaf\""; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr = %q, want it to contain %q", &stderr, want)
	}
	stderr.Reset()
	if code := run([]string{"--nope"}, &stderr); code != service.ExitConfig {
		t.Errorf("unknown flag: exit code %d, want %d", code, service.ExitConfig)
	}
}

// TestBinaryRunsAndStopsOnSIGTERM builds voltage-cloud and runs it as an operator
// would, on free ports: it becomes ready, and SIGTERM stops it with exit code 0.
func TestBinaryRunsAndStopsOnSIGTERM(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "voltage-cloud")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	yaml := fmt.Sprintf("nats: {client_addr: 127.0.0.1:0, leaf_addr: 127.0.0.1:0, store_dir: %s}\nhttp: {addr: 127.0.0.1:0}\n", t.TempDir())
	if err := os.WriteFile(filepath.Join(dir, "cloud.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", dir, "--log-format", "text")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()

	// The start line names the bound addresses.
	running := regexp.MustCompile(`msg="cloud hub running".* http=(\S+)`)
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
			t.Fatalf("voltage-cloud exited before it was running: %v", cmd.Wait())
		}
		httpAddr = a
	case <-time.After(15 * time.Second):
		t.Fatal("voltage-cloud did not log that it was running within 15 s")
	}
	resp, err := http.Get("http://" + httpAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /readyz = %d %s", resp.StatusCode, body)
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
			t.Errorf("voltage-cloud exited with %v; logs:\n%s", err, &logs)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("voltage-cloud did not stop within 5 s of SIGTERM")
	}
}
