package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// stack owns the child processes: it prefixes their output, reports the first one
// that exits, and stops them all in reverse order.
type stack struct {
	log    *slog.Logger
	out    io.Writer
	procs  []*proc
	exited chan *proc
	mini   *miniredis.Miniredis
	outMu  sync.Mutex
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

var colors = []string{"\033[36m", "\033[33m", "\033[35m", "\033[32m", "\033[34m", "\033[31m"}

// start runs bin in dir (its relative data folders land there) with env added.
func (s *stack) start(ctx context.Context, name, bin, dir string, env []string, args ...string) error {
	if s.exited == nil {
		s.exited = make(chan *proc, 16)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C reaches us, we stop them in order
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	prefix := fmt.Sprintf("%s%-8s|\033[0m ", colors[len(s.procs)%len(colors)], name)
	var copying sync.WaitGroup
	copying.Add(2)
	go func() { defer copying.Done(); s.copyLines(prefix, stdout) }()
	go func() { defer copying.Done(); s.copyLines(prefix, stderr) }()
	go func() {
		copying.Wait()
		p.err = cmd.Wait()
		close(p.done)
		if ctx.Err() == nil {
			s.exited <- p
		}
	}()
	s.procs = append(s.procs, p)
	return nil
}

func (s *stack) copyLines(prefix string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		s.outMu.Lock()
		fmt.Fprintln(s.out, prefix+sc.Text())
		s.outMu.Unlock()
	}
}

// startRedis runs redis-server on addr with its data in dir (AOF on). Without redis-server it falls back to an in-process Redis.
func (s *stack) startRedis(ctx context.Context, dir, addr string) (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		s.mini = miniredis.NewMiniRedis()
		if err := s.mini.Start(); err != nil {
			return "", fmt.Errorf("in-process redis: %w", err)
		}
		s.log.Warn("redis-server is not on PATH: using an in-process Redis fallback (no persistence, not for production). Install it with `apt-get install redis-server`.", "addr", s.mini.Addr())
		return "redis://" + s.mini.Addr() + "/0", nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	port := strconv.Itoa(portOf(addr))
	if err := s.start(ctx, "redis", bin, dir, nil, "--port", port, "--bind", "127.0.0.1", "--dir", dir,
		"--appendonly", "yes", "--save", "", "--protected-mode", "yes",
		// Hash tables instead of listpacks for point hashes over 16 fields: several
		// times faster to update (docs/benchmarks.md, "Small hashes are listpacks").
		"--hash-max-listpack-entries", "16"); err != nil {
		return "", err
	}
	if err := waitTCP(ctx, addr, 10*time.Second); err != nil {
		return "", fmt.Errorf("redis-server: %w", err)
	}
	return "redis://" + addr + "/0", nil
}

func (s *stack) stopAll() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			s.log.Warn("did not stop within 5 s; killing", "process", p.name)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if s.mini != nil {
		s.mini.Close()
	}
}
