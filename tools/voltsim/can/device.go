// Package can simulates the devices of a can channel on a bus — in tests and the
// dev stack, einride's UDP multicast emulation of one; on a machine with SocketCAN,
// a real or virtual interface. It sends the frames that carry the channel's
// telemetry and signal points periodically (and at once when a value changes), and
// takes the frames that carry its control and adjustment points as writes.
package can

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

	"go.einride.tech/can"
	"go.einride.tech/can/pkg/socketcan"

	comsrvcan "github.com/voltageems/voltage/services/comsrv/protocol/can"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
)

// Write is a point a received frame set.
type Write struct {
	Type  point.Type
	ID    point.ID
	Value float64 // engineering value
}

// Options tune a Device.
type Options struct {
	// Period is how often every frame is sent. Default: half the channel's poll interval.
	Period time.Duration
	Logger *slog.Logger
	// OnWrite receives the points of every control/adjustment frame received. It
	// is called from the receive goroutine with no Device lock held.
	OnWrite func([]Write)
}

type signal struct {
	pt *config.Point
	m  config.CANMapping
}

type frameKey struct {
	id       uint32
	extended bool
}

// txFrame is a frame the device sends: the data of its signals.
type txFrame struct {
	key    frameKey
	length uint8
	data   can.Data
}

// Device is the simulated devices of one can channel.
type Device struct {
	params config.CANParams
	opts   Options
	log    *slog.Logger

	signals map[pointKey]signal
	rx      map[frameKey][]signal // C/A frames the device takes

	mu     sync.Mutex
	tx     map[frameKey]*txFrame
	order  []*txFrame
	silent bool
	conn   net.Conn
	kick   chan struct{} // a value changed: send now
}

type pointKey struct {
	t  point.Type
	id point.ID
}

// New prepares the device of a can channel and opens the bus.
func New(ctx context.Context, ch *config.Channel, opts Options) (*Device, error) {
	var p config.CANParams
	if err := ch.DecodeParameters(&p); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("parameters: %w", err)
	}
	if opts.Period <= 0 {
		opts.Period = max(p.PollInterval()/2, 20*time.Millisecond)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Device{params: p, opts: opts, log: opts.Logger, signals: map[pointKey]signal{},
		rx: map[frameKey][]signal{}, tx: map[frameKey]*txFrame{}, kick: make(chan struct{}, 1)}
	// The same resolution as comsrv's driver: mapping rows, DBC signals by row or by signal_name.
	layouts, err := comsrvcan.ResolveMappings(ch, p)
	if err != nil {
		return nil, err
	}
	for _, t := range point.Types {
		for i := range ch.Points[t] {
			pt := &ch.Points[t][i]
			s := signal{pt: pt, m: layouts[pt]}
			k := frameKey{s.m.ID, s.m.Extended}
			d.signals[pointKey{t, pt.ID}] = s
			if t.Writable() {
				d.rx[k] = append(d.rx[k], s)
				continue
			}
			f := d.tx[k]
			if f == nil {
				f = &txFrame{key: k}
				d.tx[k] = f
				d.order = append(d.order, f)
			}
			f.length = max(f.length, uint8(s.m.Bytes()))
		}
	}
	sort.Slice(d.order, func(i, j int) bool { return d.order[i].key.id < d.order[j].key.id })
	network, addr := "can", p.Interface
	if p.Transport == config.CANTransportUDP {
		network, addr = "udp", p.Address
	}
	conn, err := socketcan.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("open CAN %s %s: %w", network, addr, err)
	}
	d.conn = conn
	return d, nil
}

// Addr is the bus: the interface name or the multicast group.
func (d *Device) Addr() string {
	if d.params.Transport == config.CANTransportUDP {
		return d.params.Address
	}
	return d.params.Interface
}

// Set puts the engineering value v of a point into its frame (T/S) or, for a C/A
// point, records nothing: those are set by the frames the device receives.
func (d *Device) Set(t point.Type, id point.ID, v float64) error {
	s, ok := d.signals[pointKey{t, id}]
	if !ok {
		return fmt.Errorf("no CAN point %s%d", t, id)
	}
	if t.Writable() {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	f := d.tx[frameKey{s.m.ID, s.m.Extended}]
	if err := s.m.Encode(f.data[:], point.RawFromEngineering(v, s.pt.Scale, s.pt.Offset, s.pt.Reverse)); err != nil {
		return fmt.Errorf("%s point %d: %w", t.Name(), id, err)
	}
	select {
	case d.kick <- struct{}{}:
	default:
	}
	return nil
}

// SetSilent stops (or resumes) sending, as a device that lost power would.
func (d *Device) SetSilent(silent bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.silent = silent
}

// Silent reports whether the device is silenced.
func (d *Device) Silent() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.silent
}

// Serve sends frames and takes writes until ctx is done, then closes the bus.
func (d *Device) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		<-ctx.Done()
		_ = d.conn.Close() // ends the receive loop
	})
	wg.Go(func() { d.receive(ctx) })
	tx := socketcan.NewTransmitter(d.conn)
	t := time.NewTicker(d.opts.Period)
	defer t.Stop()
	var err error
	for err == nil {
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-d.kick:
		}
		if ctx.Err() != nil {
			break
		}
		err = d.sendAll(ctx, tx)
	}
	cancel()
	wg.Wait()
	if ctx.Err() != nil && errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (d *Device) sendAll(ctx context.Context, tx *socketcan.Transmitter) error {
	d.mu.Lock()
	if d.silent {
		d.mu.Unlock()
		return nil
	}
	frames := make([]can.Frame, len(d.order))
	for i, f := range d.order {
		frames[i] = can.Frame{ID: f.key.id, IsExtended: f.key.extended, Length: f.length, Data: f.data}
	}
	d.mu.Unlock()
	for _, f := range frames {
		if err := tx.TransmitFrame(ctx, f); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("send frame 0x%X: %w", f.ID, err)
		}
	}
	return nil
}

func (d *Device) receive(ctx context.Context) {
	rx := socketcan.NewReceiver(d.conn)
	for rx.Receive() {
		if rx.HasErrorFrame() {
			continue
		}
		f := rx.Frame()
		sigs := d.rx[frameKey{f.ID, f.IsExtended}]
		if len(sigs) == 0 || d.Silent() {
			continue // our own frames come back on the emulated bus; a silenced device hears nothing
		}
		var ws []Write
		for _, s := range sigs {
			phys, err := s.m.Decode(f.Data[:min(int(f.Length), 8)])
			if err != nil {
				d.log.Warn("CAN frame does not decode", "id", f.ID, "point", s.pt.ID, "err", err)
				continue
			}
			ws = append(ws, Write{Type: s.pt.Type, ID: s.pt.ID, Value: point.Engineering(phys, s.pt.Scale, s.pt.Offset, s.pt.Reverse)})
		}
		if len(ws) > 0 && d.opts.OnWrite != nil {
			d.opts.OnWrite(ws)
		}
	}
	if err := rx.Err(); err != nil && ctx.Err() == nil {
		d.log.Warn("CAN receive stopped", "err", err)
	}
}

// Close releases the bus when Serve was never called.
func (d *Device) Close() error {
	err := d.conn.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
