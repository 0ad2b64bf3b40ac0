package modbusmap

import (
	"errors"
	"fmt"
	"math"
)

// ErrNotFinite is returned (wrapped) by Decode when the registers hold a float NaN or
// infinity and by Encode when asked to write one. A driver marks such a point
// invalid instead of publishing a value no consumer can compare or store.
var ErrNotFinite = errors.New("not a finite number")

// ErrOutOfRange is returned (wrapped) by Encode when a value does not fit the data
// type. A command carrying such a value is rejected rather than silently wrapped.
var ErrOutOfRange = errors.New("out of range")

// Decode converts the registers of one value, as read from the wire, into its raw
// number. o may be 0 for the default order of d (see ForType). A bool read from a
// register is 1 when the register is non-zero.
//
// int64 and uint64 values travel as float64 like every other raw value. Beyond ±2^53
// a float64 cannot hold every integer, so such values lose their low bits: an energy
// counter stays accurate to well under one part in 10^15, which the point model
// accepts. A consequence is that the largest int64 and uint64 values decode to 2^63
// and 2^64, which Encode rejects as out of range.
func Decode(regs []uint16, d DataType, o ByteOrder) (float64, error) {
	o, err := resolve(d, o)
	if err != nil {
		return 0, fmt.Errorf("decode %s: %w", d, err)
	}
	if len(regs) != d.Registers() {
		return 0, fmt.Errorf("decode %s: want %d registers, got %d", d, d.Registers(), len(regs))
	}
	u := fromWire(regs, o)
	switch d {
	case Bool:
		if u != 0 {
			return 1, nil
		}
		return 0, nil
	case Int16:
		return float64(int16(u)), nil
	case Uint16:
		return float64(uint16(u)), nil
	case Int32:
		return float64(int32(u)), nil
	case Uint32:
		return float64(uint32(u)), nil
	case Int64:
		return float64(int64(u)), nil
	case Uint64:
		return float64(u), nil
	case Float32:
		v := float64(math.Float32frombits(uint32(u)))
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("decode %s %s %04X: %w", d, o, regs, ErrNotFinite)
		}
		return v, nil
	default: // Float64; resolve has rejected unknown types
		v := math.Float64frombits(u)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("decode %s %s %04X: %w", d, o, regs, ErrNotFinite)
		}
		return v, nil
	}
}

// Encode converts a raw number into the registers to write for data type d in order
// o (0 for the default of d). Integer types round half away from zero; a bool is 0
// for 0 and 1 for anything else.
func Encode(v float64, d DataType, o ByteOrder) ([]uint16, error) {
	o, err := resolve(d, o)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", d, err)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, fmt.Errorf("encode %v as %s: %w", v, d, ErrNotFinite)
	}
	var u uint64
	switch d {
	case Bool:
		if v != 0 {
			u = 1
		}
	case Float32:
		if math.Abs(v) > math.MaxFloat32 {
			return nil, fmt.Errorf("encode %v as %s: %w (magnitude above %g)", v, d, ErrOutOfRange, math.MaxFloat32)
		}
		u = uint64(math.Float32bits(float32(v)))
	case Float64:
		u = math.Float64bits(v)
	default:
		if u, err = encodeInt(v, d); err != nil {
			return nil, err
		}
	}
	return toWire(u, o), nil
}

// intRange holds the limits of the integer types as float64. hi is exclusive so that
// the 64-bit limits, which are not representable, are compared exactly.
var intRange = map[DataType]struct {
	lo, hi  float64
	loS, hS string // for the error message
}{
	Int16:  {math.MinInt16, math.MaxInt16 + 1, "-32768", "32767"},
	Uint16: {0, math.MaxUint16 + 1, "0", "65535"},
	Int32:  {math.MinInt32, math.MaxInt32 + 1, "-2147483648", "2147483647"},
	Uint32: {0, math.MaxUint32 + 1, "0", "4294967295"},
	Int64:  {math.MinInt64, -math.MinInt64, "-9223372036854775808", "9223372036854775807"},
	Uint64: {0, 2 * -math.MinInt64, "0", "18446744073709551615"},
}

func encodeInt(v float64, d DataType) (uint64, error) {
	r := math.Round(v) // half away from zero
	lim := intRange[d]
	if r < lim.lo || r >= lim.hi {
		return 0, fmt.Errorf("encode %v as %s: %w [%s, %s]", v, d, ErrOutOfRange, lim.loS, lim.hS)
	}
	if d == Uint64 {
		// Converting a float64 ≥ 2^63 to int64 is undefined; go straight to uint64.
		return uint64(r), nil
	}
	// Two's complement of the signed value; toWire uses only the low d.Registers()*16 bits.
	return uint64(int64(r)), nil
}

// DecodeBit reads bit (0 = least significant) of a register as 0 or 1. Bits outside
// 0–15 read as 0; mapping validation rejects them before a driver gets here.
func DecodeBit(reg uint16, bit int) float64 {
	if bit < 0 || bit > 15 {
		return 0
	}
	return float64(reg >> uint(bit) & 1)
}

// EncodeBit returns reg with bit (0 = least significant) set or cleared, for the
// read-modify-write of a bit inside a holding register. Bits outside 0–15 leave reg
// unchanged.
func EncodeBit(reg uint16, bit int, on bool) uint16 {
	if bit < 0 || bit > 15 {
		return reg
	}
	if on {
		return reg | 1<<uint(bit)
	}
	return reg &^ (1 << uint(bit))
}

// resolve checks d and resolves o to an order of d's exact width.
func resolve(d DataType, o ByteOrder) (ByteOrder, error) {
	if _, ok := dataTypeNames[d]; !ok {
		return 0, fmt.Errorf("unknown data type %d", uint8(d))
	}
	if o != 0 && o.Bytes() == 0 {
		return 0, fmt.Errorf("unknown byte order %d", uint8(o))
	}
	return ForType(o, d)
}

// The name of an order lists, in wire order (first register's high byte first), which
// byte of the value travels there: "CDAB" puts C, the third most significant byte,
// first. fromWire and toWire apply that table directly, so every order, present and
// future, is defined by its name alone.

// fromWire assembles the value's bytes into an integer whose most significant byte is
// A. o must have the width of regs.
func fromWire(regs []uint16, o ByteOrder) uint64 {
	name := byteOrderNames[o]
	var u uint64
	for i := range len(name) {
		b := byte(regs[i/2] >> (8 * (1 - i%2)))
		shift := 8 * (len(name) - 1 - int(name[i]-'A'))
		u |= uint64(b) << shift
	}
	return u
}

// toWire is the inverse of fromWire: it lays the low o.Bytes() bytes of u out as
// registers.
func toWire(u uint64, o ByteOrder) []uint16 {
	name := byteOrderNames[o]
	regs := make([]uint16, len(name)/2)
	for i := range len(name) {
		shift := 8 * (len(name) - 1 - int(name[i]-'A'))
		b := uint16(byte(u >> shift))
		regs[i/2] |= b << (8 * (1 - i%2))
	}
	return regs
}
