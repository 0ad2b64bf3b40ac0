package iec104

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/wendy512/go-iecp5/asdu"

	"github.com/voltageems/voltage/shared/config"
)

// handleASDU answers one ASDU from the controlling station. raw is the ASDU as
// received; confirmations repeat its information object.
func (s *Station) handleASDU(ss *session, raw []byte) {
	a := asdu.NewEmptyASDU(asdu.ParamsWide)
	if err := a.UnmarshalBinary(raw); err != nil {
		if len(raw) >= a.IdentifierSize() {
			// A type the library does not know: answer "unknown type" (P/N set).
			s.reply(ss, raw, asdu.UnknownTypeID, true)
		}
		s.log.Warn("iec104: undecodable ASDU", "err", err)
		return
	}
	obj := raw[a.IdentifierSize():]
	switch a.Type {
	case asdu.C_IC_NA_1:
		s.interrogation(ss, a, raw)
	case asdu.C_CI_NA_1:
		s.counterInterrogation(ss, a, raw)
	case asdu.C_CS_NA_1:
		s.clockSync(ss, a, raw, obj)
	case asdu.C_SC_NA_1, asdu.C_DC_NA_1, asdu.C_RC_NA_1, asdu.C_SE_NA_1, asdu.C_SE_NB_1, asdu.C_SE_NC_1, asdu.C_BO_NA_1:
		s.command(ss, a, raw)
	default:
		s.reply(ss, raw, asdu.UnknownTypeID, true)
	}
}

// reply sends the request back with another cause (and P/N), its information
// object unchanged: ActCon, ActTerm, or a negative answer.
func (s *Station) reply(ss *session, raw []byte, cause asdu.Cause, negative bool) {
	b := append([]byte(nil), raw...)
	// The cause is the third octet: keep T (test), set P/N and the cause.
	b[2] = b[2]&0x80 | byte(cause)&0x3f
	if negative {
		b[2] |= 0x40
	}
	a := asdu.NewEmptyASDU(asdu.ParamsWide)
	if err := a.UnmarshalBinary(b); err != nil {
		// Unknown to the library (e.g. a type it cannot size): send as is.
		ss.sendRaw(b)
		return
	}
	if err := ss.Send(a); err != nil {
		s.log.Warn("iec104: reply dropped", "cause", cause, "err", err)
	}
}

func (ss *session) sendRaw(b []byte) {
	ss.mu.Lock()
	if !ss.closed && len(ss.queue) < maxQueue {
		ss.queue = append(ss.queue, b)
	}
	ss.mu.Unlock()
	ss.signal()
}

func (s *Station) interrogation(ss *session, a *asdu.ASDU, raw []byte) {
	if a.Coa.Cause == asdu.Deactivation {
		s.reply(ss, raw, asdu.DeactivationCon, false)
		return
	}
	if a.Coa.Cause != asdu.Activation {
		s.reply(ss, raw, asdu.UnknownCOT, true)
		return
	}
	if !s.knownCA(uint16(a.CommonAddr)) {
		s.reply(ss, raw, asdu.UnknownCA, true)
		return
	}
	_, qoi := a.GetInterrogationCmd()
	s.mu.Lock()
	s.counters.Interrogations++
	s.mu.Unlock()
	s.reply(ss, raw, asdu.ActivationCon, false)
	if qoi == asdu.QOIStation {
		groups := s.objectsOf(uint16(a.CommonAddr), func(t config.IEC104TypeID) bool {
			return config.IEC104TypeFamily(t) != config.MItNa1
		})
		s.sendGroups(ss, asdu.CauseOfTransmission{Cause: asdu.InterrogatedByStation}, groups)
	}
	s.reply(ss, raw, asdu.ActivationTerm, false)
}

func (s *Station) counterInterrogation(ss *session, a *asdu.ASDU, raw []byte) {
	if a.Coa.Cause != asdu.Activation {
		s.reply(ss, raw, asdu.UnknownCOT, true)
		return
	}
	if !s.knownCA(uint16(a.CommonAddr)) {
		s.reply(ss, raw, asdu.UnknownCA, true)
		return
	}
	s.mu.Lock()
	s.counters.CounterInterrogations++
	s.mu.Unlock()
	s.reply(ss, raw, asdu.ActivationCon, false)
	groups := s.objectsOf(uint16(a.CommonAddr), func(t config.IEC104TypeID) bool {
		return config.IEC104TypeFamily(t) == config.MItNa1
	})
	s.sendGroups(ss, asdu.CauseOfTransmission{Cause: asdu.RequestByGeneralCounter}, groups)
	s.reply(ss, raw, asdu.ActivationTerm, false)
}

