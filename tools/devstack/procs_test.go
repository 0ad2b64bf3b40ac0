package devstack

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/testharness"
)

// syncBuffer is an io.Writer the supervisor and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newProcs(t *testing.T, o Options) *Procs {
	t.Helper()
	s := NewProcs(o)
	t.Cleanup(s.StopAll)
	return s
}

// shell starts a POSIX shell script under name.
func shell(t *testing.T, s *Procs, name, script string, env ...string) *Proc {
	t.Helper()
	p, err := s.Start(name, "/bin/sh", t.TempDir(), env, "-c", script)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func waitTail(t *testing.T, p *Proc, want string) {
	t.Helper()
	testharness.WaitFor(t, 10*time.Second, fmt.Sprintf("%q in the output of %s", want, p.Name), func() bool {
		return strings.Contains(p.Tail(), want)
	})
}

// nextExit is the next exit reported, or fails the test after timeout.
func nextExit(t *testing.T, s *Procs, timeout time.Duration) Exit {
	t.Helper()
	select {
	case e := <-s.Exited():
		return e
	case <-time.After(timeout):
		t.Fatalf("no exit reported within %s", timeout)
		return Exit{}
	}
}

func TestOutputIsPrefixedMergedAndTailed(t *testing.T) {
	var out syncBuffer
	s := newProcs(t, Options{Out: &out, TailLines: 4})
	p := shell(t, s, "talker", `for i in 1 2 3 4 5; do echo "out $i"; echo "err $i" >&2; done; printf 'no newline'`)
	e := nextExit(t, s, 10*time.Second)
	if e.Proc != p || e.Err != nil {
		t.Fatalf("exit %+v, want talker's clean exit", e)
	}
	// One pipe for both streams: the lines keep the order the script wrote them.
	var want strings.Builder
	for i := 1; i <= 5; i++ {
		fmt.Fprintf(&want, "talker   | out %d\ntalker   | err %d\n", i, i)
	}
	want.WriteString("talker   | no newline\n")
	if got := out.String(); got != want.String() {
		t.Fatalf("output:\n%s\nwant:\n%s", got, want.String())
	}
	if got, want := p.Tail(), "err 4\nout 5\nerr 5\nno newline"; got != want {
		t.Fatalf("tail %q, want %q", got, want)
	}
}

func TestColoredPrefixes(t *testing.T) {
	var out syncBuffer
	s := newProcs(t, Options{Out: &out, Color: true})
	shell(t, s, "first", "echo one")
	nextExit(t, s, 10*time.Second)
	shell(t, s, "second", "echo two")
	nextExit(t, s, 10*time.Second)
	want := "\033[36mfirst    |\033[0m one\n\033[33msecond   |\033[0m two\n"
	if got := out.String(); got != want {
		t.Fatalf("output %q, want %q", got, want)
	}
}

func TestUnexpectedExitIsReported(t *testing.T) {
	s := newProcs(t, Options{})
	p := shell(t, s, "crasher", "echo giving up; exit 3")
	e := nextExit(t, s, 10*time.Second)
	var exit *exec.ExitError
	if e.Proc != p || !errors.As(e.Err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("exit %v of %v, want crasher's exit status 3", e.Err, e.Proc)
	}
	// The output is complete when the exit is reported.
	if p.Tail() != "giving up" || p.Running() {
		t.Fatalf("tail %q, running %v", p.Tail(), p.Running())
	}
	if err := s.Kill("crasher"); err == nil {
		t.Fatal("Kill of an exited process succeeded")
	}
}

func TestKillIsSIGKILLAndNotReported(t *testing.T) {
	s := newProcs(t, Options{})
	// SIGTERM is ignored (also after exec): only SIGKILL ends it.
	p := shell(t, s, "stubborn", `trap '' TERM; echo up; exec sleep 30`)
	waitTail(t, p, "up")
	pid := p.PID()
	if err := s.Kill("stubborn"); err != nil {
		t.Fatal(err)
	}
	if p.Running() {
		t.Fatal("running after Kill")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("pid %d still exists after Kill: %v", pid, err)
	}
	// Kill returns once the process is gone, and its exit is reported (or not)
	// before that: the next exit reported is the crash that follows.
	crash := shell(t, s, "crasher", "exit 2")
	if e := nextExit(t, s, 10*time.Second); e.Proc != crash {
		t.Fatalf("reported %s's exit, want only crasher's", e.Proc.Name)
	}
	if err := s.Kill("nobody"); err == nil {
		t.Fatal("Kill of an unknown process succeeded")
	}
}

func TestRestartReusesTheCommandLine(t *testing.T) {
	s := newProcs(t, Options{})
	dir := t.TempDir()
	// It says how it was started, then runs until the file "stop" appears in its folder.
	p, err := s.Start("worker", "/bin/sh", dir, []string{"DEVSTACK_TEST=hello"}, "-c",
		`echo "run $1 $DEVSTACK_TEST $(pwd)"; while [ ! -e stop ]; do sleep 0.02; done; exit 4`, "sh", "first")
	if err != nil {
		t.Fatal(err)
	}
	line := "run first hello " + dir
	waitTail(t, p, line)
	if err := s.Restart("worker"); err == nil {
		t.Fatal("Restart of a running process succeeded")
	}
	firstPID := p.PID()
	if err := s.Kill("worker"); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart("worker"); err != nil {
		t.Fatal(err)
	}
	testharness.WaitFor(t, 10*time.Second, "the restarted worker's line", func() bool {
		return p.Tail() == line+"\n"+line
	})
	if p.PID() == firstPID || !p.Running() || s.Proc("worker") != p {
		t.Fatalf("after Restart: pid %d (was %d), running %v", p.PID(), firstPID, p.Running())
	}
	// Killing the first start made no report; the restarted one's own exit does.
	if err := os.WriteFile(filepath.Join(dir, "stop"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e := nextExit(t, s, 10*time.Second)
	var exit *exec.ExitError
	if e.Proc != p || !errors.As(e.Err, &exit) || exit.ExitCode() != 4 {
		t.Fatalf("exit %v of %s, want the restarted worker's exit status 4", e.Err, e.Proc.Name)
	}
}

func TestStartErrors(t *testing.T) {
	s := newProcs(t, Options{})
	if _, err := s.Start("ghost", filepath.Join(t.TempDir(), "missing"), t.TempDir(), nil); err == nil {
		t.Fatal("Start of a missing binary succeeded")
	}
	if s.Proc("ghost") != nil {
		t.Fatal("a process that did not start is supervised")
	}
	shell(t, s, "one", "exec sleep 30")
	if _, err := s.Start("one", "/bin/sh", t.TempDir(), nil, "-c", "exit 0"); err == nil {
		t.Fatal("a second process of the same name started")
	}
	if err := s.Restart("nobody"); err == nil {
		t.Fatal("Restart of an unknown process succeeded")
	}
}

func TestStopAllStopsInReverseOrder(t *testing.T) {
	var logs syncBuffer
	s := newProcs(t, Options{StopTimeout: 300 * time.Millisecond, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	record := filepath.Join(t.TempDir(), "stopped")
	var procs []*Proc
	for _, name := range []string{"a", "b", "c"} {
		p := shell(t, s, name, `trap 'echo "$NAME" >> "$RECORD"; exit 0' TERM; echo up; while :; do sleep 0.02; done`,
			"NAME="+name, "RECORD="+record)
		procs = append(procs, p)
	}
	stubborn := shell(t, s, "stubborn", `trap '' TERM; echo up; exec sleep 30`)
	for _, p := range append(procs, stubborn) {
		waitTail(t, p, "up")
	}
	s.StopAll()
	b, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != "c\nb\na\n" {
		t.Fatalf("stopped in the order %q, want c, b, a", got)
	}
	for _, p := range append(procs, stubborn) {
		if p.Running() {
			t.Fatalf("%s runs after StopAll", p.Name)
		}
	}
	if !strings.Contains(logs.String(), "process=stubborn") {
		t.Fatalf("no warning about killing stubborn: %q", logs.String())
	}
	if n := len(s.Exited()); n != 0 {
		t.Fatalf("%d exits reported for processes StopAll stopped", n)
	}
}
