// Package modbusserver is a Modbus TCP server written for the device simulator: it
// frames and decodes requests itself so that it can report the port it really bound,
// count every request, and misbehave on purpose (timeouts, exceptions, dropped
// connections, delays) the way field devices do.
//
// It serves function codes 1, 2, 3, 4, 5, 6, 15 and 16 to a Handler that owns the
// register image. Everything a client sends is treated as untrusted: a malformed PDU
// gets the exception the specification prescribes, a broken MBAP header closes the
// connection (the stream cannot be resynchronised), and nothing panics.
package modbusserver

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Function codes served.
const (
	FuncReadCoils              uint8 = 0x01
	FuncReadDiscreteInputs     uint8 = 0x02
	FuncReadHoldingRegisters   uint8 = 0x03
	FuncReadInputRegisters     uint8 = 0x04
	FuncWriteSingleCoil        uint8 = 0x05
	FuncWriteSingleRegister    uint8 = 0x06
	FuncWriteMultipleCoils     uint8 = 0x0F
	FuncWriteMultipleRegisters uint8 = 0x10
)

// Quantity limits of the Modbus application protocol specification v1.1b3.
const (
	MaxReadBits       = 2000
	MaxReadRegisters  = 125
	MaxWriteBits      = 1968
	MaxWriteRegisters = 123
)

// Exception is a Modbus exception code. It implements error so that a Handler can
// return it and have it sent to the client as is.
type Exception uint8

// Exception codes the server sends.
const (
	IllegalFunction              Exception = 0x01
	IllegalDataAddress           Exception = 0x02
	IllegalDataValue             Exception = 0x03
	ServerDeviceFailure          Exception = 0x04
	GatewayPathUnavailable       Exception = 0x0A
	GatewayTargetFailedToRespond Exception = 0x0B
)

func (e Exception) Error() string {
	switch e {
	case IllegalFunction:
		return "modbus exception 01: illegal function"
	case IllegalDataAddress:
		return "modbus exception 02: illegal data address"
	case IllegalDataValue:
		return "modbus exception 03: illegal data value"
	case ServerDeviceFailure:
		return "modbus exception 04: server device failure"
	case GatewayPathUnavailable:
		return "modbus exception 0A: gateway path unavailable"
	case GatewayTargetFailedToRespond:
		return "modbus exception 0B: gateway target device failed to respond"
	}
	return fmt.Sprintf("modbus exception %02X", uint8(e))
}

// ErrFrame marks a broken MBAP header: after one the byte stream cannot be trusted,
// so the connection is closed instead of answered.
var ErrFrame = errors.New("malformed MBAP frame")

// Sizes of the Modbus TCP application data unit.
const (
	HeaderLen = 7   // transaction, protocol, length, unit
	MaxPDULen = 253 // function code + at most 252 bytes of data
	maxLength = MaxPDULen + 1
)

// Header is the MBAP header of a Modbus TCP frame.
type Header struct {
	Transaction uint16
	Protocol    uint16 // always 0 for Modbus
	Length      uint16 // bytes that follow the length field: unit id + PDU
	Unit        uint8
}

// PDULen is the number of PDU bytes that follow the header.
func (h Header) PDULen() int { return int(h.Length) - 1 }

// DecodeHeader parses the 7-byte MBAP header. It rejects a protocol id other than 0
// and a length that cannot hold a PDU or exceeds the largest ADU.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("%w: header of %d bytes, want %d", ErrFrame, len(b), HeaderLen)
	}
	h := Header{
		Transaction: binary.BigEndian.Uint16(b[0:]),
		Protocol:    binary.BigEndian.Uint16(b[2:]),
		Length:      binary.BigEndian.Uint16(b[4:]),
		Unit:        b[6],
	}
	if h.Protocol != 0 {
		return h, fmt.Errorf("%w: protocol id %d, want 0", ErrFrame, h.Protocol)
	}
	if h.Length < 2 || h.Length > maxLength {
		return h, fmt.Errorf("%w: length %d outside 2..%d", ErrFrame, h.Length, maxLength)
	}
	return h, nil
}

