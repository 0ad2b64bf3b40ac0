package can

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"go.einride.tech/can"
	"go.einride.tech/can/pkg/dbc"
	"go.einride.tech/can/pkg/descriptor"

	"github.com/voltageems/voltage/shared/config"
)

// testDBC has one signal of every kind: both byte orders, signed and unsigned,
// standard and extended identifiers, factors and offsets, odd sizes and positions.
const testDBC = `VERSION ""

BO_ 291 BMS_Status: 8 BMS
 SG_ SOC : 0|8@1+ (0.5,0) [0|100] "%" Vector__XXX
 SG_ PackCurrent : 8|16@1- (0.1,0) [-3276.8|3276.7] "A" Vector__XXX
 SG_ PackVoltage : 31|16@0+ (0.01,0) [0|655.35] "V" Vector__XXX
 SG_ Temperature : 47|12@0- (0.1,-40) [-244.8|164.7] "degC" Vector__XXX
 SG_ Contactor : 60|1@1+ (1,0) [0|1] "" Vector__XXX
 SG_ Odd : 52|5@0+ (1,0) [0|31] "" Vector__XXX

BO_ 2566844926 PCS_Command: 8 EMS
 SG_ PowerSetpoint : 7|24@0- (0.001,0) [-8388.608|8388.607] "kW" Vector__XXX
 SG_ Enable : 32|1@1+ (1,0) [0|1] "" Vector__XXX
 SG_ Limit : 40|20@1- (1,-100) [0|1] "" Vector__XXX
`

// einrideSignals parses the DBC with einride's parser and builds its signal
// descriptors, the decoder we did not write.
func einrideSignals(t testing.TB, src string) map[string]*descriptor.Signal {
	p := dbc.NewParser("test.dbc", []byte(src))
	if err := p.Parse(); err != nil {
		t.Fatal(err)
	}
	out := map[string]*descriptor.Signal{}
	for _, def := range p.Defs() {
		if msg, ok := def.(*dbc.MessageDef); ok {
			for _, s := range msg.Signals {
				out[string(s.Name)] = &descriptor.Signal{Name: string(s.Name), Start: uint8(s.StartBit), Length: uint8(s.Size),
					IsBigEndian: s.IsBigEndian, IsSigned: s.IsSigned, Scale: s.Factor, Offset: s.Offset}
			}
		}
	}
	return out
}

