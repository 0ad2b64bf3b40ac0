package iec104

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/wendy512/go-iecp5/asdu"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
)

// Object is one information object of a monitoring ASDU, decoded.
type Object struct {
	Type  config.IEC104TypeID
	Cause asdu.Cause
	CA    uint16
	IOA   uint32
	// Raw is the value as the station sent it: 0/1 for a single point, the DPI
	// (0..3) for a double point, the fraction in [-1, 1) for a normalized value,
	// the integer for scaled values, step positions, bitstrings and counters.
	Raw float64
	// Flags are the quality bits that came with the value.
	Flags Flags
	// Time is the CP56Time2a time tag; zero when the type has none or the tag
	// is marked invalid.
	Time time.Time
}

// Flags are the IEC quality descriptor bits of a value (IEC 60870-5-101 §7.2.6.3).
type Flags struct {
	Invalid     bool // IV
	NotTopical  bool // NT
	Substituted bool // SB
	Blocked     bool // BL
	Overflow    bool // OV
	// Indeterminate is a double point in state 0 (intermediate) or 3
	// (indeterminate), which is not a value.
	Indeterminate bool
}

// Quality maps the flags onto a point quality (DESIGN §2): IV, OV and an
// indeterminate double point are invalid; NT and BL are stale (the value is
// not current); SB is good (an operator entered it; it is the station's value).
func (f Flags) Quality() point.Quality {
	switch {
	case f.Invalid || f.Overflow || f.Indeterminate:
		return point.Invalid
	case f.NotTopical || f.Blocked:
		return point.Stale
	}
	return point.Good
}

func qdsFlags(q asdu.QualityDescriptor) Flags {
	return Flags{
		Invalid:     q&asdu.QDSInvalid != 0,
		NotTopical:  q&asdu.QDSNotTopical != 0,
		Substituted: q&asdu.QDSSubstituted != 0,
		Blocked:     q&asdu.QDSBlocked != 0,
		Overflow:    q&asdu.QDSOverflow != 0,
	}
}

// errNotMonitoring is returned for ASDUs that carry no process data.
var errNotMonitoring = errors.New("not a monitoring type")

// DecodeBytes parses a raw ASDU with the IEC 104 sizes (COT 2, CA 2, IOA 3) and
// decodes its information objects. It never panics on malformed input.
func DecodeBytes(raw []byte) ([]Object, error) {
	a := asdu.NewEmptyASDU(asdu.ParamsWide)
	if err := a.UnmarshalBinary(raw); err != nil {
		return nil, fmt.Errorf("malformed ASDU: %w", err)
	}
	return Decode(a)
}