// Request is one decoded request PDU.
type Request struct {
	Unit      uint8
	Function  uint8
	Address   uint16
	Quantity  uint16   // registers or bits addressed; 1 for FC 5 and 6
	Bits      []bool   // values of FC 5 (one) and FC 15
	Registers []uint16 // values of FC 6 (one) and FC 16
}

// DecodeFrame decodes one complete ADU (header and PDU, nothing more). A broken
// header is an ErrFrame; a well-framed but invalid PDU returns the Exception to
// answer with, together with the header and as much of the request as was read.
func DecodeFrame(adu []byte) (Header, Request, error) {
	h, err := DecodeHeader(adu)
	if err != nil {
		return h, Request{}, err
	}
	if len(adu)-HeaderLen != h.PDULen() {
		return h, Request{}, fmt.Errorf("%w: length field says %d PDU bytes, frame has %d", ErrFrame, h.PDULen(), len(adu)-HeaderLen)
	}
	r, err := DecodePDU(h.Unit, adu[HeaderLen:])
	return h, r, err
}

// DecodePDU decodes a request PDU addressed to unit. Errors are Exceptions, checked
// in the order the specification gives: function code (01), then quantity and byte
// count (03), then address range (02).
func DecodePDU(unit uint8, pdu []byte) (Request, error) {
	if len(pdu) == 0 {
		return Request{Unit: unit}, IllegalFunction
	}
	r := Request{Unit: unit, Function: pdu[0]}
	data := pdu[1:]
	switch r.Function {
	case FuncReadCoils, FuncReadDiscreteInputs, FuncReadHoldingRegisters, FuncReadInputRegisters:
		if len(data) != 4 {
			return r, IllegalDataValue
		}
		r.Address = binary.BigEndian.Uint16(data)
		r.Quantity = binary.BigEndian.Uint16(data[2:])
		limit := MaxReadRegisters
		if r.Function == FuncReadCoils || r.Function == FuncReadDiscreteInputs {
			limit = MaxReadBits
		}
		if r.Quantity == 0 || int(r.Quantity) > limit {
			return r, IllegalDataValue
		}
	case FuncWriteSingleCoil:
		if len(data) != 4 {
			return r, IllegalDataValue
		}
		r.Address = binary.BigEndian.Uint16(data)
		r.Quantity = 1
		switch v := binary.BigEndian.Uint16(data[2:]); v {
		case 0xFF00:
			r.Bits = []bool{true}
		case 0x0000:
			r.Bits = []bool{false}
		default:
			return r, IllegalDataValue
		}
	case FuncWriteSingleRegister:
		if len(data) != 4 {
			return r, IllegalDataValue
		}
		r.Address = binary.BigEndian.Uint16(data)
		r.Quantity = 1
		r.Registers = []uint16{binary.BigEndian.Uint16(data[2:])}
	case FuncWriteMultipleCoils:
		if len(data) < 5 {
			return r, IllegalDataValue
		}
		r.Address = binary.BigEndian.Uint16(data)
		r.Quantity = binary.BigEndian.Uint16(data[2:])
		n := int(data[4])
		if r.Quantity == 0 || r.Quantity > MaxWriteBits || n != (int(r.Quantity)+7)/8 || len(data) != 5+n {
			return r, IllegalDataValue
		}
		r.Bits = unpackBits(data[5:], int(r.Quantity))
	case FuncWriteMultipleRegisters:
		if len(data) < 5 {
			return r, IllegalDataValue
		}
		r.Address = binary.BigEndian.Uint16(data)
		r.Quantity = binary.BigEndian.Uint16(data[2:])
		n := int(data[4])
		if r.Quantity == 0 || r.Quantity > MaxWriteRegisters || n != 2*int(r.Quantity) || len(data) != 5+n {
			return r, IllegalDataValue
		}
		r.Registers = make([]uint16, r.Quantity)
		for i := range r.Registers {
			r.Registers[i] = binary.BigEndian.Uint16(data[5+2*i:])
		}
	default:
		return r, IllegalFunction
	}
	if int(r.Address)+int(r.Quantity) > 0x10000 {
		return r, IllegalDataAddress
	}
	return r, nil
}

