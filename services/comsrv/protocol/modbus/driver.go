// Package modbus is comsrv's Modbus driver for modbus_tcp, modbus_rtu (a serial
// line) and modbus_rtu_over_tcp (a serial server): it plans block reads over a
// channel's mapped points, decodes every data type and byte order of DESIGN §3,
// backs off slaves that stop answering without stalling the others on the link,
// and executes writes with function codes 5, 6, 15 and 16. Whatever carries the
// frames, one channel is one link and the runner's single goroutine sends one
// request at a time, so several slaves on one RS-485 bus never talk at once.
package modbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	mb "github.com/simonvetter/modbus"

	"github.com/voltageems/voltage/services/comsrv/protocol"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/modbusmap"
	"github.com/voltageems/voltage/shared/point"
)

func init() {
	protocol.Register(config.ProtocolModbusTCP, NewTCP)
	protocol.Register(config.ProtocolModbusRTU, NewRTU)
	protocol.Register(config.ProtocolModbusRTUOverTCP, NewRTUOverTCP)
}

// Driver is a Modbus channel.
type Driver struct {
	ch       *config.Channel
	acq      config.Acquisition
	params   config.ModbusLinkParams
	link     link
	log      *slog.Logger
	requests []Request
	points   map[PointKey]*config.Point
	slaves   map[uint8]*slaveState

	client *mb.ModbusClient
	// requestErrors counts requests that failed while the link stayed up
	// (timeouts, CRC errors, exceptions) since the runner last took them.
	requestErrors atomic.Int64
}

// slaveState is the backoff of one slave (unit id) on the link.
type slaveState struct {
	failures  int
	nextTry   time.Time
	lastError error
}

const maxSlaveBackoff = 30 * time.Second

// NewTCP builds the driver for a modbus_tcp channel, validating its parameters and
// planning its block reads.
func NewTCP(ch *config.Channel, log *slog.Logger) (protocol.Driver, error) {
	var p config.ModbusTCPParams
	if err := ch.DecodeParameters(&p); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("parameters: %w", err)
	}
	addr := net.JoinHostPort(p.Host, strconv.Itoa(p.Port))
	return newDriver(ch, log, p.Acquisition, p.Link(), link{url: "tcp://" + addr, target: addr})
}

func newDriver(ch *config.Channel, log *slog.Logger, acq config.Acquisition, p config.ModbusLinkParams, l link) (*Driver, error) {
	d := &Driver{ch: ch, acq: acq, params: p, link: l, log: log, points: map[PointKey]*config.Point{}, slaves: map[uint8]*slaveState{}}
	var plan []PlanPoint
	for _, t := range point.Types {
		for i := range ch.Points[t] {
			pt := &ch.Points[t][i]
			m := pt.Modbus
			if m == nil {
				return nil, fmt.Errorf("%s point %d has no Modbus mapping", t.Name(), pt.ID)
			}
			addr := int(m.Register) - p.AddressBase
			if addr < 0 {
				return nil, fmt.Errorf("%s point %d: register %d is below address_base %d", t.Name(), pt.ID, m.Register, p.AddressBase)
			}
			width := uint16(1)
			if m.FunctionCode == 3 || m.FunctionCode == 4 {
				width = uint16(m.DataType.Registers())
			}
			key := PointKey{Type: t, ID: pt.ID}
			d.points[key] = pt
			d.slaves[m.SlaveID] = &slaveState{}
			plan = append(plan, PlanPoint{Key: key, Slave: m.SlaveID, Function: m.FunctionCode, Address: uint16(addr), Registers: width})
		}
	}
	gap := *p.MaxGap
	if gap == 0 {
		gap = -1 // the planner reads 0 as "default"; here the user asked for no gap
	}
	reqs, err := Plan(plan, PlanOptions{MaxGap: gap, MaxRegisters: p.MaxRegisters, MaxBits: p.MaxBits, PerPoint: p.PerPointRequests})
	if err != nil {
		return nil, fmt.Errorf("plan block reads: %w", err)
	}
	d.requests = reqs
	return d, nil
}

// Requests is the read plan (one entry per request of a poll).
func (d *Driver) Requests() []Request { return d.requests }

// Acquisition implements protocol.Driver.
func (d *Driver) Acquisition() config.Acquisition { return d.acq }

// RequestErrors returns how many requests failed since the last call (timeouts,
// CRC errors, exceptions) without the link going down. The runner adds them to the
// channel's error count.
func (d *Driver) RequestErrors() int64 { return d.requestErrors.Swap(0) }

