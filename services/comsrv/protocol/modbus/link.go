// The link is what carries a channel's Modbus frames: a TCP connection (MBAP
// framing), a local serial port (RTU framing) or a TCP connection to a serial
// server (RTU framing, no MBAP header). (The package comment is in driver.go.)

package modbus

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"
	"unsafe"

	mb "github.com/simonvetter/modbus"
	"golang.org/x/sys/unix"

	"github.com/voltageems/voltage/services/comsrv/protocol"
	"github.com/voltageems/voltage/shared/config"
)

// link describes how the client reaches the devices and the timing the line needs.
type link struct {
	url    string // the client's URL: tcp://, rtu:// or rtuovertcp://
	target string // for messages: host:port or the serial device
	serial struct{ Speed, DataBits, Parity, StopBits uint }

	rtu        bool          // RTU framing: broadcasts are not answered
	frameDelay time.Duration // extra silence before each request
	turnaround time.Duration // silence after a broadcast
	prepare    func() error  // run before each open (the RS-485 mode of a serial port)

}

// beforeRequest waits the extra inter-frame delay of the line, if it has one.
func (l *link) beforeRequest(ctx context.Context) error {
	if l.frameDelay <= 0 {
		return nil
	}
	return pause(ctx, l.frameDelay)
}

// NewRTU builds the driver for a modbus_rtu channel (a local serial port).
func NewRTU(ch *config.Channel, log *slog.Logger) (protocol.Driver, error) {
	var p config.ModbusRTUParams
	if err := ch.DecodeParameters(&p); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("parameters: %w", err)
	}
	l := link{url: "rtu://" + p.Device, target: p.Device, rtu: true,
		frameDelay: p.FrameDelay(), turnaround: p.Turnaround()}
	l.serial.Speed, l.serial.DataBits, l.serial.StopBits = uint(p.BaudRate), uint(p.DataBits), uint(p.StopBits)
	switch p.Parity {
	case "none":
		l.serial.Parity = mb.PARITY_NONE
	case "odd":
		l.serial.Parity = mb.PARITY_ODD
	default:
		l.serial.Parity = mb.PARITY_EVEN
	}
	if p.RS485.Enabled {
		rs := p.RS485
		l.prepare = func() error { return setRS485(p.Device, rs) }
	}
	return newDriver(ch, log, p.Acquisition, p.ModbusLinkParams, l)
}

// NewRTUOverTCP builds the driver for a modbus_rtu_over_tcp channel (a serial
// server that passes RTU frames between a TCP connection and its serial line).
func NewRTUOverTCP(ch *config.Channel, log *slog.Logger) (protocol.Driver, error) {
	var p config.ModbusRTUOverTCPParams
	if err := ch.DecodeParameters(&p); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("parameters: %w", err)
	}
	addr := net.JoinHostPort(p.Host, strconv.Itoa(p.Port))
	return newDriver(ch, log, p.Acquisition, p.ModbusLinkParams, link{
		url: "rtuovertcp://" + addr, target: addr, rtu: true,
		frameDelay: p.FrameDelay(), turnaround: p.Turnaround(),
	})
}

// Flags of struct serial_rs485 (linux/serial.h).
const (
	serRS485Enabled      = 1 << 0
	serRS485RTSOnSend    = 1 << 1
	serRS485RTSAfterSend = 1 << 2
	serRS485RxDuringTx   = 1 << 4
)

// serialRS485 is struct serial_rs485 of linux/serial.h.
type serialRS485 struct {
	Flags              uint32
	DelayRTSBeforeSend uint32 // ms
	DelayRTSAfterSend  uint32 // ms
	Padding            [5]uint32
}

// setRS485 switches the kernel RS-485 mode of a serial port on. The setting stays
// with the port after the descriptor used to set it is closed.
func setRS485(device string, p config.RS485Params) error {
	f, err := os.OpenFile(device, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("open %s to set RS-485 mode: %w", device, err)
	}
	defer f.Close()
	cfg := serialRS485{Flags: serRS485Enabled,
		DelayRTSBeforeSend: uint32(p.DelayRTSBeforeSendMS), DelayRTSAfterSend: uint32(p.DelayRTSAfterSendMS)}
	if p.RTSOnSend == nil || *p.RTSOnSend {
		cfg.Flags |= serRS485RTSOnSend
	}
	if p.RTSAfterSend {
		cfg.Flags |= serRS485RTSAfterSend
	}
	if p.RxDuringTx {
		cfg.Flags |= serRS485RxDuringTx
	}
	raw, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("set RS-485 mode on %s: %w", device, err)
	}
	var errno unix.Errno
	if cerr := raw.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, unix.TIOCSRS485, uintptr(unsafe.Pointer(&cfg)))
	}); cerr != nil {
		return fmt.Errorf("set RS-485 mode on %s: %w", device, cerr)
	}
	if errno != 0 {
		return fmt.Errorf("set RS-485 mode on %s (TIOCSRS485; the port's driver may not support RS-485, or the converter switches by itself: set rs485.enabled false): %w", device, errno)
	}
	return nil
}
