package voltsim

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/tools/voltsim/iec104"
)

func init() { registerProtocol(config.ProtocolIEC104, newIEC104) }

// FaultNegative makes the next command on an IEC 104 channel get a negative
// confirmation; Fault.ExceptionCode is the cause of transmission to answer with
// (0: 7, the activation confirmation itself; 44..47: unknown type, cause, common
// address, object address). FaultDrop closes the station's connections and
// refuses new ones; FaultNone clears both. Other modes are Modbus only.
const FaultNegative FaultMode = "negative"

// iec104Device is a simulated IEC 104 controlled station serving one channel.
type iec104Device struct {
	st     *iec104.Station
	env    endpointEnv
	points map[pointKey]*config.Point
	byKey  map[iec104.Key]*config.Point // command objects → their C/A point
}

func newIEC104(ch *config.Channel, env endpointEnv) (endpoint, error) {
	var p config.IEC104Params
	if err := ch.DecodeParameters(&p); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("parameters: %w", err)
	}
	addr := env.Listen
	if addr == "" {
		addr = net.JoinHostPort(p.Host, strconv.Itoa(p.Port))
	}
	d := &iec104Device{env: env, points: map[pointKey]*config.Point{}, byKey: map[iec104.Key]*config.Point{}}
	st, err := iec104.Listen(addr, iec104.Options{
		Config:    iec104.Config{K: p.K, W: p.W, T1: p.T1(), T2: p.T2(), T3: p.T3()},
		Logger:    env.Logger,
		OnCommand: d.executed,
	})
	if err != nil {
		return nil, fmt.Errorf("%w (the simulator serves on the channel's host:port; use a listen override to bind elsewhere)", err)
	}
	d.st = st
	for _, t := range point.Types {
		for i := range ch.Points[t] {
			pt := &ch.Points[t][i]
			m := pt.IEC104
			if m == nil {
				_ = st.Close()
				return nil, fmt.Errorf("%s point %d has no IEC 104 mapping", t.Name(), pt.ID)
			}
			k := iec104.Key{CA: m.CommonAddress, IOA: m.IOA}
			d.points[pointKey{t, pt.ID}] = pt
			if t.Writable() {
				sbo := p.SelectBeforeOperate
				if m.SBO != nil {
					sbo = *m.SBO
				}
				st.AddCommand(k, m.TypeID, sbo && m.TypeID != config.CBoNa1)
				d.byKey[k] = pt
				continue
			}
			st.AddMonitor(k, m.TypeID)
		}
	}
	return d, nil
}

func (d *iec104Device) Addr() string                    { return d.st.Addr() }
func (d *iec104Device) Serve(ctx context.Context) error { return d.st.Serve(ctx) }
func (d *iec104Device) Close() error                    { return d.st.Close() }

// Set puts a T or S point's engineering value into the station; a change goes
// out spontaneously. C and A points hold what commands wrote.
func (d *iec104Device) Set(k pointKey, v float64) error {
	p := d.points[k]
	if p == nil || k.typ.Writable() {
		return nil
	}
	raw := point.RawFromEngineering(v, p.Scale, p.Offset, p.Reverse)
	if k.typ == point.Signal {
		raw = b2f(raw != 0)
	}
	return d.st.Set(iec104.Key{CA: p.IEC104.CommonAddress, IOA: p.IEC104.IOA}, raw)
}

// executed turns an executed command into the point's new engineering value.
func (d *iec104Device) executed(c iec104.Command) {
	p := d.byKey[c.Key]
	if p == nil || d.env.OnWrite == nil {
		return
	}
	v := point.Engineering(c.Raw, p.Scale, p.Offset, p.Reverse)
	if p.Type == point.Control {
		// 0/1 points: ON/higher is 1, OFF/lower is 0.
		v = point.Engineering(b2f(c.Raw > 0), 1, 0, p.Reverse)
	}
	d.env.OnWrite([]deviceWrite{{key: pointKey{p.Type, p.ID}, value: v}})
}

func (d *iec104Device) SetFault(f Fault) error {
	switch f.Mode {
	case FaultNone:
		d.st.ClearFaults()
	case FaultDrop:
		d.st.Drop(true)
	case FaultNegative:
		return d.st.RejectNext(nil, f.ExceptionCode)
	default:
		return fmt.Errorf("fault mode %q is not available on an IEC 104 channel (none, drop, negative)", f.Mode)
	}
	return nil
}

func (d *iec104Device) Faults() []Fault {
	drop, rejectAll, _ := d.st.Faults()
	var out []Fault
	if drop {
		out = append(out, Fault{Mode: FaultDrop})
	}
	if rejectAll != nil {
		out = append(out, Fault{Mode: FaultNegative, ExceptionCode: *rejectAll})
	}
	return out
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// IEC104Station is the simulated station of an iec104 channel, for tests that
// need its counters or finer faults; nil when the channel is not one.
func (s *Sim) IEC104Station(channelID uint32) *iec104.Station {
	if sc, ok := s.chans[channelID]; ok {
		if d, ok := sc.ep.(*iec104Device); ok {
			return d.st
		}
	}
	return nil
}

// RejectNextCommand makes the next command on a C or A point of an iec104
// channel get a negative confirmation with the cause of transmission cot (0: 7).
func (s *Sim) RejectNextCommand(channelID uint32, typ point.Type, id point.ID, cot uint8) error {
	st := s.IEC104Station(channelID)
	if st == nil {
		return fmt.Errorf("channel %d is not a simulated iec104 channel", channelID)
	}
	p := s.chans[channelID].cfg.Point(typ, id)
	if p == nil || p.IEC104 == nil || !typ.Writable() {
		return fmt.Errorf("channel %d has no command point %s%d", channelID, typ, id)
	}
	return st.RejectNext(&iec104.Key{CA: p.IEC104.CommonAddress, IOA: p.IEC104.IOA}, cot)
}

// SetIEC104Quality sets the quality descriptor bits (iec104.Quality*) a T or S
// point of an iec104 channel is reported with; 0 is good.
func (s *Sim) SetIEC104Quality(channelID uint32, typ point.Type, id point.ID, q byte) error {
	st := s.IEC104Station(channelID)
	if st == nil {
		return fmt.Errorf("channel %d is not a simulated iec104 channel", channelID)
	}
	p := s.chans[channelID].cfg.Point(typ, id)
	if p == nil || p.IEC104 == nil || typ.Writable() {
		return fmt.Errorf("channel %d has no monitored point %s%d", channelID, typ, id)
	}
	return st.SetQuality(iec104.Key{CA: p.IEC104.CommonAddress, IOA: p.IEC104.IOA}, q)
}