// Connect implements protocol.Driver.
func (d *Driver) Connect(ctx context.Context, _ protocol.Sink) error {
	if d.link.prepare != nil {
		if err := d.link.prepare(); err != nil {
			return err
		}
	}
	client, err := mb.NewClient(&mb.ClientConfiguration{
		URL:     d.link.url,
		Timeout: d.params.Timeout(),
		Speed:   d.link.serial.Speed, DataBits: d.link.serial.DataBits,
		Parity: d.link.serial.Parity, StopBits: d.link.serial.StopBits,
		Logger: slog.NewLogLogger(d.log.Handler(), slog.LevelDebug),
	})
	if err != nil {
		return fmt.Errorf("modbus client for %s: %w", d.link.target, err)
	}
	if err := client.Open(); err != nil {
		return fmt.Errorf("connect to %s: %w", d.link.target, err)
	}
	d.client = client
	return nil
}

// Close implements protocol.Driver.
func (d *Driver) Close() error {
	if d.client == nil {
		return nil
	}
	err := d.client.Close()
	d.client = nil
	return err
}

// Poll implements protocol.Driver: it runs every planned request once. Requests to a
// backed-off slave are skipped and their points reported comm_lost. If no request
// got an answer, the link is considered broken.
func (d *Driver) Poll(ctx context.Context, sink protocol.Sink) error {
	now := time.Now()
	answered, attempted := 0, 0
	var lastErr error
	for i := range d.requests {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r := &d.requests[i]
		st := d.slaves[r.Slave]
		if now.Before(st.nextTry) {
			d.failPoints(sink, r, point.CommLost, st.lastError)
			continue
		}
		if attempted > 0 && d.params.RequestPauseMS > 0 {
			if err := pause(ctx, time.Duration(d.params.RequestPauseMS)*time.Millisecond); err != nil {
				return err
			}
		}
		attempted++
		if err := d.link.beforeRequest(ctx); err != nil {
			return err
		}
		regs, bits, err := d.read(r)
		switch {
		case err == nil:
			answered++
			st.failures, st.nextTry, st.lastError = 0, time.Time{}, nil
			d.deliver(sink, r, regs, bits, protocol.PollTime(ctx))
		case isLinkError(err):
			return fmt.Errorf("slave %d fc %d address %d: %w", r.Slave, r.Function, r.Address, err)
		default:
			d.requestErrors.Add(1)
			lastErr = fmt.Errorf("slave %d fc %d address %d count %d: %w", r.Slave, r.Function, r.Address, r.Count, err)
			d.backOff(r.Slave, lastErr)
			d.failPoints(sink, r, point.CommLost, lastErr)
		}
	}
	if attempted > 0 && answered == 0 {
		return fmt.Errorf("no slave answered: %w", lastErr)
	}
	return nil
}

func (d *Driver) backOff(slave uint8, err error) {
	st := d.slaves[slave]
	st.failures++
	st.lastError = err
	wait := d.acq.PollInterval()
	if d.params.SlaveBackoffMS > 0 {
		wait = time.Duration(d.params.SlaveBackoffMS) * time.Millisecond
	}
	for i := 1; i < st.failures && wait < maxSlaveBackoff; i++ {
		wait *= 2
	}
	st.nextTry = time.Now().Add(min(wait, maxSlaveBackoff))
	d.log.Warn("slave backed off", "slave", slave, "failures", st.failures, "retry_in", min(wait, maxSlaveBackoff), "err", err)
}

func (d *Driver) read(r *Request) (regs []uint16, bits []bool, err error) {
	if err := d.client.SetUnitId(r.Slave); err != nil {
		return nil, nil, err
	}
	switch r.Function {
	case 1:
		bits, err = d.client.ReadCoils(r.Address, r.Count)
	case 2:
		bits, err = d.client.ReadDiscreteInputs(r.Address, r.Count)
	case 3:
		regs, err = d.client.ReadRegisters(r.Address, r.Count, mb.HOLDING_REGISTER)
	case 4:
		regs, err = d.client.ReadRegisters(r.Address, r.Count, mb.INPUT_REGISTER)
	default:
		err = fmt.Errorf("function code %d cannot read", r.Function)
	}
	return regs, bits, err
}