func (s *Station) clockSync(ss *session, a *asdu.ASDU, raw, obj []byte) {
	if a.Coa.Cause != asdu.Activation {
		s.reply(ss, raw, asdu.UnknownCOT, true)
		return
	}
	if len(obj) >= 10 {
		t := asdu.ParseCP56Time2a(obj[3:10], s.cfg.TimeZone)
		s.mu.Lock()
		s.counters.ClockSyncs++
		if len(s.clock) < 1000 {
			s.clock = append(s.clock, t)
		}
		s.mu.Unlock()
	}
	s.reply(ss, raw, asdu.ActivationCon, false)
}

// command selects or executes a command, confirming it (and terminating an
// execute) or refusing it with a negative confirmation.
func (s *Station) command(ss *session, a *asdu.ASDU, raw []byte) {
	if a.Coa.Cause != asdu.Activation {
		s.reply(ss, raw, asdu.UnknownCOT, true)
		return
	}
	ca := uint16(a.CommonAddr)
	if !s.knownCA(ca) {
		s.reply(ss, raw, asdu.UnknownCA, true)
		return
	}
	typ := config.IEC104TypeID(a.Type)
	k, value, sel, err := decodeCommand(a)
	if err != nil {
		s.log.Warn("iec104: command refused", "type", typ, "err", err)
		s.reply(ss, raw, asdu.ActivationCon, true)
		return
	}
	s.mu.Lock()
	c := s.controls[k]
	switch {
	case c == nil:
		s.mu.Unlock()
		s.reply(ss, raw, asdu.UnknownIOA, true)
		return
	case c.typ != typ:
		s.mu.Unlock()
		s.reply(ss, raw, asdu.UnknownTypeID, true)
		return
	}
	if cause, ok := s.takeRejectLocked(k); ok {
		s.counters.Rejected++
		delete(s.selected, k)
		s.mu.Unlock()
		s.reply(ss, raw, cause, true)
		return
	}
	if sel {
		s.selected[k] = value
		s.mu.Unlock()
		s.reply(ss, raw, asdu.ActivationCon, false)
		return
	}
	if c.requireSelect {
		v, ok := s.selected[k]
		delete(s.selected, k)
		if !ok || v != value {
			s.counters.Rejected++
			s.mu.Unlock()
			s.log.Warn("iec104: execute without a matching select refused", "ca", k.CA, "ioa", k.IOA)
			s.reply(ss, raw, asdu.ActivationCon, true)
			return
		}
	}
	s.counters.Commands++
	s.mu.Unlock()
	s.reply(ss, raw, asdu.ActivationCon, false)
	if s.opts.OnCommand != nil {
		s.opts.OnCommand(Command{Key: k, Type: typ, Raw: value})
	}
	s.reply(ss, raw, asdu.ActivationTerm, false)
}

func (s *Station) takeRejectLocked(k Key) (asdu.Cause, bool) {
	if c, ok := s.rejectKey[k]; ok {
		delete(s.rejectKey, k)
		return c, true
	}
	if s.rejectAny != nil {
		c := *s.rejectAny
		s.rejectAny = nil
		return c, true
	}
	return 0, false
}

// decodeCommand reads a command object: its address, value and select bit.
func decodeCommand(a *asdu.ASDU) (k Key, v float64, sel bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed %s: %v", a.Type, r)
		}
	}()
	if a.Variable.Number != 1 || a.Variable.IsSequence {
		return k, 0, false, errors.New("a command carries exactly one object")
	}
	k.CA = uint16(a.CommonAddr)
	switch a.Type {
	case asdu.C_SC_NA_1:
		c := a.GetSingleCmd()
		k.IOA, sel = uint32(c.Ioa), c.Qoc.InSelect
		if c.Value {
			v = 1
		}
	case asdu.C_DC_NA_1:
		c := a.GetDoubleCmd()
		k.IOA, sel = uint32(c.Ioa), c.Qoc.InSelect
		switch c.Value {
		case 1: // OFF
		case 2: // ON
			v = 1
		default:
			return k, 0, false, fmt.Errorf("double command state %d is not allowed", c.Value)
		}
	case asdu.C_RC_NA_1:
		c := a.GetStepCmd()
		k.IOA, sel = uint32(c.Ioa), c.Qoc.InSelect
		switch c.Value {
		case asdu.SCOStepDown:
			v = -1
		case asdu.SCOStepUP:
			v = 1
		default:
			return k, 0, false, fmt.Errorf("regulating step state %d is not allowed", c.Value)
		}
	case asdu.C_SE_NA_1:
		c := a.GetSetpointNormalCmd()
		k.IOA, v, sel = uint32(c.Ioa), c.Value.Float64(), c.Qos.InSelect
	case asdu.C_SE_NB_1:
		c := a.GetSetpointCmdScaled()
		k.IOA, v, sel = uint32(c.Ioa), float64(c.Value), c.Qos.InSelect
	case asdu.C_SE_NC_1:
		c := a.GetSetpointFloatCmd()
		k.IOA, v, sel = uint32(c.Ioa), widen(c.Value), c.Qos.InSelect
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return k, 0, false, fmt.Errorf("set-point %v is not a number", v)
		}
	case asdu.C_BO_NA_1:
		c := a.GetBitsString32Cmd()
		k.IOA, v = uint32(c.Ioa), float64(c.Value)
	default:
		return k, 0, false, fmt.Errorf("%s is not a command", a.Type)
	}
	return k, v, sel, nil
}

