package voltsim

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"
	"sync"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/tools/voltsim/modbusserver"
)

func init() {
	registerProtocol(config.ProtocolModbusRTUOverTCP, newModbusRTUOverTCP)
	registerProtocol(config.ProtocolModbusRTU, newModbusRTU)
}

// newModbusRTUOverTCP simulates a serial server: one TCP listener whose clients
// send RTU frames to the slaves of one bus (every slave id of the channel's
// mapping). The server checks the master never has two requests on the bus at once.
func newModbusRTUOverTCP(ch *config.Channel, env endpointEnv) (endpoint, error) {
	var params config.ModbusRTUOverTCPParams
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
	srv, err := modbusserver.ListenRTU(addr, d, d.serverOptions())
	if err != nil {
		return nil, fmt.Errorf("%w (the simulator serves on the channel's host:port; use a listen override to bind elsewhere)", err)
	}
	d.srv = srv
	return d, nil
}

// newModbusRTU simulates the slaves of a serial line. It opens a pseudo-terminal
// pair, serves on its master side and makes the channel's device path a symbolic
// link to the slave side, so comsrv opens "the serial port" it is configured with.
// The path must not exist, or be a symbolic link (left by an earlier run), which is
// replaced; a real device is never touched.
func newModbusRTU(ch *config.Channel, env endpointEnv) (endpoint, error) {
	var params config.ModbusRTUParams
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
	sp, err := openSerialPort(params.Device)
	if err != nil {
		return nil, err
	}
	d := &modbusDevice{img: img, env: env, channel: ch.ID, serial: sp}
	d.srv = modbusserver.NewStream(d, d.serverOptions())
	return d, nil
}

// serialPort is a simulated serial port: a pseudo-terminal reachable at path.
type serialPort struct {
	pty  *modbusserver.PTY
	path string
	once sync.Once
	err  error
}

func openSerialPort(path string) (*serialPort, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink == 0 {
		return nil, fmt.Errorf("device %s exists and is not a symbolic link: the simulator only replaces links it made", path)
	}
	p, err := modbusserver.OpenPTY()
	if err != nil {
		return nil, err
	}
	_ = os.Remove(path)
	if err := os.Symlink(p.SlavePath, path); err != nil {
		_ = p.Close()
		return nil, fmt.Errorf("link %s to the simulated serial port %s: %w", path, p.SlavePath, err)
	}
	return &serialPort{pty: p, path: path}, nil
}

func (s *serialPort) close() error {
	s.once.Do(func() {
		s.err = errors.Join(s.pty.Close(), os.Remove(s.path))
	})
	return s.err
}

// ModbusBus returns the RTU bus counters of a modbus_rtu or modbus_rtu_over_tcp
// channel: requests, requests that arrived before the previous answer was sent
// (violations of the one-request-at-a-time discipline), bad frames and requests
// left unanswered.
func (s *Sim) ModbusBus(channelID uint32) (modbusserver.BusStats, error) {
	sc, ok := s.chans[channelID]
	if !ok {
		return modbusserver.BusStats{}, fmt.Errorf("voltsim: no simulated channel %d", channelID)
	}
	d, ok := sc.ep.(*modbusDevice)
	if !ok || sc.cfg.Protocol == config.ProtocolModbusTCP {
		return modbusserver.BusStats{}, fmt.Errorf("voltsim: channel %d is not a Modbus RTU channel", channelID)
	}
	return d.srv.BusStats(), nil
}
