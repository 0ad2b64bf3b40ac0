// Package gpio simulates the digital inputs and outputs of a gpio channel that uses
// the sysfs backend: it builds a /sys/class/gpio look-alike at the channel's
// sysfs_root (a folder of the dev stack or a test, never /sys itself), writes the
// level of every input line into its value file and reports an output as written
// when comsrv changes its value file.
package gpio

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
)

// Write is an output comsrv changed.
type Write struct {
	Type  point.Type
	ID    point.ID
	Value float64 // engineering value
}

// Options tune a Board.
type Options struct {
	// Scan is how often output files are checked for writes. Default 20 ms.
	Scan    time.Duration
	Logger  *slog.Logger
	OnWrite func([]Write) // called with no Board lock held
}

type line struct {
	pt    *config.Point
	dir   string
	level int // last level seen (outputs) or written (inputs)
}

// Board is the simulated lines of one channel.
type Board struct {
	root  string
	opts  Options
	mu    sync.Mutex
	lines map[pointKey]*line
}

type pointKey struct {
	t  point.Type
	id point.ID
}

// New builds the tree. The root must not be under /sys.
func New(ch *config.Channel, opts Options) (*Board, error) {
	var p config.GPIOParams
	if err := ch.DecodeParameters(&p); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("parameters: %w", err)
	}
	if p.Backend != config.GPIOBackendSysfs {
		return nil, fmt.Errorf("only the sysfs backend is simulated (backend %s)", p.Backend)
	}
	root, err := filepath.Abs(p.SysfsRoot)
	if err != nil {
		return nil, err
	}
	if root == "/sys" || strings.HasPrefix(root, "/sys/") {
		return nil, fmt.Errorf("sysfs_root %s is the kernel's: the simulator only builds trees elsewhere", root)
	}
	if opts.Scan <= 0 {
		opts.Scan = 20 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Board{root: root, opts: opts, lines: map[pointKey]*line{}}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", root, err)
	}
	for _, name := range []string{"export", "unexport"} {
		if err := os.WriteFile(filepath.Join(root, name), nil, 0o644); err != nil {
			return nil, err
		}
	}
	for _, t := range []point.Type{point.Signal, point.Control} {
		for i := range ch.Points[t] {
			pt := &ch.Points[t][i]
			if pt.GPIO == nil || pt.GPIO.GPIO < 0 {
				return nil, fmt.Errorf("%s point %d has no gpio number", t.Name(), pt.ID)
			}
			dir := filepath.Join(root, "gpio"+strconv.Itoa(pt.GPIO.GPIO))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
			direction := "in"
			if t == point.Control {
				direction = "out"
			}
			if err := os.WriteFile(filepath.Join(dir, "direction"), []byte(direction+"\n"), 0o644); err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(dir, "value"), []byte("0\n"), 0o644); err != nil {
				return nil, err
			}
			b.lines[pointKey{t, pt.ID}] = &line{pt: pt, dir: dir}
		}
	}
	return b, nil
}

// Root is the tree's folder.
func (b *Board) Root() string { return b.root }

// Set puts the engineering value of a point on its line.
func (b *Board) Set(t point.Type, id point.ID, v float64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	l, ok := b.lines[pointKey{t, id}]
	if !ok {
		return fmt.Errorf("no GPIO point %s%d", t, id)
	}
	level := 0
	if point.RawFromEngineering(v, 1, 0, l.pt.Reverse) != 0 {
		level = 1
	}
	l.level = level
	return os.WriteFile(filepath.Join(l.dir, "value"), []byte(strconv.Itoa(level)+"\n"), 0o644)
}

// Serve watches the outputs until ctx is done.
func (b *Board) Serve(ctx context.Context) error {
	t := time.NewTicker(b.opts.Scan)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if ws := b.scan(); len(ws) > 0 && b.opts.OnWrite != nil {
				b.opts.OnWrite(ws)
			}
		}
	}
}

func (b *Board) scan() []Write {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ws []Write
	for k, l := range b.lines {
		if k.t != point.Control {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(l.dir, "value"))
		if err != nil {
			continue
		}
		level, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil || level == l.level {
			continue
		}
		l.level = level
		ws = append(ws, Write{Type: k.t, ID: k.id, Value: point.Engineering(float64(level), 1, 0, l.pt.Reverse)})
	}
	return ws
}
