// Package modbusmap is the Modbus side of the point model: the wire data types and
// byte orders of a mapping row (DESIGN §3) and the conversion between register
// contents and numbers. comsrv decodes with it and voltsim encodes with it, so both
// ends of a link agree by construction.
package modbusmap

import (
	"fmt"
	"strings"
)

// DataType is the encoding of a value on the wire.
type DataType uint8

const (
	Bool DataType = iota + 1
	Int16
	Uint16
	Int32
	Uint32
	Int64
	Uint64
	Float32
	Float64
)

var dataTypeNames = map[DataType]string{
	Bool: "bool", Int16: "int16", Uint16: "uint16", Int32: "int32", Uint32: "uint32",
	Int64: "int64", Uint64: "uint64", Float32: "float32", Float64: "float64",
}

// ParseDataType accepts the names of DESIGN §3 in any case, plus the common aliases
// of the original VoltageEMS tables (u16, i32, float, double, ...).
func ParseDataType(s string) (DataType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "bool", "boolean", "bit", "coil":
		return Bool, nil
	case "int16", "i16", "short":
		return Int16, nil
	case "uint16", "u16", "word", "ushort":
		return Uint16, nil
	case "int32", "i32", "int", "dint":
		return Int32, nil
	case "uint32", "u32", "uint", "dword", "udint":
		return Uint32, nil
	case "int64", "i64", "long":
		return Int64, nil
	case "uint64", "u64", "ulong":
		return Uint64, nil
	case "float32", "f32", "float", "real":
		return Float32, nil
	case "float64", "f64", "double", "lreal":
		return Float64, nil
	}
	return 0, fmt.Errorf("unknown data type %q (want bool, int16, uint16, int32, uint32, int64, uint64, float32 or float64)", s)
}

func (d DataType) String() string {
	if n, ok := dataTypeNames[d]; ok {
		return n
	}
	return fmt.Sprintf("DataType(%d)", uint8(d))
}

// Registers is the number of 16-bit registers a value of this type occupies
// (a bool occupies one register when it is read from a register).
func (d DataType) Registers() int {
	switch d {
	case Int32, Uint32, Float32:
		return 2
	case Int64, Uint64, Float64:
		return 4
	}
	return 1
}

// ByteOrder is the order of a value's bytes across its registers, written with
// letters where A is the most significant byte.
type ByteOrder uint8

const (
	AB       ByteOrder = iota + 1 // 16-bit, big endian (the Modbus default)
	BA                            // 16-bit, bytes swapped
	ABCD                          // 32-bit, big endian
	DCBA                          // 32-bit, little endian
	BADC                          // 32-bit, bytes swapped within each word
	CDAB                          // 32-bit, words swapped
	ABCDEFGH                      // 64-bit, big endian
	HGFEDCBA                      // 64-bit, little endian
	BADCFEHG                      // 64-bit, bytes swapped within each word
	GHEFCDAB                      // 64-bit, words reversed
)

var byteOrderNames = map[ByteOrder]string{
	AB: "AB", BA: "BA", ABCD: "ABCD", DCBA: "DCBA", BADC: "BADC", CDAB: "CDAB",
	ABCDEFGH: "ABCDEFGH", HGFEDCBA: "HGFEDCBA", BADCFEHG: "BADCFEHG", GHEFCDAB: "GHEFCDAB",
}

// ParseByteOrder accepts the orders of DESIGN §3 in any case. An empty string is 0,
// meaning "the default for the data type" (see ForType).
func ParseByteOrder(s string) (ByteOrder, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if s == "" {
		return 0, nil
	}
	for o, n := range byteOrderNames {
		if n == s {
			return o, nil
		}
	}
	return 0, fmt.Errorf("unknown byte order %q (want AB, BA, ABCD, DCBA, BADC, CDAB, ABCDEFGH, HGFEDCBA, BADCFEHG or GHEFCDAB)", s)
}

func (o ByteOrder) String() string {
	if n, ok := byteOrderNames[o]; ok {
		return n
	}
	return fmt.Sprintf("ByteOrder(%d)", uint8(o))
}

// Bytes is the width the order describes: 2, 4 or 8.
func (o ByteOrder) Bytes() int {
	return len(byteOrderNames[o])
}

// ForType resolves the byte order to use for data type d: 0 becomes the big-endian
// order of d's width; a 32-bit order given for a 64-bit type is widened the way
// devices apply it (ABCD→ABCDEFGH, DCBA→HGFEDCBA, BADC→BADCFEHG, CDAB→GHEFCDAB);
// a 16-bit order given for a 16-bit type or a bool is kept. Any other mismatch of
// widths is an error.
func ForType(o ByteOrder, d DataType) (ByteOrder, error) {
	width := d.Registers() * 2
	if o == 0 {
		switch width {
		case 2:
			return AB, nil
		case 4:
			return ABCD, nil
		default:
			return ABCDEFGH, nil
		}
	}
	if o.Bytes() == width {
		return o, nil
	}
	if width == 8 && o.Bytes() == 4 {
		return map[ByteOrder]ByteOrder{ABCD: ABCDEFGH, DCBA: HGFEDCBA, BADC: BADCFEHG, CDAB: GHEFCDAB}[o], nil
	}
	return 0, fmt.Errorf("byte order %s does not fit data type %s (%d bytes)", o, d, width)
}
