package testharness

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BuildBinary builds the main package pkg (a path `go build` accepts, relative to
// the test's package folder, e.g. "." or "./cmd/comsrv") into a temporary folder
// and returns the binary's path.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	abs, err := filepath.Abs(pkg)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), filepath.Base(abs))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// LoggedProcess is a binary under test whose stderr is read line by line.
type LoggedProcess struct {
	Cmd *exec.Cmd

	mu      sync.Mutex
	logs    strings.Builder
	exited  chan struct{} // closed once the process exited and its stderr is read
	waitErr error
}

// StartLogged starts cmd, waits until a line of its stderr matches re, and returns
// the process with the first submatch of that line (the whole line without a
// group). It fails the test, quoting the log, when the process exits first or the
// line does not come within timeout; the process is killed when the test ends.
func StartLogged(t testing.TB, cmd *exec.Cmd, re *regexp.Regexp, timeout time.Duration) (*LoggedProcess, string) {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	p := &LoggedProcess{Cmd: cmd, exited: make(chan struct{})}
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-p.exited })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			p.mu.Unlock()
			if m := re.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[len(m)-1]:
				default:
				}
			}
		}
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	select {
	case m := <-found:
		return p, m
	case <-p.exited:
		t.Fatalf("%s exited (%v) before logging %q:\n%s", cmd.Path, p.waitErr, re, p.Logs())
	case <-time.After(timeout):
		t.Fatalf("%s did not log %q within %s:\n%s", cmd.Path, re, timeout, p.Logs())
	}
	return nil, ""
}

// Logs returns what the process has written to stderr so far.
func (p *LoggedProcess) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// Stop sends sig and waits up to timeout for the process to exit, returning its
// exit error; it fails the test when the process is still running then.
func (p *LoggedProcess) Stop(t testing.TB, sig syscall.Signal, timeout time.Duration) error {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", sig, err)
	}
	select {
	case <-p.exited:
		return p.waitErr
	case <-time.After(timeout):
		t.Fatalf("%s did not stop within %s of %s:\n%s", p.Cmd.Path, timeout, sig, p.Logs())
		return nil
	}
}
