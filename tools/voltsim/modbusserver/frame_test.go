package modbusserver

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestDecodeFrameValid(t *testing.T) {
	cases := []Request{
		{Unit: 1, Function: FuncReadCoils, Address: 0, Quantity: MaxReadBits},
		{Unit: 2, Function: FuncReadDiscreteInputs, Address: 65535, Quantity: 1},
		{Unit: 3, Function: FuncReadHoldingRegisters, Address: 100, Quantity: MaxReadRegisters},
		{Unit: 4, Function: FuncReadInputRegisters, Address: 7, Quantity: 2},
		{Unit: 5, Function: FuncWriteSingleCoil, Address: 9, Quantity: 1, Bits: []bool{true}},
		{Unit: 5, Function: FuncWriteSingleCoil, Address: 9, Quantity: 1, Bits: []bool{false}},
		{Unit: 6, Function: FuncWriteSingleRegister, Address: 10, Quantity: 1, Registers: []uint16{0xBEEF}},
		{Unit: 7, Function: FuncWriteMultipleCoils, Address: 3, Quantity: 10,
			Bits: []bool{true, false, true, true, false, false, false, true, false, true}},
		{Unit: 8, Function: FuncWriteMultipleRegisters, Address: 65413, Quantity: MaxWriteRegisters,
			Registers: make([]uint16, MaxWriteRegisters)},
	}
	for _, want := range cases {
		adu, err := EncodeRequest(0x1234, want)
		if err != nil {
			t.Fatalf("encode %+v: %v", want, err)
		}
		h, got, err := DecodeFrame(adu)
		if err != nil {
			t.Fatalf("decode FC %d: %v", want.Function, err)
		}
		if h.Transaction != 0x1234 || h.Unit != want.Unit {
			t.Errorf("FC %d: header %+v", want.Function, h)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("FC %d: decoded %+v, want %+v", want.Function, got, want)
		}
	}
}

func TestDecodePDUExceptions(t *testing.T) {
	cases := []struct {
		name string
		pdu  []byte
		want Exception
	}{
		{"empty", nil, IllegalFunction},
		{"unknown function", []byte{0x2B, 0x0E, 0x01, 0x00}, IllegalFunction},
		{"short read", []byte{0x03, 0, 0, 0}, IllegalDataValue},
		{"long read", []byte{0x03, 0, 0, 0, 1, 0}, IllegalDataValue},
		{"zero registers", []byte{0x03, 0, 0, 0, 0}, IllegalDataValue},
		{"126 registers", []byte{0x04, 0, 0, 0, 126}, IllegalDataValue},
		{"2001 bits", []byte{0x01, 0, 0, 0x07, 0xD1}, IllegalDataValue},
		{"read past 65535", []byte{0x03, 0xFF, 0xFF, 0, 2}, IllegalDataAddress},
		{"coil value 0x1234", []byte{0x05, 0, 1, 0x12, 0x34}, IllegalDataValue},
		{"FC15 byte count off", []byte{0x0F, 0, 0, 0, 9, 1, 0xFF}, IllegalDataValue},
		{"FC15 1969 bits", append([]byte{0x0F, 0, 0, 0x07, 0xB1, 247}, make([]byte, 247)...), IllegalDataValue},
		{"FC16 missing data", []byte{0x10, 0, 0, 0, 2, 4, 0, 1}, IllegalDataValue},
		{"FC16 124 registers", append([]byte{0x10, 0, 0, 0, 124, 248}, make([]byte, 248)...), IllegalDataValue},
		{"FC16 past 65535", []byte{0x10, 0xFF, 0xFF, 0, 2, 4, 0, 1, 0, 2}, IllegalDataAddress},
	}
	for _, c := range cases {
		_, err := DecodePDU(1, c.pdu)
		var ex Exception
		if !errors.As(err, &ex) || ex != c.want {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func TestDecodeHeaderRejectsBrokenFrames(t *testing.T) {
	cases := map[string][]byte{
		"short":          {0, 1, 0, 0, 0},
		"protocol 1":     {0, 1, 0, 1, 0, 6, 1},
		"length 1":       {0, 1, 0, 0, 0, 1, 1},
		"length 255":     {0, 1, 0, 0, 0, 255, 1},
		"length 0xFFFF":  {0, 1, 0, 0, 0xFF, 0xFF, 1},
		"frame too long": {0, 1, 0, 0, 0, 2, 1, 3, 0},
	}
	for name, b := range cases {
		if _, _, err := DecodeFrame(b); !errors.Is(err, ErrFrame) {
			t.Errorf("%s: got %v, want ErrFrame", name, err)
		}
	}
}

// FuzzFrame feeds arbitrary bytes to the request decoder: it must never panic, must
// classify every failure as a frame error or an exception, and what it accepts must
// encode back to a frame that decodes to the same request.
func FuzzFrame(f *testing.F) {
	for _, r := range []Request{
		{Unit: 1, Function: FuncReadHoldingRegisters, Address: 0, Quantity: 10},
		{Unit: 1, Function: FuncWriteMultipleCoils, Address: 5, Quantity: 3, Bits: []bool{true, false, true}},
		{Unit: 9, Function: FuncWriteMultipleRegisters, Address: 1, Quantity: 2, Registers: []uint16{1, 2}},
	} {
		adu, err := EncodeRequest(7, r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(adu)
	}
	f.Fuzz(func(t *testing.T, adu []byte) {
		h, req, err := DecodeFrame(adu)
		if err != nil {
			var ex Exception
			if !errors.Is(err, ErrFrame) && !errors.As(err, &ex) {
				t.Fatalf("error is neither a frame error nor an exception: %v", err)
			}
			return
		}
		again, err := EncodeRequest(h.Transaction, req)
		if err != nil {
			t.Fatalf("re-encode accepted request %+v: %v", req, err)
		}
		if !bytes.Equal(again[:HeaderLen], adu[:HeaderLen]) {
			t.Fatalf("header changed: % X, was % X", again[:HeaderLen], adu[:HeaderLen])
		}
		_, req2, err := DecodeFrame(again)
		if err != nil || !reflect.DeepEqual(req, req2) {
			t.Fatalf("round trip: %+v → %+v (%v)", req, req2, err)
		}
	})
}