func writeDBC(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "bms.dbc")
	if err := os.WriteFile(path, []byte(testDBC), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestEncodedFramesDecodeThroughDBC encodes random values with the driver's codec
// (from the layouts LoadDBC derives) and decodes the frames with einride's DBC
// descriptors: the values must come back, in both byte orders, signed and unsigned.
func TestEncodedFramesDecodeThroughDBC(t *testing.T) {
	ours, err := LoadDBC(writeDBC(t))
	if err != nil {
		t.Fatal(err)
	}
	theirs := einrideSignals(t, testDBC)
	if s := ours["PCS_Command.PowerSetpoint"].Mapping; !s.Extended || s.ID != 2566844926-0x80000000 {
		t.Fatalf("extended id: %+v", s)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	kinds := map[string]bool{}
	for name, ref := range theirs {
		m := ours[name].Mapping
		kinds[m.Order.String()+map[bool]string{true: "/signed", false: "/unsigned"}[m.Signed]] = true
		for range 500 {
			// A random raw value the signal can hold, as a physical value.
			var raw float64
			if m.Signed {
				raw = float64(rng.Int64N(1<<m.Length) - 1<<(m.Length-1))
			} else {
				raw = float64(rng.Uint64N(1 << m.Length))
			}
			phys := raw*m.Scale + m.Offset
			var d can.Data
			for i := range d {
				d[i] = byte(rng.UintN(256)) // other bits must survive
			}
			before := d
			if err := m.Encode(d[:], phys); err != nil {
				t.Fatalf("%s: encode %v: %v", name, phys, err)
			}
			if got := ref.UnmarshalPhysical(d); math.Abs(got-phys) > 1e-9*max(1, math.Abs(phys)) {
				t.Fatalf("%s: encoded %v, einride decodes %v (frame % X)", name, phys, got, d[:])
			}
			if got, err := m.Decode(d[:]); err != nil || math.Abs(got-phys) > 1e-9*max(1, math.Abs(phys)) {
				t.Fatalf("%s: own decode %v, %v; want %v", name, got, err, phys)
			}
			bits, _ := m.Bits()
			mask := map[uint8]bool{}
			for _, b := range bits {
				mask[b] = true
			}
			for b := range uint8(64) {
				if !mask[b] && before.Bit(b) != d.Bit(b) {
					t.Fatalf("%s: encode changed bit %d outside the signal", name, b)
				}
			}
		}
	}
	for _, k := range []string{"little_endian/signed", "little_endian/unsigned", "big_endian/signed", "big_endian/unsigned"} {
		if !kinds[k] {
			t.Errorf("test DBC lacks a %s signal", k)
		}
	}
}

func TestEncodeRejectsValuesOutOfRange(t *testing.T) {
	m := config.CANMapping{StartBit: 0, Length: 8, Scale: 0.5}
	var d [8]byte
	for _, v := range []float64{-1, 128, math.NaN(), math.Inf(1)} {
		if err := m.Encode(d[:], v); err == nil {
			t.Errorf("unsigned 8-bit, scale 0.5: %v accepted", v)
		}
	}
	m.Signed = true
	if err := m.Encode(d[:], 64); err == nil {
		t.Error("signed 8-bit, scale 0.5: 64 (raw 128) accepted")
	}
	if err := m.Encode(d[:], -64); err != nil {
		t.Errorf("signed 8-bit: -64 (raw -128): %v", err)
	}
	if _, err := m.Decode(d[:0]); err == nil {
		t.Error("decode of an empty frame succeeded")
	}
}

// FuzzSignalDecode checks the decoder against einride's bit extraction for every
// layout that fits a frame, and that encoding what was decoded gives the bits back.
func FuzzSignalDecode(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8}, uint8(0), uint8(8), false, false)
	f.Add([]byte{0xFF, 0, 0x80, 0, 0, 0, 0, 1}, uint8(7), uint8(16), true, true)
	f.Add([]byte{0xAA}, uint8(63), uint8(64), true, false)
	f.Add([]byte{0x55, 0x55}, uint8(3), uint8(13), false, true)
	f.Fuzz(func(t *testing.T, data []byte, start, length uint8, bigEndian, signed bool) {
		m := config.CANMapping{StartBit: start, Length: length, Signed: signed, Scale: 1}
		if bigEndian {
			m.Order = config.CANBigEndian
		}
		s, u, err := m.DecodeRaw(data) // must not panic, whatever the input
		if err != nil || len(data) < 8 {
			return
		}
		var d can.Data
		copy(d[:], data)
		var want uint64
		if bigEndian {
			want = d.UnsignedBitsBigEndian(start, length)
		} else {
			want = d.UnsignedBitsLittleEndian(start, length)
		}
		if u != want {
			t.Fatalf("%+v: decoded %#x, einride %#x", m, u, want)
		}
		if signed && length < 64 {
			var ws int64
			if bigEndian {
				ws = d.SignedBitsBigEndian(start, length)
			} else {
				ws = d.SignedBitsLittleEndian(start, length)
			}
			if s != ws {
				t.Fatalf("%+v: signed %d, einride %d", m, s, ws)
			}
		}
		if length > 52 {
			return // beyond float64's exact integers the physical value rounds
		}
		phys, _ := m.Decode(data)
		out := make([]byte, 8)
		copy(out, data)
		if err := m.Encode(out, phys); err != nil {
			t.Fatalf("%+v: re-encode %v: %v", m, phys, err)
		}
		if string(out) != string(data[:8]) {
			t.Fatalf("%+v: re-encoded % X, was % X", m, out, data[:8])
		}
	})
}
