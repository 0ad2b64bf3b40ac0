package config

import (
	"fmt"
	"net"
	"slices"
	"time"
)

// CAN transports a can channel may use.
const (
	CANTransportSocketCAN = "socketcan" // a Linux SocketCAN interface (can0, vcan0)
	CANTransportUDP       = "udp"       // einride's UDP multicast emulation of a bus (tests, simulation)
)

// CANBitrates are the bit rates a can channel accepts.
var CANBitrates = []int{10000, 20000, 50000, 100000, 125000, 250000, 500000, 800000, 1000000}

// CANParams are the parameters of a can channel. The channel listens to the bus:
// T and S points are decoded from the frames that carry them (the last frame
// wins); C and A points are sent as frames.
type CANParams struct {
	// PollIntervalMS is how often the channel checks its link and the age of its
	// points; the other Acquisition keys work as for every channel.
	Acquisition `yaml:",inline"`

	// Transport is socketcan (default) or udp.
	Transport string `yaml:"transport"`
	// Interface is the SocketCAN interface, e.g. can0. Required for socketcan.
	Interface string `yaml:"interface"`
	// Address is the multicast group host:port of the udp transport, e.g.
	// 239.64.142.206:45678. Required for udp.
	Address string `yaml:"address"`
	// Bitrate is the bus speed in bit/s. The operating system sets it (ip link set
	// can0 type can bitrate 500000); comsrv checks it is a standard rate and
	// reports it. Default 500000.
	Bitrate int `yaml:"bitrate"`
	// DBCFile is a DBC database, relative to the channel's folder
	// (config/comsrv/{id}/) unless absolute. With one, a point without a mapping row
	// is the DBC signal whose name is the point's signal_name, and a mapping row may
	// name a signal instead of giving its layout.
	DBCFile string `yaml:"dbc_file"`
	// TimeoutMS is how long a T/S point may go without a frame before it turns stale.
	// Default 3 × poll_interval_ms.
	TimeoutMS int `yaml:"timeout_ms"`
}

// Validate checks the parameters and fills in defaults.
func (p *CANParams) Validate() error {
	if err := p.Acquisition.Validate(); err != nil {
		return err
	}
	switch p.Transport {
	case "":
		p.Transport = CANTransportSocketCAN
		fallthrough
	case CANTransportSocketCAN:
		if p.Interface == "" {
			return fmt.Errorf("interface is required (the SocketCAN interface, e.g. can0)")
		}
		if len(p.Interface) > 15 {
			return fmt.Errorf("interface %q: names are at most 15 characters", p.Interface)
		}
	case CANTransportUDP:
		if p.Address == "" {
			return fmt.Errorf("address is required with transport udp (multicast group host:port, e.g. 239.64.142.206:45678)")
		}
		host, _, err := net.SplitHostPort(p.Address)
		if err != nil {
			return fmt.Errorf("address %q: %w", p.Address, err)
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsMulticast() {
			return fmt.Errorf("address %q: want a multicast group (239.x.x.x)", p.Address)
		}
	default:
		return fmt.Errorf("transport %q: want socketcan or udp", p.Transport)
	}
	if p.Bitrate == 0 {
		p.Bitrate = 500000
	}
	if !slices.Contains(CANBitrates, p.Bitrate) {
		return fmt.Errorf("bitrate %d is not a standard CAN rate (want one of %v)", p.Bitrate, CANBitrates)
	}
	if p.TimeoutMS < 0 {
		return fmt.Errorf("timeout_ms must not be negative")
	}
	return nil
}

// Timeout is how long a point may go unseen before it turns stale.
func (p *CANParams) Timeout() time.Duration {
	if p.TimeoutMS > 0 {
		return time.Duration(p.TimeoutMS) * time.Millisecond
	}
	return 3 * p.PollInterval()
}
