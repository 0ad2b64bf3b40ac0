package iec104

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/wendy512/go-iecp5/asdu"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
)

// capture is an asdu.Connect that keeps what is sent, so the library's own
// encoders produce the test frames.
type capture struct{ frames [][]byte }

func (c *capture) Params() *asdu.Params     { return asdu.ParamsWide }
func (c *capture) UnderlyingConn() net.Conn { return nil }
func (c *capture) Send(a *asdu.ASDU) error {
	b, err := a.MarshalBinary()
	if err != nil {
		return err
	}
	c.frames = append(c.frames, append([]byte(nil), b...))
	return nil
}

func encode(t testing.TB, send func(c asdu.Connect) error) []byte {
	t.Helper()
	c := &capture{}
	if err := send(c); err != nil {
		t.Fatal(err)
	}
	return c.frames[0]
}

var spont = asdu.CauseOfTransmission{Cause: asdu.Spontaneous}

func TestDecodeEveryMonitoringType(t *testing.T) {
	at := time.Date(2021, 3, 4, 5, 6, 7, 890e6, time.UTC)
	cases := []struct {
		name  string
		send  func(c asdu.Connect) error
		raw   float64
		flags Flags
		time  bool
	}{
		{"M_SP_NA_1", func(c asdu.Connect) error {
			return asdu.Single(c, false, spont, 1, asdu.SinglePointInfo{Ioa: 10, Value: true, Qds: asdu.QDSBlocked})
		}, 1, Flags{Blocked: true}, false},
		{"M_SP_TB_1", func(c asdu.Connect) error {
			return asdu.SingleCP56Time2a(c, spont, 1, asdu.SinglePointInfo{Ioa: 10, Value: false, Time: at})
		}, 0, Flags{}, true},
		{"M_DP_TB_1", func(c asdu.Connect) error {
			return asdu.DoubleCP56Time2a(c, spont, 1, asdu.DoublePointInfo{Ioa: 10, Value: asdu.DPIDeterminedOn, Time: at})
		}, 2, Flags{}, true},
		{"M_DP_NA_1 indeterminate", func(c asdu.Connect) error {
			return asdu.Double(c, false, spont, 1, asdu.DoublePointInfo{Ioa: 10, Value: asdu.DPIIndeterminate})
		}, 3, Flags{Indeterminate: true}, false},
		{"M_ST_NA_1", func(c asdu.Connect) error {
			return asdu.Step(c, false, spont, 1, asdu.StepPositionInfo{Ioa: 10, Value: asdu.StepPosition{Val: -7}})
		}, -7, Flags{}, false},
		{"M_BO_TB_1", func(c asdu.Connect) error {
			return asdu.BitString32CP56Time2a(c, spont, 1, asdu.BitString32Info{Ioa: 10, Value: 0xDEADBEEF, Time: at})
		}, 0xDEADBEEF, Flags{}, true},
		{"M_ME_NA_1", func(c asdu.Connect) error {
			return asdu.MeasuredValueNormal(c, false, spont, 1, asdu.MeasuredValueNormalInfo{Ioa: 10, Value: -16384, Qds: asdu.QDSOverflow})
		}, -0.5, Flags{Overflow: true}, false},
		{"M_ME_ND_1", func(c asdu.Connect) error {
			return asdu.MeasuredValueNormalNoQuality(c, false, spont, 1, asdu.MeasuredValueNormalInfo{Ioa: 10, Value: 8192})
		}, 0.25, Flags{}, false},
		{"M_ME_TE_1", func(c asdu.Connect) error {
			return asdu.MeasuredValueScaledCP56Time2a(c, spont, 1, asdu.MeasuredValueScaledInfo{Ioa: 10, Value: -300, Qds: asdu.QDSNotTopical, Time: at})
		}, -300, Flags{NotTopical: true}, true},
		{"M_ME_NC_1", func(c asdu.Connect) error {
			return asdu.MeasuredValueFloat(c, false, spont, 1, asdu.MeasuredValueFloatInfo{Ioa: 10, Value: 0.1, Qds: asdu.QDSInvalid})
		}, 0.1, Flags{Invalid: true}, false},
		{"M_ME_TF_1", func(c asdu.Connect) error {
			return asdu.MeasuredValueFloatCP56Time2a(c, spont, 1, asdu.MeasuredValueFloatInfo{Ioa: 10, Value: 230.7, Time: at})
		}, 230.7, Flags{}, true},
		{"M_IT_TB_1", func(c asdu.Connect) error {
			return asdu.IntegratedTotalsCP56Time2a(c, spont, 1, asdu.BinaryCounterReadingInfo{Ioa: 10,
				Value: asdu.BinaryCounterReading{CounterReading: -5, IsInvalid: true}, Time: at})
		}, -5, Flags{Invalid: true}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := DecodeBytes(encode(t, tc.send))
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) != 1 {
				t.Fatalf("%d objects", len(objs))
			}
			o := objs[0]
			if o.CA != 1 || o.IOA != 10 || o.Raw != tc.raw || o.Flags != tc.flags || o.Cause != asdu.Spontaneous {
				t.Errorf("got %+v, want raw %v flags %+v", o, tc.raw, tc.flags)
			}
			if tc.time != !o.Time.IsZero() || tc.time && !o.Time.Equal(at) {
				t.Errorf("time %v, want %v (tagged %v)", o.Time, at, tc.time)
			}
		})
	}
}