// EncodeRequest builds the ADU a client sends for r. It is the inverse of
// DecodeFrame, used by tests and the fuzz target to check the decoder.
func EncodeRequest(transaction uint16, r Request) ([]byte, error) {
	pdu := []byte{r.Function}
	switch r.Function {
	case FuncReadCoils, FuncReadDiscreteInputs, FuncReadHoldingRegisters, FuncReadInputRegisters:
		pdu = binary.BigEndian.AppendUint16(pdu, r.Address)
		pdu = binary.BigEndian.AppendUint16(pdu, r.Quantity)
	case FuncWriteSingleCoil:
		if len(r.Bits) != 1 {
			return nil, fmt.Errorf("encode FC 5: want 1 bit, got %d", len(r.Bits))
		}
		v := uint16(0)
		if r.Bits[0] {
			v = 0xFF00
		}
		pdu = binary.BigEndian.AppendUint16(pdu, r.Address)
		pdu = binary.BigEndian.AppendUint16(pdu, v)
	case FuncWriteSingleRegister:
		if len(r.Registers) != 1 {
			return nil, fmt.Errorf("encode FC 6: want 1 register, got %d", len(r.Registers))
		}
		pdu = binary.BigEndian.AppendUint16(pdu, r.Address)
		pdu = binary.BigEndian.AppendUint16(pdu, r.Registers[0])
	case FuncWriteMultipleCoils:
		packed := packBits(r.Bits)
		if len(packed) > 255 {
			return nil, fmt.Errorf("encode FC 15: %d bits do not fit one request", len(r.Bits))
		}
		pdu = binary.BigEndian.AppendUint16(pdu, r.Address)
		pdu = binary.BigEndian.AppendUint16(pdu, uint16(len(r.Bits)))
		pdu = append(pdu, byte(len(packed)))
		pdu = append(pdu, packed...)
	case FuncWriteMultipleRegisters:
		if 2*len(r.Registers) > 255 {
			return nil, fmt.Errorf("encode FC 16: %d registers do not fit one request", len(r.Registers))
		}
		pdu = binary.BigEndian.AppendUint16(pdu, r.Address)
		pdu = binary.BigEndian.AppendUint16(pdu, uint16(len(r.Registers)))
		pdu = append(pdu, byte(2*len(r.Registers)))
		for _, v := range r.Registers {
			pdu = binary.BigEndian.AppendUint16(pdu, v)
		}
	default:
		return nil, fmt.Errorf("encode: function code %d not supported", r.Function)
	}
	if len(pdu) > MaxPDULen {
		return nil, fmt.Errorf("encode FC %d: PDU of %d bytes exceeds %d", r.Function, len(pdu), MaxPDULen)
	}
	return appendADU(nil, transaction, r.Unit, pdu), nil
}

// appendADU appends the MBAP header and pdu to dst.
func appendADU(dst []byte, transaction uint16, unit uint8, pdu []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, transaction)
	dst = binary.BigEndian.AppendUint16(dst, 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(pdu)+1))
	dst = append(dst, unit)
	return append(dst, pdu...)
}

// packBits packs bits LSB first, as Modbus does for coils and discrete inputs.
func packBits(bits []bool) []byte {
	out := make([]byte, (len(bits)+7)/8)
	for i, on := range bits {
		if on {
			out[i/8] |= 1 << (i % 8)
		}
	}
	return out
}

// unpackBits is the inverse of packBits for the first n bits of b.
func unpackBits(b []byte, n int) []bool {
	out := make([]bool, n)
	for i := range out {
		out[i] = b[i/8]>>(i%8)&1 == 1
	}
	return out
}
