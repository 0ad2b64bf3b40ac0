// Package virtual is a channel without a device: control and adjustment points hold
// what commands write, and generators produce telemetry and signals. It serves
// tests, demos and inputs that other services calculate.
package virtual

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"github.com/voltageems/voltage/services/comsrv/protocol"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
)

func init() {
	protocol.Register(config.ProtocolVirtual, New)
}

type generator struct {
	config.Generator
	t point.Type
}

// Driver is a virtual channel.
type Driver struct {
	ch      *config.Channel
	params  config.VirtualParams
	gens    []generator
	written map[point.Type]map[point.ID]float64
	start   time.Time
	rng     *rand.Rand
}

// New builds a virtual channel, checking every generator names a T or S point of
// the channel and a known kind.
func New(ch *config.Channel, _ *slog.Logger) (protocol.Driver, error) {
	d := &Driver{ch: ch, written: map[point.Type]map[point.ID]float64{point.Control: {}, point.Adjustment: {}},
		rng: rand.New(rand.NewPCG(uint64(ch.ID), 1))}
	if err := ch.DecodeParameters(&d.params); err != nil {
		return nil, err
	}
	if err := d.params.Validate(); err != nil {
		return nil, fmt.Errorf("parameters: %w", err)
	}
	for i, g := range d.params.Generators {
		t, err := point.ParseType(g.Type)
		if err != nil {
			return nil, fmt.Errorf("generators[%d]: %w", i, err)
		}
		if t.Writable() {
			return nil, fmt.Errorf("generators[%d]: %s points are set by commands, not generators", i, t.Name())
		}
		if ch.Point(t, g.Point) == nil {
			return nil, fmt.Errorf("generators[%d]: channel has no %s point %d", i, t.Name(), g.Point)
		}
		switch g.Kind {
		case "constant":
		case "sine", "ramp", "square", "random":
			if g.Kind != "random" && g.PeriodMS <= 0 {
				return nil, fmt.Errorf("generators[%d]: kind %s needs period_ms > 0", i, g.Kind)
			}
		default:
			return nil, fmt.Errorf("generators[%d]: unknown kind %q (want constant, sine, ramp, square or random)", i, g.Kind)
		}
		d.gens = append(d.gens, generator{Generator: g, t: t})
	}
	return d, nil
}

// Acquisition implements protocol.Driver.
func (d *Driver) Acquisition() config.Acquisition { return d.params.Acquisition }

// Connect implements protocol.Driver; a virtual link is always up.
func (d *Driver) Connect(context.Context, protocol.Sink) error {
	if d.start.IsZero() {
		d.start = time.Now()
	}
	return nil
}

// Close implements protocol.Driver.
func (d *Driver) Close() error { return nil }

// Poll implements protocol.Driver.
func (d *Driver) Poll(ctx context.Context, sink protocol.Sink) error {
	ts := protocol.PollTime(ctx)
	now := time.UnixMilli(ts)
	elapsed := float64(now.Sub(d.start).Milliseconds())
	for _, g := range d.gens {
		v := d.value(g, elapsed)
		if g.t == point.Signal {
			v = math.Round(v)
		}
		sink.Sample(g.t, point.Sample{ID: g.Point, Value: v, Raw: v, TS: ts, Quality: point.Good})
	}
	for t, vals := range d.written {
		for id, v := range vals {
			sink.Sample(t, point.Sample{ID: id, Value: v, Raw: v, TS: ts, Quality: point.Good})
		}
	}
	return nil
}

func (d *Driver) value(g generator, elapsedMS float64) float64 {
	phase := 0.0
	if g.PeriodMS > 0 {
		phase = math.Mod(elapsedMS, float64(g.PeriodMS)) / float64(g.PeriodMS)
	}
	switch g.Kind {
	case "sine":
		return g.Value + g.Amplitude*math.Sin(2*math.Pi*phase)
	case "ramp":
		return g.Value + g.Amplitude*phase
	case "square":
		if phase < 0.5 {
			return g.Value
		}
		return g.Value + g.Amplitude
	case "random":
		return g.Value + g.Amplitude*(2*d.rng.Float64()-1)
	}
	return g.Value
}

// Write implements protocol.Driver: the value is held and reported by the next poll.
func (d *Driver) Write(_ context.Context, p *config.Point, v float64) error {
	vals, ok := d.written[p.Type]
	if !ok {
		return protocol.ErrReadOnly
	}
	vals[p.ID] = v
	return nil
}
