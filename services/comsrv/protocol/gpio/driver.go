// Package gpio is comsrv's driver for digital inputs and outputs on Linux GPIO
// lines: signal points are inputs, control points outputs. A point's reverse makes
// its line active-low (engineering 1 = line low); the raw value is always the
// physical level. Lines come from the GPIO character device (/dev/gpiochipN) or,
// on boards that only have it, from sysfs (/sys/class/gpio), behind one Backend.
package gpio

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/voltageems/voltage/services/comsrv/protocol"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
)

func init() {
	protocol.Register(config.ProtocolGPIO, func(ch *config.Channel, log *slog.Logger) (protocol.Driver, error) {
		return New(ch, log, nil)
	})
}

type line struct {
	pt *config.Point
	l  Line
}

// Driver is a gpio channel.
type Driver struct {
	ch      *config.Channel
	params  config.GPIOParams
	log     *slog.Logger
	backend Backend
	lines   []*line
	byPoint map[*config.Point]*line
}

// New builds the driver; a nil backend means the one the parameters name.
func New(ch *config.Channel, log *slog.Logger, b Backend) (*Driver, error) {
	var p config.GPIOParams
	if err := ch.DecodeParameters(&p); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("parameters: %w", err)
	}
	if b == nil {
		switch p.Backend {
		case config.GPIOBackendSysfs:
			b = Sysfs{Root: p.SysfsRoot}
		default:
			b = CDev{Consumer: p.Consumer}
		}
	}
	d := &Driver{ch: ch, params: p, log: log, backend: b, byPoint: map[*config.Point]*line{}}
	for _, t := range point.Types {
		for i := range ch.Points[t] {
			pt := &ch.Points[t][i]
			switch {
			case t != point.Signal && t != point.Control:
				return nil, fmt.Errorf("%s: %s point %d: a gpio channel has signal (input) and control (output) points only", pt.Pos, t.Name(), pt.ID)
			case pt.GPIO == nil:
				return nil, fmt.Errorf("%s: %s point %d has no GPIO mapping row", pt.Pos, t.Name(), pt.ID)
			case p.Backend == config.GPIOBackendSysfs && pt.GPIO.GPIO < 0:
				return nil, fmt.Errorf("%s: %s point %d: the sysfs backend needs column gpio", pt.GPIO.Pos, t.Name(), pt.ID)
			case p.Backend == config.GPIOBackendCDev && (pt.GPIO.Chip == "" || pt.GPIO.Line < 0):
				return nil, fmt.Errorf("%s: %s point %d: the cdev backend needs columns chip and line", pt.GPIO.Pos, t.Name(), pt.ID)
			}
			ln := &line{pt: pt}
			d.lines = append(d.lines, ln)
			d.byPoint[pt] = ln
		}
	}
	return d, nil
}

// Acquisition implements protocol.Driver.
func (d *Driver) Acquisition() config.Acquisition { return d.params.Acquisition }

// Connect requests every line.
func (d *Driver) Connect(ctx context.Context, _ protocol.Sink) error {
	for _, ln := range d.lines {
		var err error
		if ln.pt.Type == point.Control {
			ln.l, err = d.backend.Output(*ln.pt.GPIO)
		} else {
			ln.l, err = d.backend.Input(*ln.pt.GPIO)
		}
		if err != nil {
			_ = d.Close()
			return fmt.Errorf("%s point %d: %w", ln.pt.Type.Name(), ln.pt.ID, err)
		}
	}
	return nil
}

// Poll reads every line: inputs, and outputs to show the level they hold.
func (d *Driver) Poll(ctx context.Context, sink protocol.Sink) error {
	ok := 0
	var lastErr error
	for _, ln := range d.lines {
		v, err := ln.l.Value()
		if err != nil {
			lastErr = err
			sink.Fail(ln.pt.Type, ln.pt.ID, point.CommLost, err)
			continue
		}
		ok++
		raw := float64(v)
		sink.Sample(ln.pt.Type, point.Sample{ID: ln.pt.ID, Raw: raw, TS: protocol.PollTime(ctx), Quality: point.Good,
			Value: point.Engineering(raw, 1, 0, ln.pt.Reverse)})
	}
	if ok == 0 && lastErr != nil {
		return fmt.Errorf("no GPIO line could be read: %w", lastErr)
	}
	return nil
}

// Write drives an output: engineering 1 is high, or low when the point is reversed.
func (d *Driver) Write(ctx context.Context, p *config.Point, v float64) error {
	ln := d.byPoint[p]
	if ln == nil {
		if cp := d.ch.Point(p.Type, p.ID); cp != nil {
			ln = d.byPoint[cp]
		}
	}
	if ln == nil || p.Type != point.Control {
		return protocol.ErrReadOnly
	}
	if ln.l == nil {
		return fmt.Errorf("line of control point %d is not requested", p.ID)
	}
	if err := ln.l.SetValue(level(p, v != 0)); err != nil {
		return err
	}
	if p.ControlType == "pulse" && p.PulseDurationMS > 0 && v != 0 {
		t := time.NewTimer(time.Duration(p.PulseDurationMS) * time.Millisecond)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return fmt.Errorf("pulse interrupted before the off level: %w", ctx.Err())
		case <-t.C:
		}
		return ln.l.SetValue(level(p, false))
	}
	return nil
}

// level is the physical level of an output that should be on (or off).
func level(p *config.Point, on bool) int {
	if on != p.Reverse {
		return 1
	}
	return 0
}

// Close releases every line.
func (d *Driver) Close() error {
	var first error
	for _, ln := range d.lines {
		if ln.l != nil {
			if err := ln.l.Close(); err != nil && first == nil {
				first = err
			}
			ln.l = nil
		}
	}
	return first
}
