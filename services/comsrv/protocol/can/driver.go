// Package can is comsrv's CAN driver: it listens to a bus (a SocketCAN interface,
// or einride's UDP emulation of one) and decodes the signals of the frames that
// carry the channel's telemetry and signal points — the last frame wins, and a
// point whose frame stops coming turns stale — and sends frames for control and
// adjustment points. Signal layouts come from the channel's mapping CSV or a DBC
// file; both are decoded by config.CANMapping, standard and extended identifiers,
// little- and big-endian, signed and unsigned.
//
// A CAN device pushes its data, so the driver's Poll only checks the link (the
// receive loop's error, the interface state) and the age of every point.
package can

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"go.einride.tech/can"

	"github.com/voltageems/voltage/services/comsrv/protocol"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
)

func init() {
	protocol.Register(config.ProtocolCAN, func(ch *config.Channel, log *slog.Logger) (protocol.Driver, error) {
		return New(ch, log, Dial)
	})
}

// rxPoint is a T or S point decoded from received frames.
type rxPoint struct {
	pt       *config.Point
	m        config.CANMapping
	lastSeen time.Time // guarded by Driver.mu
}

// txFrame is a frame the driver sends for C and A points: it keeps the last data
// sent, so writing one signal leaves the others of the frame as they were.
type txFrame struct {
	key    frameKey
	length uint8
	data   can.Data
}

// Driver is a can channel.
type Driver struct {
	ch     *config.Channel
	params config.CANParams
	log    *slog.Logger
	dial   Dialer

	rx    map[frameKey][]*rxPoint
	rxAll []*rxPoint
	tx    map[*config.Point]config.CANMapping
	txFr  map[frameKey]*txFrame

	bus       Bus
	mu        sync.Mutex // guards lastSeen, linkErr, connected
	linkErr   error
	connected time.Time
	done      chan struct{} // closed when the receive loop has exited
}

// New builds the driver of a can channel with the given transport.
func New(ch *config.Channel, log *slog.Logger, dial Dialer) (*Driver, error) {
	var p config.CANParams
	if err := ch.DecodeParameters(&p); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("parameters: %w", err)
	}
	layouts, err := ResolveMappings(ch, p)
	if err != nil {
		return nil, err
	}
	d := &Driver{ch: ch, params: p, log: log, dial: dial,
		rx: map[frameKey][]*rxPoint{}, tx: map[*config.Point]config.CANMapping{}, txFr: map[frameKey]*txFrame{}}
	for _, t := range point.Types {
		for i := range ch.Points[t] {
			pt := &ch.Points[t][i]
			m := layouts[pt]
			k := keyOf(m)
			if !t.Writable() {
				rp := &rxPoint{pt: pt, m: m}
				d.rx[k] = append(d.rx[k], rp)
				d.rxAll = append(d.rxAll, rp)
				continue
			}
			d.tx[pt] = m
			f := d.txFr[k]
			if f == nil {
				f = &txFrame{key: k}
				d.txFr[k] = f
			}
			f.length = max(f.length, uint8(m.Bytes()))
		}
	}
	for k := range d.txFr {
		if _, both := d.rx[k]; both {
			return nil, fmt.Errorf("frame %s carries both measured (T/S) and commanded (C/A) points; a frame has one sender", k)
		}
	}
	return d, nil
}

// Acquisition implements protocol.Driver.
func (d *Driver) Acquisition() config.Acquisition { return d.params.Acquisition }

// Connect opens the bus and starts the receive loop, which delivers samples to sink
// until Close.
func (d *Driver) Connect(ctx context.Context, sink protocol.Sink) error {
	if d.params.Transport == config.CANTransportSocketCAN {
		if err := interfaceUp(d.params.Interface); err != nil {
			return err
		}
	}
	bus, err := d.dial(ctx, d.params)
	if err != nil {
		return err
	}
	d.bus = bus
	d.mu.Lock()
	d.linkErr, d.connected = nil, time.Now()
	for _, rp := range d.rxAll {
		rp.lastSeen = time.Time{}
	}
	d.mu.Unlock()
	d.done = make(chan struct{})
	go d.receive(bus, sink, d.done)
	return nil
}