// deliver decodes every point of a request from its response.
func (d *Driver) deliver(sink protocol.Sink, r *Request, regs []uint16, bits []bool, ts int64) {
	for _, pp := range r.Points {
		pt := d.points[pp.Key]
		m := pt.Modbus
		off := r.Offset(pp)
		var raw float64
		switch {
		case bits != nil:
			if off >= len(bits) {
				sink.Fail(pp.Key.Type, pt.ID, point.Invalid, fmt.Errorf("response has %d bits, point needs bit %d", len(bits), off))
				continue
			}
			if bits[off] {
				raw = 1
			}
		case m.DataType == modbusmap.Bool && m.Bit >= 0:
			if off >= len(regs) {
				sink.Fail(pp.Key.Type, pt.ID, point.Invalid, fmt.Errorf("response has %d registers, point needs register %d", len(regs), off))
				continue
			}
			raw = modbusmap.DecodeBit(regs[off], m.Bit)
		default:
			n := m.DataType.Registers()
			if off+n > len(regs) {
				sink.Fail(pp.Key.Type, pt.ID, point.Invalid, fmt.Errorf("response has %d registers, point needs %d at offset %d", len(regs), n, off))
				continue
			}
			v, err := modbusmap.Decode(regs[off:off+n], m.DataType, m.ByteOrder)
			if err != nil {
				sink.Fail(pp.Key.Type, pt.ID, point.Invalid, err)
				continue
			}
			raw = v
		}
		sink.Sample(pp.Key.Type, point.Sample{
			ID: pt.ID, Raw: raw, TS: ts, Quality: point.Good,
			Value: point.Engineering(raw, pt.Scale, pt.Offset, pt.Reverse),
		})
	}
}

func (d *Driver) failPoints(sink protocol.Sink, r *Request, q point.Quality, reason error) {
	for _, pp := range r.Points {
		sink.Fail(pp.Key.Type, pp.Key.ID, q, reason)
	}
}

// Write implements protocol.Driver.
func (d *Driver) Write(ctx context.Context, p *config.Point, v float64) error {
	m := p.Modbus
	if m == nil || !p.Type.Writable() {
		return protocol.ErrReadOnly
	}
	if err := d.client.SetUnitId(m.SlaveID); err != nil {
		return err
	}
	addr := uint16(int(m.Register) - d.params.AddressBase)
	raw := rawForCommand(p, v)
	if err := d.write(ctx, m, addr, raw); err != nil {
		return err
	}
	if p.ControlType == "pulse" && p.PulseDurationMS > 0 && v != 0 {
		if err := pause(ctx, time.Duration(p.PulseDurationMS)*time.Millisecond); err != nil {
			return fmt.Errorf("pulse interrupted before the off write: %w", err)
		}
		return d.write(ctx, m, addr, rawForCommand(p, 0))
	}
	return nil
}

// write sends one write with the link's timing. A broadcast (slave 0) gets no
// answer: the timeout the client reports is its normal outcome, and the bus is
// left quiet for the turnaround delay so every slave can act on it.
func (d *Driver) write(ctx context.Context, m *config.ModbusMapping, addr uint16, raw float64) error {
	if err := d.link.beforeRequest(ctx); err != nil {
		return err
	}
	err := d.writeRaw(m, addr, raw)
	if m.SlaveID == 0 && d.link.rtu {
		if errors.Is(err, mb.ErrRequestTimedOut) {
			err = nil
		}
		if perr := pause(ctx, d.link.turnaround); perr != nil {
			return perr
		}
	}
	if err != nil && !isLinkError(err) {
		d.requestErrors.Add(1)
	}
	return err
}

// rawForCommand converts a command's engineering value to the raw device value,
// honouring on_value/off_value of control points.
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

// writeRaw writes a raw value with the function code the mapping names, or the
// natural one: 5 for a coil, 6 for one register, 16 for more.
func (d *Driver) writeRaw(m *config.ModbusMapping, addr uint16, raw float64) error {
	switch m.FunctionCode {
	case 1:
		if m.WriteFunctionCode == 15 {
			return d.client.WriteCoils(addr, []bool{raw != 0})
		}
		return d.client.WriteCoil(addr, raw != 0)
	case 3:
		var regs []uint16
		if m.DataType == modbusmap.Bool && m.Bit >= 0 {
			// A bit inside a holding register: read, change the bit, write back.
			cur, err := d.client.ReadRegister(addr, mb.HOLDING_REGISTER)
			if err != nil {
				return fmt.Errorf("read register %d before setting bit %d: %w", addr, m.Bit, err)
			}
			regs = []uint16{modbusmap.EncodeBit(cur, m.Bit, raw != 0)}
		} else {
			var err error
			if regs, err = modbusmap.Encode(raw, m.DataType, m.ByteOrder); err != nil {
				return err
			}
		}
		if len(regs) == 1 && m.WriteFunctionCode != 16 {
			return d.client.WriteRegister(addr, regs[0])
		}
		return d.client.WriteRegisters(addr, regs)
	}
	return protocol.ErrReadOnly
}

// isLinkError tells a broken connection (reconnect) from a device-level failure
// (timeout or exception: back the slave off, keep the link).
func isLinkError(err error) bool {
	var me mb.Error
	if errors.As(err, &me) {
		return false // exceptions, timeouts and framing errors are per request
	}
	return true
}

func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
