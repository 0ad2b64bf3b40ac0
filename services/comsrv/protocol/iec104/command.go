package iec104

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/wendy512/go-iecp5/asdu"

	"github.com/voltageems/voltage/services/comsrv/protocol"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
)

// NegativeError is a command the station refused: a confirmation with the P/N
// bit set, or a reply with cause 44..47 (unknown type, cause, common address or
// object address).
type NegativeError struct {
	Type  config.IEC104TypeID
	CA    uint16
	IOA   uint32
	Step  string // "select" or "execute"
	Cause asdu.CauseOfTransmission
}

func (e *NegativeError) Error() string {
	return fmt.Sprintf("station refused the %s of %s at common_address %d ioa %d: negative confirmation, cause of transmission %d (%s)",
		e.Step, e.Type, e.CA, e.IOA, e.Cause.Cause, causeName(e.Cause.Cause))
}

// Double command states (IEC 60870-5-101 §7.2.6.16).
const (
	dcsOff asdu.DoubleCommand = 1
	dcsOn  asdu.DoubleCommand = 2
)

// ErrTimeout is a command whose confirmation or termination did not arrive.
var ErrTimeout = errors.New("no answer from the station")

func causeName(c asdu.Cause) string {
	s := asdu.CauseOfTransmission{Cause: c}.String() // "COT<Name>"
	if len(s) > 5 && s[:4] == "COT<" {
		return s[4 : len(s)-1]
	}
	return s
}

// pendingCommand is the one command in flight (the runner writes one at a time).
type pendingCommand struct {
	typ     asdu.TypeID
	ca      asdu.CommonAddr
	ioa     asdu.InfoObjAddr
	replies chan asdu.CauseOfTransmission
	failed  chan error
}

func (p *pendingCommand) fail(err error) {
	select {
	case p.failed <- err:
	default:
	}
}

// commandReply hands a confirmation or termination to the waiting command.
func (l *link) commandReply(a *asdu.ASDU) {
	l.mu.Lock()
	p := l.pending
	l.mu.Unlock()
	ioa, err := commandIOA(a)
	if p == nil || err != nil || a.Type != p.typ || a.CommonAddr != p.ca || ioa != p.ioa {
		l.d.log.Debug("iec104 command reply for no pending command", "type", a.Type, "common_address", a.CommonAddr, "cause", a.Coa.String())
		return
	}
	select {
	case p.replies <- a.Coa:
	default:
	}
}

// commandIOA reads the object address of a command ASDU without trusting its length.
func commandIOA(a *asdu.ASDU) (ioa asdu.InfoObjAddr, err error) {
	defer func() {
		if recover() != nil {
			err = errors.New("short command ASDU")
		}
	}()
	return a.Clone().DecodeInfoObjAddr(), nil
}

// Write implements protocol.Driver: it sends the command for point p and waits
// for the station's verdict (see the package doc and docs/iec104.md).
func (d *Driver) Write(ctx context.Context, p *config.Point, v float64) error {
	m := p.IEC104
	if m == nil || !p.Type.Writable() {
		return protocol.ErrReadOnly
	}
	l := d.link
	if l == nil {
		return errors.New("not connected")
	}
	if err := l.lostErr(); err != nil {
		return err
	}
	raw := rawForCommand(p, v)
	if m.TypeID == config.CRcNa1 && p.Type == point.Control {
		// A control point is 0/1: 1 steps higher, 0 lower.
		raw = 1
		if v == 0 {
			raw = -1
		}
	}
	sbo := d.params.SelectBeforeOperate
	if m.SBO != nil {
		sbo = *m.SBO
	}
	if m.TypeID == config.CBoNa1 {
		sbo = false
	}
	pc := &pendingCommand{
		typ: asdu.TypeID(m.TypeID), ca: asdu.CommonAddr(m.CommonAddress), ioa: asdu.InfoObjAddr(m.IOA),
		replies: make(chan asdu.CauseOfTransmission, 4), failed: make(chan error, 1),
	}
	l.mu.Lock()
	l.pending = pc
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.pending = nil
		l.mu.Unlock()
	}()
	if sbo {
		if err := l.sendCommand(p, raw, true); err != nil {
			return err
		}
		if _, err := d.await(ctx, pc, m, "select", false); err != nil {
			return err
		}
	}
	if err := l.sendCommand(p, raw, false); err != nil {
		return err
	}
	terminated, err := d.await(ctx, pc, m, "execute", false)
	if err != nil || terminated || !*d.params.AwaitTermination {
		return err
	}
	_, err = d.await(ctx, pc, m, "execute", true)
	return err
}