// receive decodes frames until the bus fails or is closed.
func (d *Driver) receive(bus Bus, sink protocol.Sink, done chan struct{}) {
	defer close(done)
	for {
		f, err := bus.Receive()
		if err != nil {
			d.mu.Lock()
			d.linkErr = fmt.Errorf("receive: %w", err)
			d.mu.Unlock()
			return
		}
		if f.IsRemote {
			continue
		}
		d.deliver(f, sink)
	}
}

// deliver decodes every point a frame carries.
func (d *Driver) deliver(f can.Frame, sink protocol.Sink) {
	pts := d.rx[frameKey{f.ID, f.IsExtended}]
	if len(pts) == 0 {
		return
	}
	data := f.Data[:min(int(f.Length), len(f.Data))]
	now := time.Now()
	ts := now.UnixMilli()
	for _, rp := range pts {
		phys, err := rp.m.Decode(data)
		if err != nil {
			sink.Fail(rp.pt.Type, rp.pt.ID, point.Invalid, fmt.Errorf("frame %s: %w", keyOf(rp.m), err))
			continue
		}
		d.mu.Lock()
		rp.lastSeen = now
		d.mu.Unlock()
		sink.Sample(rp.pt.Type, point.Sample{ID: rp.pt.ID, Raw: phys, TS: ts, Quality: point.Good,
			Value: point.Engineering(phys, rp.pt.Scale, rp.pt.Offset, rp.pt.Reverse)})
	}
}

// Poll implements protocol.Driver: it reports a broken link, and points whose frame
// has not come within the timeout as stale.
func (d *Driver) Poll(ctx context.Context, sink protocol.Sink) error {
	if d.params.Transport == config.CANTransportSocketCAN {
		if err := interfaceUp(d.params.Interface); err != nil {
			return err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.linkErr != nil {
		return d.linkErr
	}
	now := time.Now()
	timeout := d.params.Timeout()
	for _, rp := range d.rxAll {
		seen := rp.lastSeen
		if seen.IsZero() {
			seen = d.connected
		}
		if now.Sub(seen) > timeout {
			sink.Fail(rp.pt.Type, rp.pt.ID, point.Stale, fmt.Errorf("no frame %s for %s", keyOf(rp.m), now.Sub(seen).Round(time.Millisecond)))
		}
	}
	return nil
}

// Write implements protocol.Driver: it sets the point's signal in its frame and
// sends the frame.
func (d *Driver) Write(ctx context.Context, p *config.Point, v float64) error {
	m, ok := d.tx[p]
	if !ok {
		if cp := d.ch.Point(p.Type, p.ID); cp != nil {
			m, ok = d.tx[cp]
		}
	}
	if !ok {
		return protocol.ErrReadOnly
	}
	f := d.txFr[keyOf(m)]
	data := f.data
	if err := m.Encode(data[:], rawForCommand(p, v)); err != nil {
		return fmt.Errorf("encode frame %s: %w", f.key, err)
	}
	frame := can.Frame{ID: m.ID, IsExtended: m.Extended, Length: f.length, Data: data}
	if err := d.bus.Transmit(ctx, frame); err != nil {
		return fmt.Errorf("send frame %s: %w", f.key, err)
	}
	f.data = data
	return nil
}

// rawForCommand converts a command's engineering value to the signal's physical
// value, honouring on_value/off_value of control points.
func rawForCommand(p *config.Point, v float64) float64 {
	if p.Type == point.Control {
		on := v != 0
		if on && p.OnValue != nil {
			return *p.OnValue
		}
		if !on && p.OffValue != nil {
			return *p.OffValue
		}
	}
	return point.RawFromEngineering(v, p.Scale, p.Offset, p.Reverse)
}

// Close implements protocol.Driver.
func (d *Driver) Close() error {
	if d.bus == nil {
		return nil
	}
	err := d.bus.Close()
	<-d.done
	d.bus = nil
	return err
}

// interfaceUp reports an interface that is missing or administratively down (the
// state a SocketCAN interface is in after bus-off without automatic restart).
func interfaceUp(name string) error {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return fmt.Errorf("CAN interface %s: %w", name, err)
	}
	if ifi.Flags&net.FlagUp == 0 {
		return fmt.Errorf("CAN interface %s is down (ip link set %s up type can bitrate N)", name, name)
	}
	return nil
}
