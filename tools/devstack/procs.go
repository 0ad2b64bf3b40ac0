// Package devstack is what runs the whole local VoltageEMS stack as real processes:
// the dev stack (`go tool task dev`, tools/cmd/voltage-dev) and the chaos suite
// (tools/chaos) share it. It supervises the child processes (Procs), builds the
// stack's binaries, picks loopback ports, and knows how the cloud hub and the edge
// appliance are configured for one local site and when they are ready.
package devstack

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Options configure Procs.
type Options struct {
	// Out receives every line of the children's output (stdout and stderr merged),
	// prefixed with the process's name. Nil: discarded.
	Out io.Writer
	// Color colors each process's prefix (for a terminal).
	Color bool
	// TailLines is how many of a process's last lines Tail keeps (default 15).
	TailLines int
	// StopTimeout is how long StopAll waits after SIGTERM before SIGKILL (default 5 s).
	StopTimeout time.Duration
	// Log receives the warning about a process killed by StopAll (nil: discarded).
	Log *slog.Logger
}

// Procs supervises the stack's child processes. Each runs in its own process
// group, so a Ctrl-C at the terminal reaches only the supervisor, which then stops
// them in order (StopAll). Its methods may be called from any goroutine.
type Procs struct {
	opts   Options
	outMu  sync.Mutex // one line at a time on opts.Out
	exited chan Exit

	mu     sync.Mutex
	order  []*Proc // in start order
	byName map[string]*Proc
}

// Exit is a process that ended on its own: neither Kill nor StopAll ended it.
type Exit struct {
	Proc *Proc
	Err  error // from exec.Cmd.Wait
}

// exitBacklog bounds the unexpected exits kept for a reader of Exited.
const exitBacklog = 16

// NewProcs returns a supervisor without processes.
func NewProcs(o Options) *Procs {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.TailLines <= 0 {
		o.TailLines = 15
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Procs{opts: o, exited: make(chan Exit, exitBacklog), byName: map[string]*Proc{}}
}

// Proc is one supervised process. Restart starts it again with the same command
// line.
type Proc struct {
	Name string

	procs            *Procs
	bin, dir, prefix string
	env, args        []string

	// lifecycle serializes Kill, Restart and StopAll on this process.
	lifecycle sync.Mutex

	mu   sync.Mutex
	run  *run     // the latest start
	tail []string // the last lines of output, across restarts
}

// run is one start of a Proc.
type run struct {
	cmd *exec.Cmd
	// exited is set once the process has exited and its output is read, then the
	// exit is reported (unless onPurpose), then done is closed.
	exited atomic.Bool
	done   chan struct{}
	err    error // the exit, set before exited
	// onPurpose is set before Kill or StopAll signals the process: its exit is
	// then not reported on Exited.
	onPurpose atomic.Bool
}

var colors = []string{"\033[36m", "\033[33m", "\033[35m", "\033[32m", "\033[34m", "\033[31m"}

// Start runs bin with args in dir (where its relative data folders land), with env
// added to this process's environment, under name.
func (s *Procs) Start(name, bin, dir string, env []string, args ...string) (*Proc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.byName[name]; dup {
		return nil, fmt.Errorf("start %s: a process of that name is supervised already", name)
	}
	prefix := fmt.Sprintf("%-9s| ", name)
	if s.opts.Color {
		prefix = fmt.Sprintf("%s%-9s|\033[0m ", colors[len(s.order)%len(colors)], name)
	}
	p := &Proc{Name: name, procs: s, bin: bin, dir: dir, prefix: prefix,
		env: slices.Clone(env), args: slices.Clone(args)}
	if err := p.start(); err != nil {
		return nil, err
	}
	s.order = append(s.order, p)
	s.byName[name] = p
	return p, nil
}

// Proc is the process started under name, or nil.
func (s *Procs) Proc(name string) *Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byName[name]
}

// Exited reports the processes that exit on their own, in the order they exit.
// Only the first 16 unread ones are kept.
func (s *Procs) Exited() <-chan Exit { return s.exited }

