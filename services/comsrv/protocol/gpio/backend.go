package gpio

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/warthog618/go-gpiocdev"

	"github.com/voltageems/voltage/shared/config"
)

// Line is one requested GPIO line. Values are the physical level: 0 low, 1 high.
type Line interface {
	Value() (int, error)
	SetValue(v int) error
	Close() error
}

// Backend requests lines from the kernel. An output is requested keeping the level
// it has, so restarting comsrv does not toggle a relay.
type Backend interface {
	Input(m config.GPIOMapping) (Line, error)
	Output(m config.GPIOMapping) (Line, error)
}

// CDev is the GPIO character device backend (/dev/gpiochipN, go-gpiocdev).
type CDev struct {
	Consumer string
}

// Input implements Backend.
func (c CDev) Input(m config.GPIOMapping) (Line, error) {
	if m.Chip == "" || m.Line < 0 {
		return nil, fmt.Errorf("%s: the cdev backend needs chip and line", m.Pos)
	}
	l, err := gpiocdev.RequestLine(m.Chip, m.Line, gpiocdev.AsInput, gpiocdev.WithConsumer(c.Consumer))
	if err != nil {
		return nil, fmt.Errorf("request %s line %d as input: %w", m.Chip, m.Line, err)
	}
	return l, nil
}

// Output implements Backend.
func (c CDev) Output(m config.GPIOMapping) (Line, error) {
	if m.Chip == "" || m.Line < 0 {
		return nil, fmt.Errorf("%s: the cdev backend needs chip and line", m.Pos)
	}
	l, err := gpiocdev.RequestLine(m.Chip, m.Line, gpiocdev.AsIs, gpiocdev.WithConsumer(c.Consumer))
	if err != nil {
		return nil, fmt.Errorf("request %s line %d: %w", m.Chip, m.Line, err)
	}
	v, err := l.Value()
	if err == nil {
		err = l.Reconfigure(gpiocdev.AsOutput(v))
	}
	if err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("make %s line %d an output: %w", m.Chip, m.Line, err)
	}
	return l, nil
}

// Sysfs is the legacy sysfs backend: Root/export, Root/gpioN/direction and value.
type Sysfs struct {
	Root string
	// ExportWait is how long to wait for gpioN to appear after an export. Default 1 s.
	ExportWait time.Duration
}

// Input implements Backend.
func (s Sysfs) Input(m config.GPIOMapping) (Line, error) {
	dir, err := s.export(m)
	if err != nil {
		return nil, err
	}
	if err := s.setDirection(dir, "in"); err != nil {
		return nil, err
	}
	return sysfsLine{dir: dir}, nil
}

// Output implements Backend.
func (s Sysfs) Output(m config.GPIOMapping) (Line, error) {
	dir, err := s.export(m)
	if err != nil {
		return nil, err
	}
	// "low"/"high" set the direction and the level at once; keep the level it has.
	l := sysfsLine{dir: dir}
	level := "low"
	if v, err := l.Value(); err == nil && v == 1 {
		level = "high"
	}
	if err := s.setDirection(dir, level); err != nil {
		return nil, err
	}
	return l, nil
}

func (s Sysfs) export(m config.GPIOMapping) (string, error) {
	if m.GPIO < 0 {
		return "", fmt.Errorf("%s: the sysfs backend needs gpio (the global line number)", m.Pos)
	}
	dir := filepath.Join(s.Root, "gpio"+strconv.Itoa(m.GPIO))
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	if err := os.WriteFile(filepath.Join(s.Root, "export"), []byte(strconv.Itoa(m.GPIO)), 0); err != nil {
		return "", fmt.Errorf("export gpio %d: %w", m.GPIO, err)
	}
	wait := s.ExportWait
	if wait <= 0 {
		wait = time.Second
	}
	// The kernel creates gpioN (and udev fixes its permissions) shortly after the write.
	for deadline := time.Now().Add(wait); ; {
		if _, err := os.Stat(filepath.Join(dir, "value")); err == nil {
			return dir, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("export gpio %d: %s did not appear within %v", m.GPIO, dir, wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s Sysfs) setDirection(dir, d string) error {
	cur, err := os.ReadFile(filepath.Join(dir, "direction"))
	if err != nil {
		return fmt.Errorf("read %s/direction: %w", dir, err)
	}
	c := strings.TrimSpace(string(cur))
	if c == d || (c == "out" && (d == "low" || d == "high")) {
		return nil // already so; rewriting "out" would drive the line low
	}
	if err := os.WriteFile(filepath.Join(dir, "direction"), []byte(d), 0); err != nil {
		return fmt.Errorf("set %s/direction to %s: %w", dir, d, err)
	}
	return nil
}

type sysfsLine struct{ dir string }

func (l sysfsLine) Value() (int, error) {
	b, err := os.ReadFile(filepath.Join(l.dir, "value"))
	if err != nil {
		return 0, fmt.Errorf("read %s/value: %w", l.dir, err)
	}
	switch strings.TrimSpace(string(b)) {
	case "0":
		return 0, nil
	case "1":
		return 1, nil
	}
	return 0, fmt.Errorf("%s/value holds %q, want 0 or 1", l.dir, strings.TrimSpace(string(b)))
}

func (l sysfsLine) SetValue(v int) error {
	if v != 0 && v != 1 {
		return errors.New("a GPIO line is 0 or 1")
	}
	if err := os.WriteFile(filepath.Join(l.dir, "value"), []byte(strconv.Itoa(v)), 0); err != nil {
		return fmt.Errorf("write %s/value: %w", l.dir, err)
	}
	return nil
}

// Close leaves the line exported, as it is: unexporting would release an output.
func (l sysfsLine) Close() error { return nil }