// Decode turns a monitoring ASDU into its objects. The library checks the length
// of the information objects against the type and the number in
// UnmarshalBinary; Decode still recovers from a panic in the library's getters,
// so a frame that slips past that check costs the frame, never the process.
func Decode(a *asdu.ASDU) (objs []Object, err error) {
	defer func() {
		if r := recover(); r != nil {
			objs, err = nil, fmt.Errorf("malformed %s ASDU: %v", a.Type, r)
		}
	}()
	mk := func(ioa asdu.InfoObjAddr, raw float64, f Flags, t time.Time) Object {
		return Object{Type: config.IEC104TypeID(a.Type), Cause: a.Coa.Cause, CA: uint16(a.CommonAddr), IOA: uint32(ioa), Raw: raw, Flags: f, Time: t}
	}
	switch a.Type {
	case asdu.M_SP_NA_1, asdu.M_SP_TA_1, asdu.M_SP_TB_1:
		for _, v := range a.GetSinglePoint() {
			objs = append(objs, mk(v.Ioa, b2f(v.Value), qdsFlags(v.Qds), v.Time))
		}
	case asdu.M_DP_NA_1, asdu.M_DP_TA_1, asdu.M_DP_TB_1:
		for _, v := range a.GetDoublePoint() {
			f := qdsFlags(v.Qds)
			f.Indeterminate = v.Value != asdu.DPIDeterminedOff && v.Value != asdu.DPIDeterminedOn
			objs = append(objs, mk(v.Ioa, float64(v.Value), f, v.Time))
		}
	case asdu.M_ST_NA_1, asdu.M_ST_TA_1, asdu.M_ST_TB_1:
		for _, v := range a.GetStepPosition() {
			objs = append(objs, mk(v.Ioa, float64(v.Value.Val), qdsFlags(v.Qds), v.Time))
		}
	case asdu.M_BO_NA_1, asdu.M_BO_TA_1, asdu.M_BO_TB_1:
		for _, v := range a.GetBitString32() {
			objs = append(objs, mk(v.Ioa, float64(v.Value), qdsFlags(v.Qds), v.Time))
		}
	case asdu.M_ME_NA_1, asdu.M_ME_TA_1, asdu.M_ME_TD_1, asdu.M_ME_ND_1:
		for _, v := range a.GetMeasuredValueNormal() {
			objs = append(objs, mk(v.Ioa, v.Value.Float64(), qdsFlags(v.Qds), v.Time))
		}
	case asdu.M_ME_NB_1, asdu.M_ME_TB_1, asdu.M_ME_TE_1:
		for _, v := range a.GetMeasuredValueScaled() {
			objs = append(objs, mk(v.Ioa, float64(v.Value), qdsFlags(v.Qds), v.Time))
		}
	case asdu.M_ME_NC_1, asdu.M_ME_TC_1, asdu.M_ME_TF_1:
		for _, v := range a.GetMeasuredValueFloat() {
			objs = append(objs, mk(v.Ioa, Float32(v.Value), qdsFlags(v.Qds), v.Time))
		}
	case asdu.M_IT_NA_1, asdu.M_IT_TA_1, asdu.M_IT_TB_1:
		for _, v := range a.GetIntegratedTotals() {
			objs = append(objs, mk(v.Ioa, float64(v.Value.CounterReading), Flags{Invalid: v.Value.IsInvalid}, v.Time))
		}
	default:
		return nil, fmt.Errorf("%s: %w", a.Type, errNotMonitoring)
	}
	for i := range objs {
		if objs[i].IOA > 1<<24-1 {
			// The library counts a sequence (SQ=1) past the last three-octet address.
			return nil, fmt.Errorf("malformed %s ASDU: object addresses run past 16777215", a.Type)
		}
		// A CP24Time2a tag (101 only) has no date: the receive time is better.
		switch a.Type {
		case asdu.M_SP_TA_1, asdu.M_DP_TA_1, asdu.M_ST_TA_1, asdu.M_BO_TA_1,
			asdu.M_ME_TA_1, asdu.M_ME_TB_1, asdu.M_ME_TC_1, asdu.M_IT_TA_1:
			objs[i].Time = time.Time{}
		}
	}
	return objs, nil
}

// Float32 widens a short float to the float64 with the same shortest decimal
// (0.1f becomes 0.1, not 0.10000000149011612), which is what the station meant.
func Float32(f float32) float64 {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return float64(f)
	}
	v, err := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	if err != nil {
		return float64(f)
	}
	return v
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Sample turns an object into the sample of point p, received at now (Unix ms).
// A double point reports ON as 1 and OFF as 0 before scale/reverse.
func Sample(p *config.Point, o Object, now int64) point.Sample {
	raw := o.Raw
	v := raw
	if config.IEC104TypeFamily(o.Type) == config.MDpNa1 {
		v = 0
		if asdu.DoublePoint(raw) == asdu.DPIDeterminedOn {
			v = 1
		}
	}
	ts := now
	if !o.Time.IsZero() {
		ts = o.Time.UnixMilli()
	}
	return point.Sample{
		ID: p.ID, Raw: raw, TS: ts, Quality: o.Flags.Quality(),
		Value: point.Engineering(v, p.Scale, p.Offset, p.Reverse),
	}
}