// Kill sends SIGKILL to the named process (not its children) and waits until it
// is gone. Its exit is not reported on Exited.
func (s *Procs) Kill(name string) error {
	p := s.Proc(name)
	if p == nil {
		return fmt.Errorf("kill %s: no such process", name)
	}
	p.lifecycle.Lock()
	defer p.lifecycle.Unlock()
	r := p.latest()
	if r.exited.Load() {
		return fmt.Errorf("kill %s: not running (%v)", name, r.err)
	}
	r.onPurpose.Store(true)
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %s: %w", name, err)
	}
	select {
	case <-r.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s did not exit within 10 s of SIGKILL", name)
	}
}

// Restart starts the named process again, after it exited or was killed, with the
// same program, arguments, environment and folder. It does not wait until the
// process serves.
func (s *Procs) Restart(name string) error {
	p := s.Proc(name)
	if p == nil {
		return fmt.Errorf("restart %s: no such process", name)
	}
	p.lifecycle.Lock()
	defer p.lifecycle.Unlock()
	if p.Running() {
		return fmt.Errorf("restart %s: still running (pid %d)", name, p.PID())
	}
	return p.start()
}

// StopAll stops every running process, the last started first: SIGTERM, then
// SIGKILL when it has not exited within Options.StopTimeout. Their exits are not
// reported on Exited.
func (s *Procs) StopAll() {
	s.mu.Lock()
	order := slices.Clone(s.order)
	s.mu.Unlock()
	for i := len(order) - 1; i >= 0; i-- {
		order[i].stop(s.opts.StopTimeout, s.opts.Log)
	}
}

// PID is the process id of its latest start.
func (p *Proc) PID() int {
	r := p.latest()
	if r == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

// Running says whether the latest start is still running.
func (p *Proc) Running() bool {
	r := p.latest()
	return r != nil && !r.exited.Load()
}

// Tail is the process's last lines of output (Options.TailLines), for a failure
// message.
func (p *Proc) Tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

func (p *Proc) latest() *run {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.run
}

func (p *Proc) start() error {
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Dir = p.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C reaches the supervisor, which stops them in order
	out := &lineWriter{p: p}
	cmd.Stdout, cmd.Stderr = out, out // one pipe: the lines keep their order
	// A grandchild that keeps the output open (a shell's background job) does not
	// hold up the exit of the process itself for longer than this.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	r := &run{cmd: cmd, done: make(chan struct{})}
	p.mu.Lock()
	p.run = r
	p.mu.Unlock()
	go func() { // owned by r: ends when the process has exited
		r.err = cmd.Wait()
		out.flush()
		r.exited.Store(true)
		if !r.onPurpose.Load() {
			select {
			case p.procs.exited <- Exit{Proc: p, Err: r.err}:
			default: // nobody reads; the first exits are kept
			}
		}
		close(r.done)
	}()
	return nil
}

func (p *Proc) stop(timeout time.Duration, log *slog.Logger) {
	p.lifecycle.Lock()
	defer p.lifecycle.Unlock()
	r := p.latest()
	if r == nil || r.exited.Load() {
		return
	}
	r.onPurpose.Store(true)
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(timeout):
		log.Warn("did not stop in time; killing", "process", p.Name, "timeout", timeout)
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// line writes one line of the process's output to Options.Out and its tail.
func (p *Proc) line(text string) {
	s := p.procs
	s.outMu.Lock()
	fmt.Fprintf(s.opts.Out, "%s%s\n", p.prefix, text)
	s.outMu.Unlock()
	p.mu.Lock()
	p.tail = append(p.tail, text)
	if over := len(p.tail) - s.opts.TailLines; over > 0 {
		p.tail = append(p.tail[:0], p.tail[over:]...)
	}
	p.mu.Unlock()
}

// lineWriter cuts a process's output into lines. exec calls Write from one
// goroutine at a time.
type lineWriter struct {
	p       *Proc
	partial []byte
}

// maxLine bounds a line that never ends: it is passed on in pieces this long.
const maxLine = 64 * 1024

func (w *lineWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			w.partial = append(w.partial, b...)
			if len(w.partial) >= maxLine {
				w.flush()
			}
			break
		}
		w.partial = append(w.partial, b[:i]...)
		w.p.line(string(bytes.TrimSuffix(w.partial, []byte("\r"))))
		w.partial = w.partial[:0]
		b = b[i+1:]
	}
	return n, nil
}

// flush passes on a last line without a newline.
func (w *lineWriter) flush() {
	if len(w.partial) > 0 {
		w.p.line(string(w.partial))
		w.partial = w.partial[:0]
	}
}