func TestSampleUsesDeviceTimeAndQuality(t *testing.T) {
	p := &config.Point{ID: 3, Type: point.Telemetry, Scale: 100, IEC104: &config.IEC104Mapping{TypeID: config.MMeNa1}}
	at := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	s := Sample(p, Object{Type: config.MMeTd1, Raw: 0.5, Time: at}, 42)
	if s.TS != at.UnixMilli() || s.Value != 50 || s.Raw != 0.5 || s.Quality != point.Good {
		t.Errorf("sample %+v, want device time, value 50", s)
	}
	s = Sample(p, Object{Type: config.MMeNa1, Raw: 0.5, Flags: Flags{Substituted: true}}, 42)
	if s.TS != 42 || s.Quality != point.Good {
		t.Errorf("sample %+v, want receive time and good (SB)", s)
	}
	dp := &config.Point{ID: 1, Type: point.Signal, Scale: 1, Reverse: true, IEC104: &config.IEC104Mapping{TypeID: config.MDpNa1}}
	if s := Sample(dp, Object{Type: config.MDpNa1, Raw: 2}, 0); s.Value != 0 || s.Raw != 2 {
		t.Errorf("double ON with reverse: %+v, want value 0 raw 2", s)
	}
	for f, want := range map[Flags]point.Quality{
		{}: point.Good, {Invalid: true}: point.Invalid, {Overflow: true}: point.Invalid,
		{NotTopical: true}: point.Stale, {Blocked: true}: point.Stale, {Substituted: true}: point.Good,
		{Indeterminate: true}: point.Invalid, {NotTopical: true, Invalid: true}: point.Invalid,
	} {
		if got := f.Quality(); got != want {
			t.Errorf("%+v → %s, want %s", f, got, want)
		}
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	good := encode(t, func(c asdu.Connect) error {
		return asdu.MeasuredValueFloat(c, false, spont, 1,
			asdu.MeasuredValueFloatInfo{Ioa: 1, Value: 1}, asdu.MeasuredValueFloatInfo{Ioa: 2, Value: 2})
	})
	for name, b := range map[string][]byte{
		"empty":              {},
		"short header":       good[:4],
		"objects cut off":    good[:len(good)-3],
		"zero objects":       append([]byte{good[0], 0}, good[2:]...),
		"unknown type":       append([]byte{200}, good[1:]...),
		"command, not data":  append([]byte{45}, good[1:]...),
		"number beyond data": append([]byte{good[0], 0x7f}, good[2:]...),
	} {
		if objs, err := DecodeBytes(b); err == nil {
			t.Errorf("%s: decoded %+v, want an error", name, objs)
		}
	}
	if _, err := DecodeBytes(append([]byte{45}, good[1:]...)); !errors.Is(err, errNotMonitoring) {
		t.Errorf("a command type: %v, want errNotMonitoring", err)
	}
}

func TestCommandValuesOutOfRange(t *testing.T) {
	c := &capture{}
	for _, tc := range []struct {
		typ config.IEC104TypeID
		raw float64
	}{
		{config.CSeNa1, 1}, {config.CSeNa1, -1.5}, {config.CSeNb1, 40000}, {config.CSeNc1, 1e300},
		{config.CRcNa1, 0}, {config.CBoNa1, -1}, {config.CBoNa1, 1.5}, {config.MMeNc1, 1},
	} {
		if err := sendCommandASDU(c, tc.typ, 1, 1, tc.raw, asdu.QualifierOfCommand{}); err == nil {
			t.Errorf("%s %v: sent, want an error", tc.typ, tc.raw)
		}
	}
	if len(c.frames) != 0 {
		t.Errorf("%d frames sent for invalid values", len(c.frames))
	}
	// Double command: ON is DCS 2, OFF is DCS 1 (IEC 60870-5-101 §7.2.6.16).
	for raw, want := range map[float64]byte{1: 2, 0: 1} {
		c.frames = nil
		if err := sendCommandASDU(c, config.CDcNa1, 1, 9, raw, asdu.QualifierOfCommand{InSelect: true}); err != nil {
			t.Fatal(err)
		}
		f := c.frames[0]
		if dcs := f[len(f)-1] & 0x03; dcs != want || f[len(f)-1]&0x80 == 0 {
			t.Errorf("double command %v: DCO 0x%02x, want DCS %d with S/E set", raw, f[len(f)-1], want)
		}
	}
}

// FuzzDecodeASDU feeds raw ASDUs into the driver's decoding path: it must never
// panic, and what it accepts must be addressable objects with a quality.
func FuzzDecodeASDU(f *testing.F) {
	at := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, send := range []func(c asdu.Connect) error{
		func(c asdu.Connect) error {
			return asdu.Single(c, true, spont, 1, asdu.SinglePointInfo{Ioa: 1, Value: true}, asdu.SinglePointInfo{Ioa: 2})
		},
		func(c asdu.Connect) error {
			return asdu.DoubleCP56Time2a(c, spont, 1, asdu.DoublePointInfo{Ioa: 10, Value: asdu.DPIDeterminedOn, Time: at})
		},
		func(c asdu.Connect) error {
			return asdu.MeasuredValueFloat(c, false, spont, 1, asdu.MeasuredValueFloatInfo{Ioa: 1, Value: 1.5})
		},
		func(c asdu.Connect) error {
			return asdu.MeasuredValueScaledCP56Time2a(c, spont, 1, asdu.MeasuredValueScaledInfo{Ioa: 1, Value: 7, Time: at})
		},
		func(c asdu.Connect) error {
			return asdu.IntegratedTotals(c, false, spont, 1, asdu.BinaryCounterReadingInfo{Ioa: 1})
		},
		func(c asdu.Connect) error {
			return asdu.BitString32(c, false, spont, 1, asdu.BitString32Info{Ioa: 1, Value: 5})
		},
		func(c asdu.Connect) error {
			return asdu.Step(c, false, spont, 1, asdu.StepPositionInfo{Ioa: 1, Value: asdu.StepPosition{Val: 3, HasTransient: true}})
		},
		func(c asdu.Connect) error {
			return asdu.MeasuredValueNormalNoQuality(c, true, spont, 1, asdu.MeasuredValueNormalInfo{Ioa: 1}, asdu.MeasuredValueNormalInfo{Ioa: 2})
		},
	} {
		f.Add(encode(f, send))
	}
	f.Add([]byte{})
	f.Add([]byte{13, 0x81, 3, 0, 1, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		objs, err := DecodeBytes(raw)
		if err != nil {
			if objs != nil {
				t.Fatalf("objects %v with error %v", objs, err)
			}
			return
		}
		p := &config.Point{ID: 1, Type: point.Telemetry, Scale: 1}
		for _, o := range objs {
			if o.IOA > 1<<24-1 {
				t.Fatalf("ioa %d does not fit three octets", o.IOA)
			}
			if config.IEC104TypeFamily(o.Type) == config.MDpNa1 && (o.Raw < 0 || o.Raw > 3) {
				t.Fatalf("double point raw %v", o.Raw)
			}
			s := Sample(p, o, 1)
			if s.Quality > point.CommLost || s.Quality == point.CommLost {
				t.Fatalf("quality %v", s.Quality)
			}
		}
	})
}
