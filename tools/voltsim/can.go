package voltsim

import (
	"context"
	"fmt"
	"time"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/tools/voltsim/can"
)

func init() { registerProtocol(config.ProtocolCAN, newCANEndpoint) }

// canEndpoint is the simulated devices of a can channel on its bus (package can).
// The listen override does not apply: a bus has no port to pick.
type canEndpoint struct {
	dev *can.Device
}

func newCANEndpoint(ch *config.Channel, env endpointEnv) (endpoint, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dev, err := can.New(ctx, ch, can.Options{
		Logger: env.Logger,
		OnWrite: func(ws []can.Write) {
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
	return &canEndpoint{dev: dev}, nil
}

func (e *canEndpoint) Addr() string                    { return e.dev.Addr() }
func (e *canEndpoint) Serve(ctx context.Context) error { return e.dev.Serve(ctx) }
func (e *canEndpoint) Close() error                    { return e.dev.Close() }
func (e *canEndpoint) Set(k pointKey, v float64) error { return e.dev.Set(k.typ, k.id, v) }

// SetFault silences the bus side of the devices (timeout or drop) or clears that.
func (e *canEndpoint) SetFault(f Fault) error {
	if f.Slave != nil {
		return fmt.Errorf("a CAN channel has no slaves: fault without a slave only")
	}
	switch f.Mode {
	case FaultNone:
		e.dev.SetSilent(false)
	case FaultTimeout, FaultDrop:
		e.dev.SetSilent(true)
	default:
		return fmt.Errorf("fault mode %q is not simulated on CAN (timeout or drop silence the devices)", f.Mode)
	}
	return nil
}

func (e *canEndpoint) Faults() []Fault {
	if e.dev.Silent() {
		return []Fault{{Mode: FaultTimeout}}
	}
	return nil
}
