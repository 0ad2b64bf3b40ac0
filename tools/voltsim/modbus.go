package voltsim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/tools/voltsim/modbusserver"
)

func init() { registerProtocol(config.ProtocolModbusTCP, newModbusTCP) }

// modbusDevice is a simulated Modbus TCP device (or a gateway with several slaves
// behind one address, or a serial bus with several slaves): the register image
// behind its own server.
type modbusDevice struct {
	img     *modbusImage
	srv     *modbusserver.Server
	env     endpointEnv
	channel uint32
	// serial is set for a modbus_rtu channel: the pseudo-terminal the server
	// serves on and the link at the channel's device path.
	serial *serialPort

	// writeMu serialises "apply a write, then tell the Sim" so that two clients
	// writing the same point reach the Sim in the order they reached the image.
	writeMu sync.Mutex
}

// newModbusTCP builds the register image from the channel's mapping and binds the
// channel's address (or the override).
func newModbusTCP(ch *config.Channel, env endpointEnv) (endpoint, error) {
	var params config.ModbusTCPParams
	if err := ch.DecodeParameters(&params); err != nil {
		return nil, err
	}
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("parameters: %w", err)
	}
	img, err := newModbusImage(ch, params.AddressBase)
	if err != nil {
		return nil, err
	}
	addr := env.Listen
	if addr == "" {
		addr = net.JoinHostPort(params.Host, strconv.Itoa(params.Port))
	}
	d := &modbusDevice{img: img, env: env, channel: ch.ID}
	srv, err := modbusserver.Listen(addr, d, d.serverOptions())
	if err != nil {
		return nil, fmt.Errorf("%w (the simulator serves on the channel's host:port; use a listen override to bind elsewhere)", err)
	}
	d.srv = srv
	return d, nil
}

func (d *modbusDevice) serverOptions() modbusserver.Options {
	return modbusserver.Options{
		Logger: d.env.Logger,
		OnRequest: func(r modbusserver.Request) {
			if d.env.OnRequest != nil {
				d.env.OnRequest(RequestLog{Slave: r.Unit, Function: r.Function, Address: r.Address, Count: r.Quantity})
			}
		},
	}
}

func (d *modbusDevice) Addr() string {
	if d.serial != nil {
		return d.serial.path
	}
	return d.srv.Addr().String()
}

func (d *modbusDevice) Serve(ctx context.Context) error {
	if d.serial != nil {
		defer d.serial.close()
		return d.srv.ServeStream(ctx, d.serial.pty.Master)
	}
	return d.srv.Serve(ctx)
}

func (d *modbusDevice) Close() error {
	if d.serial != nil {
		return errors.Join(d.srv.Close(), d.serial.close())
	}
	return d.srv.Close()
}

func (d *modbusDevice) Set(k pointKey, v float64) error { return d.img.set(k, v) }

func (d *modbusDevice) SetFault(f Fault) error {
	return d.srv.SetFault(modbusserver.Fault{
		Mode: modbusserver.FaultMode(f.Mode), Unit: f.Slave,
		Exception: modbusserver.Exception(f.ExceptionCode), Delay: f.Delay,
	})
}

func (d *modbusDevice) Faults() []Fault {
	var out []Fault
	for _, f := range d.srv.Faults() {
		out = append(out, Fault{Mode: FaultMode(f.Mode), Slave: f.Unit, ExceptionCode: uint8(f.Exception), Delay: f.Delay})
	}
	return out
}

// ReadBits and ReadRegisters serve reads straight from the image.
func (d *modbusDevice) ReadBits(unit uint8, a modbusserver.Area, addr, qty uint16) ([]bool, error) {
	return d.img.ReadBits(unit, a, addr, qty)
}

func (d *modbusDevice) ReadRegisters(unit uint8, a modbusserver.Area, addr, qty uint16) ([]uint16, error) {
	return d.img.ReadRegisters(unit, a, addr, qty)
}

// WriteBits and WriteRegisters apply a write and report the points it touched.
// Points of any type may be written (real devices rarely protect measurement
// registers); every point overlapping the written range is reported, including
// the other bit points of a register written as a whole.
func (d *modbusDevice) WriteBits(unit uint8, addr uint16, values []bool) error {
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	w, errs, err := d.img.writeBits(unit, addr, values)
	return d.notify(w, errs, err)
}

func (d *modbusDevice) WriteRegisters(unit uint8, addr uint16, values []uint16) error {
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	w, errs, err := d.img.writeRegisters(unit, addr, values)
	return d.notify(w, errs, err)
}

func (d *modbusDevice) notify(w []deviceWrite, decodeErrs []error, err error) error {
	if err != nil {
		return err
	}
	for _, e := range decodeErrs {
		// The registers hold what the client sent; only the point's value cannot follow.
		d.env.Logger.Warn("written registers do not decode", "channel", d.channel, "err", e)
	}
	if len(w) > 0 && d.env.OnWrite != nil {
		d.env.OnWrite(w)
	}
	return nil
}
