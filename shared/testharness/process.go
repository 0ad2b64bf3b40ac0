package testharness

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stopTimeout bounds how long a server may take to exit after SIGTERM before it
// is killed.
const stopTimeout = 10 * time.Second

// errPortTaken means the server could not bind its port because another process
// took it between FreePort and the server's bind; the caller retries elsewhere.
var errPortTaken = errors.New("port already in use")

// process is one run of a server binary that a test owns. Its output goes to a log
// file, which is appended to across restarts and quoted when the server misbehaves.
type process struct {
	name    string // what to call it in messages, e.g. "redis-server"
	bin     string
	args    []string
	logPath string

	mu       sync.Mutex
	logStart int64 // log size when the current run started: its output begins here
	cmd      *exec.Cmd
	exited   chan struct{} // closed when cmd has been reaped; nil before the first start
	werr     error         // cmd.Wait's result, valid once exited is closed
}

// Binary returns the path of the program name, searched on PATH and then in
// extraDirs (Debian puts some daemons in /usr/sbin, which is not on every user's
// PATH). A missing program fails the test with the Debian package to install.
func Binary(t testing.TB, name, debianPackage string, extraDirs ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range extraDirs {
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatalf("%s not found on PATH: install it with `apt-get install %s`", name, debianPackage)
	return ""
}

// start launches the binary. The child gets SIGKILL if the test binary dies, so a
// crashed test run does not leave servers behind.
func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited != nil && !isClosed(p.exited) {
		return fmt.Errorf("%s is already running", p.name)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open %s log: %w", p.name, err)
	}
	if st, err := logf.Stat(); err == nil {
		p.logStart = st.Size()
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited = cmd, exited
	// The reaper owns cmd until it exits; it ends when the process does.
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.werr = err
		p.mu.Unlock()
		close(exited)
	}()
	return nil
}

// exitErr returns nil while the process runs and an error describing its exit
// (with the log tail) once it has stopped.
func (p *process) exitErr() error {
	p.mu.Lock()
	exited, werr := p.exited, p.werr
	p.mu.Unlock()
	if exited == nil || !isClosed(exited) {
		return nil
	}
	if werr == nil {
		werr = errors.New("exit status 0")
	}
	return fmt.Errorf("%s exited (%v); log tail:\n%s", p.name, werr, p.logTail())
}

func (p *process) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited != nil && !isClosed(p.exited)
}

// signal sends sig and waits for the process to exit, killing it if it has not
// exited within stopTimeout. Stopping a stopped process is a no-op.
func (p *process) signal(sig syscall.Signal) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if exited == nil || isClosed(exited) {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("%s did not exit within %v of %v; killed. Log tail:\n%s", p.name, stopTimeout, sig, p.logTail())
}

// logTail returns the end of the current run's log output.
func (p *process) logTail() string {
	p.mu.Lock()
	from := p.logStart
	p.mu.Unlock()
	f, err := os.Open(p.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	const max = 4096
	if st, err := f.Stat(); err == nil && st.Size()-from > max {
		from = st.Size() - max
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return fmt.Sprintf("(read log: %v)", err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(read log: %v)", err)
	}
	return strings.TrimSpace(string(b))
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