func widen(f float32) float64 {
	v, err := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	if err != nil {
		return float64(f)
	}
	return v
}

// sendGroups sends interrogation answers, in ASDUs of as many objects as fit.
func (s *Station) sendGroups(ss *session, coa asdu.CauseOfTransmission, groups map[[2]int][]objValue) {
	now := time.Now()
	for g, objs := range groups {
		if err := s.sendObjects(ss, coa, config.IEC104TypeID(g[1]), uint16(g[0]), objs, now); err != nil {
			s.log.Warn("iec104: interrogation answer dropped", "ca", g[0], "type", config.IEC104TypeID(g[1]), "err", err)
		}
	}
}

// sendObjects encodes objects of one type and common address, splitting them
// into ASDUs that fit.
func (s *Station) sendObjects(c asdu.Connect, coa asdu.CauseOfTransmission, typ config.IEC104TypeID, ca uint16, objs []objValue, now time.Time) error {
	size, err := asdu.GetInfoObjSize(asdu.TypeID(typ))
	if err != nil {
		return err
	}
	per := (asdu.ASDUSizeMax - asdu.ParamsWide.IdentifierSize()) / (size + asdu.ParamsWide.InfoObjAddrSize)
	if s.cfg.MaxObjsPerASDU > 0 {
		per = min(per, s.cfg.MaxObjsPerASDU)
	}
	per = min(per, 127)
	for len(objs) > 0 {
		n := min(per, len(objs))
		a := asdu.NewASDU(asdu.ParamsWide, asdu.Identifier{
			Type: asdu.TypeID(typ), Variable: asdu.VariableStruct{Number: byte(n)}, Coa: coa, CommonAddr: asdu.CommonAddr(ca),
		})
		for _, o := range objs[:n] {
			if err := a.AppendInfoObjAddr(asdu.InfoObjAddr(o.ioa)); err != nil {
				return err
			}
			appendValue(a, typ, o, now, s.cfg.TimeZone)
		}
		if err := c.Send(a); err != nil {
			return err
		}
		objs = objs[n:]
	}
	return nil
}

// appendValue encodes one information element (IEC 60870-5-101 §7.3.1).
func appendValue(a *asdu.ASDU, typ config.IEC104TypeID, o objValue, now time.Time, tz *time.Location) {
	q := o.q
	switch config.IEC104TypeFamily(typ) {
	case config.MSpNa1:
		v := byte(0)
		if o.raw != 0 {
			v = 1
		}
		a.AppendBytes(v | q&0xf0)
	case config.MDpNa1:
		v := byte(asdu.DPIDeterminedOff)
		if o.raw != 0 {
			v = byte(asdu.DPIDeterminedOn)
		}
		a.AppendBytes(v | q&0xf0)
	case config.MStNa1:
		a.AppendBytes(byte(int(math.Round(o.raw))&0x7f), q)
	case config.MBoNa1:
		a.AppendBitsString32(uint32(o.raw)).AppendBytes(q)
	case config.MMeNa1:
		a.AppendNormalize(normalize(o.raw))
		if typ != config.MMeNd1 {
			a.AppendBytes(q)
		}
	case config.MMeNb1:
		a.AppendScaled(int16(math.Round(o.raw))).AppendBytes(q)
	case config.MMeNc1:
		a.AppendFloat32(float32(o.raw)).AppendBytes(q)
	case config.MItNa1:
		r := asdu.BinaryCounterReading{CounterReading: int32(math.Round(o.raw)), IsInvalid: q&QualityInvalid != 0}
		a.AppendBinaryCounterReading(r)
	}
	if typ >= config.MSpTb1 && typ <= config.MItTb1 {
		a.AppendCP56Time2a(now, tz)
	}
}
