package can

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"go.einride.tech/can"
	"go.einride.tech/can/pkg/socketcan"

	"github.com/voltageems/voltage/shared/config"
)

// Bus is a connection to a CAN bus: the only thing the driver needs from a
// transport. The SocketCAN socket and einride's UDP multicast emulation both
// implement it through the same code (socketcan.Dial with network "can" or "udp"),
// and tests may substitute their own.
type Bus interface {
	// Receive blocks until a data frame arrives. An error means the link is broken
	// (closed socket, interface down, controller bus-off).
	Receive() (can.Frame, error)
	// Transmit sends one frame.
	Transmit(ctx context.Context, f can.Frame) error
	// Close releases the connection and makes a blocked Receive return.
	Close() error
}

// Dialer opens the bus of a channel.
type Dialer func(ctx context.Context, p config.CANParams) (Bus, error)

// ErrBusOff is returned by Receive when the controller reports bus-off: it stopped
// taking part in the bus after too many errors and needs a restart.
var ErrBusOff = errors.New("CAN controller is bus-off")

// Dial opens a SocketCAN interface or the UDP emulation, as the parameters say.
func Dial(ctx context.Context, p config.CANParams) (Bus, error) {
	var (
		conn net.Conn
		err  error
	)
	switch p.Transport {
	case config.CANTransportUDP:
		conn, err = socketcan.DialContext(ctx, "udp", p.Address)
	default:
		conn, err = socketcan.DialContext(ctx, "can", p.Interface, socketcan.WithReceiveErrorFrames())
	}
	if err != nil {
		return nil, fmt.Errorf("open CAN %s: %w", target(p), err)
	}
	return &socketBus{conn: conn, rx: socketcan.NewReceiver(conn), tx: socketcan.NewTransmitter(conn)}, nil
}

func target(p config.CANParams) string {
	if p.Transport == config.CANTransportUDP {
		return "emulated bus " + p.Address
	}
	return "interface " + p.Interface
}

type socketBus struct {
	conn net.Conn
	rx   *socketcan.Receiver
	tx   *socketcan.Transmitter
}

func (b *socketBus) Receive() (can.Frame, error) {
	for b.rx.Receive() {
		if b.rx.HasErrorFrame() {
			ef := b.rx.ErrorFrame()
			if ef.ErrorClass&socketcan.ErrorClassBusOff != 0 {
				return can.Frame{}, ErrBusOff
			}
			continue // other error frames (lost arbitration, no ack...) do not break the link
		}
		return b.rx.Frame(), nil
	}
	if err := b.rx.Err(); err != nil {
		return can.Frame{}, err
	}
	return can.Frame{}, io.EOF
}

func (b *socketBus) Transmit(ctx context.Context, f can.Frame) error {
	return b.tx.TransmitFrame(ctx, f)
}

func (b *socketBus) Close() error { return b.conn.Close() }