// await waits for the activation confirmation (or, with term, the termination)
// of one step. It reports whether the step is already terminated (a station may
// skip the confirmation and terminate at once).
func (d *Driver) await(ctx context.Context, pc *pendingCommand, m *config.IEC104Mapping, step string, term bool) (bool, error) {
	want := "activation confirmation"
	if term {
		want = "activation termination"
	}
	t := time.NewTimer(d.params.CommandTimeout())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("%s of %s: %w", step, m.TypeID, ctx.Err())
		case err := <-pc.failed:
			return false, fmt.Errorf("%s of %s: %w", step, m.TypeID, err)
		case <-t.C:
			return false, fmt.Errorf("%s of %s at common_address %d ioa %d: %w: no %s within %s",
				step, m.TypeID, m.CommonAddress, m.IOA, ErrTimeout, want, d.params.CommandTimeout())
		case coa := <-pc.replies:
			neg := &NegativeError{Type: m.TypeID, CA: m.CommonAddress, IOA: m.IOA, Step: step, Cause: coa}
			switch {
			case coa.IsNegative || coa.Cause >= asdu.UnknownTypeID && coa.Cause <= asdu.UnknownIOA:
				return false, neg
			case coa.Cause == asdu.ActivationCon && !term:
				return false, nil
			case coa.Cause == asdu.ActivationTerm:
				return true, nil
			}
			// Anything else (a late reply of the select, a deactivation) is not ours.
		}
	}
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

// qoc is the qualifier of command for a control point's control_type.
func qoc(p *config.Point, sel bool) asdu.QualifierOfCommand {
	q := asdu.QualifierOfCommand{Qual: asdu.QOCNoAdditionalDefinition, InSelect: sel}
	switch p.ControlType {
	case "pulse":
		q.Qual = asdu.QOCShortPulseDuration
	case "latching":
		q.Qual = asdu.QOCPersistentOutput
	}
	return q
}

// sendCommandASDU checks that raw fits the command type and sends the command
// ASDU (activation) on c.
func sendCommandASDU(c asdu.Connect, typ config.IEC104TypeID, ca uint16, ioa uint32, raw float64, q asdu.QualifierOfCommand) error {
	coa := asdu.CauseOfTransmission{Cause: asdu.Activation}
	addr, obj := asdu.CommonAddr(ca), asdu.InfoObjAddr(ioa)
	qos := asdu.QualifierOfSetpointCmd{InSelect: q.InSelect}
	switch typ {
	case config.CScNa1:
		return asdu.SingleCmd(c, asdu.C_SC_NA_1, coa, addr, asdu.SingleCommandInfo{Ioa: obj, Value: raw != 0, Qoc: q})
	case config.CDcNa1:
		// IEC 60870-5-101 §7.2.6.16: DCS 1 is OFF, 2 is ON. The library's DCOOn
		// and DCOOff constants are the other way round, so numbers are used.
		dc := dcsOff
		if raw != 0 {
			dc = dcsOn
		}
		return asdu.DoubleCmd(c, asdu.C_DC_NA_1, coa, addr, asdu.DoubleCommandInfo{Ioa: obj, Value: dc, Qoc: q})
	case config.CRcNa1:
		var rc asdu.StepCommand
		switch {
		case raw > 0:
			rc = asdu.SCOStepUP
		case raw < 0:
			rc = asdu.SCOStepDown
		default:
			return errors.New("a regulating step command needs a direction: a positive value steps higher, a negative one lower")
		}
		return asdu.StepCmd(c, asdu.C_RC_NA_1, coa, addr, asdu.StepCommandInfo{Ioa: obj, Value: rc, Qoc: q})
	case config.CSeNa1:
		if raw < -1 || raw >= 1 {
			return fmt.Errorf("normalized set-point %v is outside [-1, 1)", raw)
		}
		n := math.Round(raw * 32768)
		n = min(n, math.MaxInt16)
		return asdu.SetpointCmdNormal(c, asdu.C_SE_NA_1, coa, addr, asdu.SetpointCommandNormalInfo{Ioa: obj, Value: asdu.Normalize(n), Qos: qos})
	case config.CSeNb1:
		n := math.Round(raw)
		if n < math.MinInt16 || n > math.MaxInt16 {
			return fmt.Errorf("scaled set-point %v is outside -32768..32767", raw)
		}
		return asdu.SetpointCmdScaled(c, asdu.C_SE_NB_1, coa, addr, asdu.SetpointCommandScaledInfo{Ioa: obj, Value: int16(n), Qos: qos})
	case config.CSeNc1:
		if math.Abs(raw) > math.MaxFloat32 {
			return fmt.Errorf("set-point %v does not fit a short float", raw)
		}
		return asdu.SetpointCmdFloat(c, asdu.C_SE_NC_1, coa, addr, asdu.SetpointCommandFloatInfo{Ioa: obj, Value: float32(raw), Qos: qos})
	case config.CBoNa1:
		if raw < 0 || raw > math.MaxUint32 || raw != math.Trunc(raw) {
			return fmt.Errorf("bitstring command %v is not a whole number 0..4294967295", raw)
		}
		return asdu.BitsString32Cmd(c, asdu.C_BO_NA_1, coa, addr, asdu.BitsString32CommandInfo{Ioa: obj, Value: uint32(raw)})
	}
	return fmt.Errorf("%s is not a command type", typ)
}

func (l *link) sendCommand(p *config.Point, raw float64, sel bool) error {
	m := p.IEC104
	step := "execute"
	if sel {
		step = "select"
	}
	if err := sendCommandASDU(l.client, m.TypeID, m.CommonAddress, m.IOA, raw, qoc(p, sel)); err != nil {
		return fmt.Errorf("send %s of %s to common_address %d ioa %d: %w", step, m.TypeID, m.CommonAddress, m.IOA, err)
	}
	return nil
}
