package voltsim

import (
	"context"
	"fmt"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/tools/voltsim/gpio"
)

func init() { registerProtocol(config.ProtocolGPIO, newGPIOEndpoint) }

// gpioEndpoint is the simulated lines of a gpio channel (package gpio): a sysfs
// look-alike at the channel's sysfs_root.
type gpioEndpoint struct {
	board *gpio.Board
}

func newGPIOEndpoint(ch *config.Channel, env endpointEnv) (endpoint, error) {
	b, err := gpio.New(ch, gpio.Options{
		Logger: env.Logger,
		OnWrite: func(ws []gpio.Write) {
			if env.OnWrite == nil {
				return
			}
			out := make([]deviceWrite, len(ws))
			for i, w := range ws {
				out[i] = deviceWrite{key: pointKey{w.Type, w.ID}, value: w.Value}
			}
			env.OnWrite(out)
		},
	})
	if err != nil {
		return nil, err
	}
	return &gpioEndpoint{board: b}, nil
}

func (e *gpioEndpoint) Addr() string                    { return e.board.Root() }
func (e *gpioEndpoint) Serve(ctx context.Context) error { return e.board.Serve(ctx) }
func (e *gpioEndpoint) Close() error                    { return nil }
func (e *gpioEndpoint) Set(k pointKey, v float64) error { return e.board.Set(k.typ, k.id, v) }

func (e *gpioEndpoint) SetFault(f Fault) error {
	if f.Mode == FaultNone {
		return nil
	}
	return fmt.Errorf("fault mode %q is not simulated on GPIO", f.Mode)
}

func (e *gpioEndpoint) Faults() []Fault { return nil }
