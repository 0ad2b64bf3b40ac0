package modbusmap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// pairs reads b as big-endian 16-bit registers, the way Modbus puts bytes on the wire.
func pairs(b []byte) []uint16 {
	regs := make([]uint16, len(b)/2)
	for i := range regs {
		regs[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return regs
}

// swapped reads b as 16-bit registers whose two bytes are exchanged.
func swapped(b []byte) []uint16 {
	regs := make([]uint16, len(b)/2)
	for i := range regs {
		regs[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return regs
}

// wireOf gives, for each byte order, the registers that carry the value whose bits
// are u, built from encoding/binary and the definitions in the task rather than from
// the codec's own table, so the two can disagree.
var wireOf = map[ByteOrder]func(u uint64) []uint16{
	AB:   func(u uint64) []uint16 { return []uint16{uint16(u)} },
	BA:   func(u uint64) []uint16 { return swapped(binary.BigEndian.AppendUint16(nil, uint16(u))) },
	ABCD: func(u uint64) []uint16 { return pairs(binary.BigEndian.AppendUint32(nil, uint32(u))) },
	DCBA: func(u uint64) []uint16 { return pairs(binary.LittleEndian.AppendUint32(nil, uint32(u))) },
	BADC: func(u uint64) []uint16 { return swapped(binary.BigEndian.AppendUint32(nil, uint32(u))) },
	CDAB: func(u uint64) []uint16 {
		r := pairs(binary.BigEndian.AppendUint32(nil, uint32(u)))
		slices.Reverse(r)
		return r
	},
	ABCDEFGH: func(u uint64) []uint16 { return pairs(binary.BigEndian.AppendUint64(nil, u)) },
	HGFEDCBA: func(u uint64) []uint16 { return pairs(binary.LittleEndian.AppendUint64(nil, u)) },
	BADCFEHG: func(u uint64) []uint16 { return swapped(binary.BigEndian.AppendUint64(nil, u)) },
	GHEFCDAB: func(u uint64) []uint16 {
		r := pairs(binary.BigEndian.AppendUint64(nil, u))
		slices.Reverse(r)
		return r
	},
}

// bitsOf gives the two's-complement or IEEE bits of v as data type d.
func bitsOf(v float64, d DataType) uint64 {
	switch d {
	case Bool, Uint16, Uint32, Uint64:
		return uint64(v)
	case Int16:
		return uint64(uint16(int16(v)))
	case Int32:
		return uint64(uint32(int32(v)))
	case Int64:
		return uint64(int64(v))
	case Float32:
		return uint64(math.Float32bits(float32(v)))
	case Float64:
		return math.Float64bits(v)
	}
	panic("unknown type in test")
}

// samples are values each type represents exactly, including both ends of its range.
var samples = map[DataType][]float64{
	Bool:    {0, 1},
	Int16:   {0, 1, -1, -2, 0x1234, math.MinInt16, math.MaxInt16},
	Uint16:  {0, 1, 0x1234, 0xFF00, math.MaxUint16},
	Int32:   {0, -2, 0x12345678, -0x12345678, math.MinInt32, math.MaxInt32},
	Uint32:  {0, 0x01020304, 0xFEDCBA98, math.MaxUint32},
	Int64:   {0, -2, 0x0001020304050607, -(1 << 53), 1 << 53, math.MinInt64},
	Uint64:  {0, 0x0001020304050607, 1 << 53, 1<<64 - 2048},
	Float32: {0, float64(float32(123.456)), -1.5, math.MaxFloat32, math.SmallestNonzeroFloat32},
	Float64: {0, 1, -123.456, math.MaxFloat64, math.SmallestNonzeroFloat64, math.Pi},
}

// ordersFor lists every order a user may give for d and the order it means on the wire.
func ordersFor(d DataType) map[ByteOrder]ByteOrder {
	switch d.Registers() {
	case 1:
		return map[ByteOrder]ByteOrder{0: AB, AB: AB, BA: BA}
	case 2:
		return map[ByteOrder]ByteOrder{0: ABCD, ABCD: ABCD, DCBA: DCBA, BADC: BADC, CDAB: CDAB}
	}
	return map[ByteOrder]ByteOrder{
		0: ABCDEFGH, ABCDEFGH: ABCDEFGH, HGFEDCBA: HGFEDCBA, BADCFEHG: BADCFEHG, GHEFCDAB: GHEFCDAB,
		ABCD: ABCDEFGH, DCBA: HGFEDCBA, BADC: BADCFEHG, CDAB: GHEFCDAB,
	}
}

func TestEveryTypeAndOrder(t *testing.T) {
	for d, values := range samples {
		for given, wire := range ordersFor(d) {
			for _, v := range values {
				name := fmt.Sprintf("%s/%s/%v", d, given, v)
				want := wireOf[wire](bitsOf(v, d))
				got, err := Encode(v, d, given)
				if err != nil {
					t.Errorf("%s: Encode: %v", name, err)
					continue
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s: Encode = %04X, want %04X", name, got, want)
				}
				back, err := Decode(want, d, given)
				if err != nil {
					t.Errorf("%s: Decode(%04X): %v", name, want, err)
					continue
				}
				if back != v {
					t.Errorf("%s: Decode(%04X) = %v, want %v", name, want, back, v)
				}
			}
		}
	}
}

func TestHandComputedVectors(t *testing.T) {
	f := float64(float32(123.456))
	for _, tc := range []struct {
		v    float64
		d    DataType
		o    ByteOrder
		regs []uint16
	}{
		{f, Float32, ABCD, []uint16{0x42F6, 0xE979}},
		{f, Float32, CDAB, []uint16{0xE979, 0x42F6}},
		{f, Float32, BADC, []uint16{0xF642, 0x79E9}},
		{f, Float32, DCBA, []uint16{0x79E9, 0xF642}},
		{f, Float32, 0, []uint16{0x42F6, 0xE979}},
		{-2, Int32, DCBA, []uint16{0xFEFF, 0xFFFF}},
		{-2, Int32, ABCD, []uint16{0xFFFF, 0xFFFE}},
		{0x01020304, Uint32, CDAB, []uint16{0x0304, 0x0102}},
		{-2, Int16, BA, []uint16{0xFEFF}},
		{0x1234, Uint16, BA, []uint16{0x3412}},
		{0x1234, Uint16, 0, []uint16{0x1234}},
		{1, Float64, ABCDEFGH, []uint16{0x3FF0, 0, 0, 0}},
		{1, Float64, HGFEDCBA, []uint16{0, 0, 0, 0xF03F}},
		{1, Float64, BADCFEHG, []uint16{0xF03F, 0, 0, 0}},
		{1, Float64, GHEFCDAB, []uint16{0, 0, 0, 0x3FF0}},
		// 0x0001020304050607 < 2^53, so float64 holds it exactly.
		{0x0001020304050607, Uint64, GHEFCDAB, []uint16{0x0607, 0x0405, 0x0203, 0x0001}},
		{0x0001020304050607, Uint64, CDAB, []uint16{0x0607, 0x0405, 0x0203, 0x0001}},
		{0x0001020304050607, Int64, DCBA, []uint16{0x0706, 0x0504, 0x0302, 0x0100}},
		{-0x0001020304050607, Int64, ABCDEFGH, []uint16{0xFFFE, 0xFDFC, 0xFBFA, 0xF9F9}},
		{-2, Int64, BADCFEHG, []uint16{0xFFFF, 0xFFFF, 0xFFFF, 0xFEFF}},
		{1, Bool, AB, []uint16{0x0001}},
		{1, Bool, BA, []uint16{0x0100}},
	} {
		name := fmt.Sprintf("%v %s %s", tc.v, tc.d, tc.o)
		got, err := Encode(tc.v, tc.d, tc.o)
		if err != nil || !slices.Equal(got, tc.regs) {
			t.Errorf("Encode(%s) = %04X, %v; want %04X", name, got, err, tc.regs)
		}
		back, err := Decode(tc.regs, tc.d, tc.o)
		if err != nil || back != tc.v {
			t.Errorf("Decode(%04X) as %s = %v, %v; want %v", tc.regs, name, back, err, tc.v)
		}
	}
}

func TestBool(t *testing.T) {
	for _, tc := range []struct {
		reg  uint16
		o    ByteOrder
		want float64
	}{{0, 0, 0}, {1, 0, 1}, {0x8000, AB, 1}, {0x0100, AB, 1}, {0xFFFF, BA, 1}, {0, BA, 0}} {
		if got, err := Decode([]uint16{tc.reg}, Bool, tc.o); err != nil || got != tc.want {
			t.Errorf("Decode(%04X, bool, %s) = %v, %v; want %v", tc.reg, tc.o, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		v    float64
		want uint16
	}{{0, 0}, {1, 1}, {5, 1}, {-0.1, 1}, {math.Copysign(0, -1), 0}} {
		if got, err := Encode(tc.v, Bool, 0); err != nil || !slices.Equal(got, []uint16{tc.want}) {
			t.Errorf("Encode(%v, bool) = %04X, %v; want [%04X]", tc.v, got, err, tc.want)
		}
	}
}

func TestEncodeRounding(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		d    DataType
		want float64
	}{
		{2.5, Int16, 3}, {-2.5, Int16, -3}, {2.49, Int16, 2}, {-2.49, Int16, -2},
		{0.5, Uint16, 1}, {-0.4, Uint16, 0}, {-32768.4, Int16, -32768}, {65535.4, Uint16, 65535},
		{1e6 + 0.5, Int32, 1e6 + 1}, {4294967294.5, Uint32, 4294967295},
	} {
		regs, err := Encode(tc.v, tc.d, 0)
		if err != nil {
			t.Errorf("Encode(%v, %s): %v", tc.v, tc.d, err)
			continue
		}
		if got, _ := Decode(regs, tc.d, 0); got != tc.want {
			t.Errorf("Encode(%v, %s) reads back as %v, want %v", tc.v, tc.d, got, tc.want)
		}
	}
}

func TestEncodeOutOfRange(t *testing.T) {
	for _, tc := range []struct {
		v         float64
		d         DataType
		mentioned string // the range the message must name
	}{
		{32768, Int16, "[-32768, 32767]"},
		{32767.5, Int16, "[-32768, 32767]"},
		{-32768.5, Int16, "[-32768, 32767]"},
		{65536, Uint16, "[0, 65535]"},
		{-0.5, Uint16, "[0, 65535]"},
		{-1, Uint16, "[0, 65535]"},
		{1 << 31, Int32, "[-2147483648, 2147483647]"},
		{-(1 << 31) - 1, Int32, "[-2147483648, 2147483647]"},
		{1 << 32, Uint32, "[0, 4294967295]"},
		{-1, Uint32, "[0, 4294967295]"},
		{1 << 63, Int64, "[-9223372036854775808, 9223372036854775807]"},
		{-(1 << 63) * 1.0000001, Int64, "[-9223372036854775808, 9223372036854775807]"},
		{1 << 64, Uint64, "[0, 18446744073709551615]"},
		{-1, Uint64, "[0, 18446744073709551615]"},
		{1e39, Float32, "3.4028234663852886e+38"},
		{-1e39, Float32, "3.4028234663852886e+38"},
	} {
		regs, err := Encode(tc.v, tc.d, 0)
		if !errors.Is(err, ErrOutOfRange) {
			t.Errorf("Encode(%v, %s) = %04X, %v; want ErrOutOfRange", tc.v, tc.d, regs, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.mentioned) {
			t.Errorf("Encode(%v, %s) error %q does not name the range %s", tc.v, tc.d, err, tc.mentioned)
		}
	}
}

func TestNotFinite(t *testing.T) {
	for _, tc := range []struct {
		regs []uint16
		d    DataType
	}{
		{[]uint16{0x7FC0, 0}, Float32},
		{[]uint16{0x7F80, 0}, Float32},
		{[]uint16{0xFF80, 0}, Float32},
		{[]uint16{0, 0x7FC0}, Float32}, // NaN once the words are put back in order
		{[]uint16{0x7FF8, 0, 0, 0}, Float64},
		{[]uint16{0xFFF0, 0, 0, 0}, Float64},
	} {
		o := ByteOrder(0)
		if tc.regs[0] == 0 {
			o = CDAB
		}
		if v, err := Decode(tc.regs, tc.d, o); !errors.Is(err, ErrNotFinite) {
			t.Errorf("Decode(%04X, %s, %s) = %v, %v; want ErrNotFinite", tc.regs, tc.d, o, v, err)
		}
	}
	for d := range samples {
		for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
			if regs, err := Encode(v, d, 0); !errors.Is(err, ErrNotFinite) {
				t.Errorf("Encode(%v, %s) = %04X, %v; want ErrNotFinite", v, d, regs, err)
			}
		}
	}
}

func TestWrongLength(t *testing.T) {
	for d := range samples {
		for _, n := range []int{0, d.Registers() - 1, d.Registers() + 1, 5} {
			if n == d.Registers() || n < 0 {
				continue
			}
			regs := make([]uint16, n)
			if v, err := Decode(regs, d, 0); err == nil {
				t.Errorf("Decode(%d registers, %s) = %v, want an error", n, d, v)
			} else if !strings.Contains(err.Error(), fmt.Sprintf("want %d registers, got %d", d.Registers(), n)) {
				t.Errorf("Decode(%d registers, %s): error %q does not say what was wrong", n, d, err)
			}
		}
	}
}

func TestOrderDoesNotFit(t *testing.T) {
	all := []ByteOrder{AB, BA, ABCD, DCBA, BADC, CDAB, ABCDEFGH, HGFEDCBA, BADCFEHG, GHEFCDAB}
	for d := range samples {
		valid := ordersFor(d)
		for _, o := range all {
			if _, ok := valid[o]; ok {
				continue
			}
			regs := make([]uint16, d.Registers())
			if _, err := Decode(regs, d, o); err == nil || !strings.Contains(err.Error(), "does not fit") {
				t.Errorf("Decode(%s, %s): err = %v, want a width mismatch", d, o, err)
			}
			if _, err := Encode(0, d, o); err == nil || !strings.Contains(err.Error(), "does not fit") {
				t.Errorf("Encode(%s, %s): err = %v, want a width mismatch", d, o, err)
			}
		}
	}
}

func TestUnknownTypeAndOrder(t *testing.T) {
	for _, d := range []DataType{0, 10, 255} {
		if _, err := Decode([]uint16{0}, d, 0); err == nil {
			t.Errorf("Decode with data type %d succeeded", d)
		}
		if _, err := Encode(0, d, 0); err == nil {
			t.Errorf("Encode with data type %d succeeded", d)
		}
	}
	if _, err := Decode([]uint16{0}, Uint16, 11); err == nil || !strings.Contains(err.Error(), "unknown byte order") {
		t.Errorf("Decode with byte order 11: err = %v, want unknown byte order", err)
	}
	if _, err := Encode(0, Uint16, 200); err == nil || !strings.Contains(err.Error(), "unknown byte order") {
		t.Errorf("Encode with byte order 200: err = %v, want unknown byte order", err)
	}
}

func TestBits(t *testing.T) {
	for _, tc := range []struct {
		reg  uint16
		bit  int
		want float64
	}{{0x0001, 0, 1}, {0x0001, 1, 0}, {0x8000, 15, 1}, {0x8000, 14, 0}, {0xFFFF, 16, 0}, {0xFFFF, -1, 0}, {0x0020, 5, 1}} {
		if got := DecodeBit(tc.reg, tc.bit); got != tc.want {
			t.Errorf("DecodeBit(%04X, %d) = %v, want %v", tc.reg, tc.bit, got, tc.want)
		}
	}
	for _, tc := range []struct {
		reg  uint16
		bit  int
		on   bool
		want uint16
	}{
		{0x0000, 0, true, 0x0001}, {0x0001, 0, false, 0x0000}, {0x1200, 15, true, 0x9200},
		{0xFFFF, 3, false, 0xFFF7}, {0x0008, 3, true, 0x0008}, {0x1234, 16, true, 0x1234}, {0x1234, -1, false, 0x1234},
	} {
		if got := EncodeBit(tc.reg, tc.bit, tc.on); got != tc.want {
			t.Errorf("EncodeBit(%04X, %d, %v) = %04X, want %04X", tc.reg, tc.bit, tc.on, got, tc.want)
		}
	}
	for bit := range 16 {
		reg := EncodeBit(0, bit, true)
		if DecodeBit(reg, bit) != 1 || reg != 1<<bit {
			t.Errorf("bit %d: EncodeBit gave %04X", bit, reg)
		}
	}
}
