package main

import (
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

	"golang.org/x/crypto/bcrypt"

	"github.com/voltageems/voltage/shared/service"
	"github.com/voltageems/voltage/shared/testharness"
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
	bin := testharness.BuildBinary(t, ".")
	dir := t.TempDir()
	yaml := fmt.Sprintf("nats: {client_addr: 127.0.0.1:0, leaf_addr: 127.0.0.1:0, store_dir: %s}\nhttp: {addr: 127.0.0.1:0}\n", t.TempDir())
	if err := os.WriteFile(filepath.Join(dir, "cloud.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	// The start line names the bound addresses.
	proc, httpAddr := testharness.StartLogged(t, exec.Command(bin, "--config", dir, "--log-format", "text"),
		regexp.MustCompile(`msg="cloud hub running".* http=(\S+)`), 15*time.Second)

	resp, err := http.Get("http://" + httpAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /readyz = %d %s", resp.StatusCode, body)
	}

	if err := proc.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := proc.Stop(t, syscall.SIGTERM, 5*time.Second); err != nil {
		t.Errorf("voltage-cloud exited with %v; logs:\n%s", err, proc.Logs())
	}
}

func TestHashPassword(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := hashPassword(strings.NewReader("a-long-enough-password\n"), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, &errOut)
	}
	line := strings.TrimSpace(out.String())
	hash, ok := strings.CutPrefix(line, "leaf_password: ")
	if !ok {
		t.Fatalf("output %q", line)
	}
	hash = strings.Trim(hash, `"`)
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte("a-long-enough-password")) != nil {
		t.Errorf("hash %q does not match the password", hash)
	}
	out.Reset()
	if code := hashPassword(strings.NewReader(""), &out, &errOut); code != 0 || !strings.Contains(out.String(), "password: ") {
		t.Errorf("generated: exit %d, %q", code, &out)
	}
	if code := hashPassword(strings.NewReader("short\n"), &out, &errOut); code == 0 {
		t.Error("a short password was accepted")
	}
}
