package config

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/voltageems/voltage/shared/point"
)

// CANByteOrder is how a signal's bits lie in a frame, in DBC terms.
type CANByteOrder uint8

// Byte orders. The numbering is the DBC's: @1 is little-endian, @0 big-endian.
const (
	CANLittleEndian CANByteOrder = iota // Intel: start_bit is the least significant bit
	CANBigEndian                        // Motorola: start_bit is the most significant bit, bits counted saw-tooth
)

func (o CANByteOrder) String() string {
	if o == CANBigEndian {
		return "big_endian"
	}
	return "little_endian"
}

// ParseCANByteOrder accepts little_endian/intel/le/1 and big_endian/motorola/be/0,
// in any case.
func ParseCANByteOrder(s string) (CANByteOrder, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "little_endian", "little", "intel", "le", "1":
		return CANLittleEndian, nil
	case "big_endian", "big", "motorola", "be", "0":
		return CANBigEndian, nil
	}
	return 0, fmt.Errorf("byte order %q: want little_endian (intel) or big_endian (motorola)", s)
}

// CAN identifier limits.
const (
	CANMaxStandardID = 0x7FF
	CANMaxExtendedID = 0x1FFFFFFF
	canMaxDataBytes  = 8
)

// CANMapping is where a point lives on a CAN bus: one signal of one frame. The
// signal's physical value is raw × Scale + Offset (as in a DBC); the point table's
// own scale and offset apply on top of it (normally 1 and 0).
type CANMapping struct {
	ID       uint32 // the frame's identifier
	Extended bool   // 29-bit identifier
	StartBit uint8  // DBC numbering: LSB for little-endian, MSB for big-endian
	Length   uint8  // 1..64 bits
	Order    CANByteOrder
	Signed   bool
	Scale    float64
	Offset   float64
	// Signal names a DBC signal whose layout the driver fills in; empty when the
	// row gives the layout itself.
	Signal string
	Pos    Position
}

// Bits returns the frame bit positions of the signal from most to least
// significant, or an error when it does not fit an 8-byte frame.
func (m *CANMapping) Bits() ([]uint8, error) {
	if err := m.checkLayout(); err != nil {
		return nil, err
	}
	out := make([]uint8, m.Length)
	pos := m.msb()
	for i := range out {
		out[i] = pos
		pos = m.next(pos)
	}
	return out, nil
}

// checkLayout reports a signal that does not fit an 8-byte frame.
func (m *CANMapping) checkLayout() error {
	if m.Length == 0 || m.Length > 64 {
		return fmt.Errorf("bit_length %d: want 1..64", m.Length)
	}
	if m.Order == CANLittleEndian {
		if int(m.StartBit)+int(m.Length) > 8*canMaxDataBytes {
			return fmt.Errorf("little-endian signal of %d bits from bit %d runs past bit 63", m.Length, m.StartBit)
		}
		return nil
	}
	// Big-endian: the LSB lies Length-1 places after the MSB in frame order, where
	// the frame order of bit b is byte(b)*8 + 7 - b%8.
	if m.StartBit > 63 || int(m.StartBit/8)*8+7-int(m.StartBit%8)+int(m.Length)-1 > 63 {
		return fmt.Errorf("big-endian signal of %d bits from bit %d runs past the last byte", m.Length, m.StartBit)
	}
	return nil
}

// msb is the frame bit position of the most significant bit.
func (m *CANMapping) msb() uint8 {
	if m.Order == CANLittleEndian {
		return m.StartBit + m.Length - 1
	}
	return m.StartBit
}

// next is the position of the next less significant bit after pos.
func (m *CANMapping) next(pos uint8) uint8 {
	switch {
	case m.Order == CANLittleEndian:
		return pos - 1
	case pos%8 == 0:
		return pos + 15 // bit 0 of a byte is followed by bit 7 of the next one
	}
	return pos - 1
}

// Bytes is how many data bytes a frame needs to carry the signal.
func (m *CANMapping) Bytes() int {
	if m.checkLayout() != nil {
		return canMaxDataBytes + 1
	}
	if m.Order == CANLittleEndian {
		return (int(m.StartBit)+int(m.Length)-1)/8 + 1
	}
	last := int(m.StartBit/8)*8 + 7 - int(m.StartBit%8) + int(m.Length) - 1 // frame order of the LSB
	return last/8 + 1
}

// ErrCANShortFrame is returned by Decode for a frame too short for the signal.
var ErrCANShortFrame = errors.New("frame too short for the signal")

// DecodeRaw extracts the signal's integer value from frame data (its length is the
// frame's DLC), sign-extended when the signal is signed.
func (m *CANMapping) DecodeRaw(data []byte) (int64, uint64, error) {
	if err := m.checkLayout(); err != nil {
		return 0, 0, err
	}
	if need := m.Bytes(); len(data) < need {
		return 0, 0, fmt.Errorf("%w: needs %d bytes, frame has %d", ErrCANShortFrame, need, len(data))
	}
	var u uint64
	pos := m.msb()
	for range m.Length {
		u = u<<1 | uint64(data[pos/8]>>(pos%8)&1)
		pos = m.next(pos)
	}
	s := int64(u)
	if m.Signed && m.Length < 64 && u>>(m.Length-1)&1 == 1 {
		s = int64(u | ^uint64(0)<<m.Length)
	}
	return s, u, nil
}

// Decode returns the signal's physical value (raw × Scale + Offset).
func (m *CANMapping) Decode(data []byte) (float64, error) {
	s, u, err := m.DecodeRaw(data)
	if err != nil {
		return 0, err
	}
	raw := float64(u)
	if m.Signed {
		raw = float64(s)
	}
	return raw*m.scale() + m.Offset, nil
}

// Encode writes the physical value v into data (8 bytes), leaving the other bits
// alone. v is rounded to the nearest step; a value the signal cannot hold is an error.
func (m *CANMapping) Encode(data []byte, v float64) error {
	if err := m.checkLayout(); err != nil {
		return err
	}
	if need := m.Bytes(); len(data) < need {
		return fmt.Errorf("%w: needs %d bytes, frame has %d", ErrCANShortFrame, need, len(data))
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("value %v cannot be sent", v)
	}
	raw := math.Round((v - m.Offset) / m.scale())
	var u uint64
	if m.Signed {
		lo, hi := -math.Ldexp(1, int(m.Length)-1), math.Ldexp(1, int(m.Length)-1)-1
		if raw < lo || raw > hi {
			return fmt.Errorf("value %v is raw %v, outside the %d-bit signed range", v, raw, m.Length)
		}
		u = uint64(int64(raw))
	} else {
		hi := math.Ldexp(1, int(m.Length)) - 1
		if raw < 0 || raw > hi {
			return fmt.Errorf("value %v is raw %v, outside the %d-bit unsigned range", v, raw, m.Length)
		}
		if raw >= math.Ldexp(1, 63) {
			u = uint64(raw-math.Ldexp(1, 63)) | 1<<63
		} else {
			u = uint64(raw)
		}
	}
	pos := m.msb()
	for i := int(m.Length) - 1; i >= 0; i-- {
		if u>>uint(i)&1 == 1 {
			data[pos/8] |= 1 << (pos % 8)
		} else {
			data[pos/8] &^= 1 << (pos % 8)
		}
		pos = m.next(pos)
	}
	return nil
}

func (m *CANMapping) scale() float64 {
	if m.Scale == 0 {
		return 1
	}
	return m.Scale
}

// Validate checks the identifier and the layout.
func (m *CANMapping) Validate() error {
	switch {
	case m.Extended && m.ID > CANMaxExtendedID:
		return fmt.Errorf("can_id 0x%X exceeds the 29-bit maximum 0x1FFFFFFF", m.ID)
	case !m.Extended && m.ID > CANMaxStandardID:
		return fmt.Errorf("can_id 0x%X exceeds the 11-bit maximum 0x7FF of a standard frame", m.ID)
	}
	if _, err := m.Bits(); err != nil {
		return err
	}
	if m.Scale == 0 {
		return errors.New("scale must not be 0")
	}
	return nil
}

var canColumns = columns{
	allowed:  []string{"point_id", "can_id", "start_bit", "bit_length", "byte_order", "signed", "scale", "offset", "extended", "signal"},
	required: []string{"point_id"},
}

// parseCANMapping reads a CAN mapping table. A row gives either the layout
// (can_id, start_bit, bit_length and optionally the others) or a DBC signal name.
func parseCANMapping(path string, src []byte, l *errList) map[point.ID]*CANMapping {
	t := readCSV(path, src, canColumns, l)
	out := map[point.ID]*CANMapping{}
	firstLine := map[point.ID]int{}
	for i := range t.rows {
		r := &t.rows[i]
		rr := newRowReader(t, r, l)
		id := point.ID(rr.uint("point_id", math.MaxUint32, -1))
		if !rr.ok {
			continue
		}
		if line, dup := firstLine[id]; dup {
			l.add(t.fieldPos(r, "point_id"), "second mapping row for point_id %d (first on line %d); a point has exactly one", id, line)
			continue
		}
		firstLine[id] = r.line
		m := &CANMapping{Pos: t.rowPos(r), Signal: rr.str("signal"), Scale: rr.float("scale", 1), Offset: rr.float("offset", 0)}
		if m.Signal != "" && rr.str("can_id") == "" {
			if rr.ok {
				out[id] = m // the layout comes from the channel's DBC file
			}
			continue
		}
		m.ID = rr.canID("can_id")
		m.Extended = rr.bool("extended") || m.ID > CANMaxStandardID
		m.StartBit = uint8(rr.uint("start_bit", 63, -1))
		m.Length = uint8(rr.uint("bit_length", 64, -1))
		if m.Length == 0 && rr.ok {
			rr.fail("bit_length", "want 1..64, got 0")
		}
		if v := rr.str("byte_order"); v != "" {
			o, err := ParseCANByteOrder(v)
			if err != nil {
				rr.fail("byte_order", "%v", err)
			}
			m.Order = o
		}
		m.Signed = rr.bool("signed")
		if rr.ok && m.Scale == 0 {
			rr.fail("scale", "scale must not be 0")
		}
		if rr.ok {
			if err := m.Validate(); err != nil {
				rr.fail("start_bit", "%v", err)
			}
		}
		if rr.ok {
			out[id] = m
		}
	}
	return out
}

// canID parses a decimal or 0x-prefixed hexadecimal identifier.
func (rr *rowReader) canID(col string) uint32 {
	v := rr.str(col)
	if v == "" {
		rr.fail(col, "value required (or name a DBC signal in column signal)")
		return 0
	}
	base := 10
	if lv := strings.ToLower(v); strings.HasPrefix(lv, "0x") {
		v, base = v[2:], 16
	}
	n, err := strconv.ParseUint(v, base, 32)
	if err != nil || n > CANMaxExtendedID {
		rr.fail(col, "want an identifier 0..0x1FFFFFFF (decimal or 0x hex), got %q", rr.str(col))
		return 0
	}
	return uint32(n)
}

// loadProtocolMapping reads the mapping table of a CAN or GPIO channel for the
// points of one type and attaches each row to its point. Unlike Modbus, the table is
// optional (a CAN channel may take its layouts from a DBC file); the driver checks
// every point ends up mapped.
func loadProtocolMapping(ch *Channel, chDir string, typ point.Type, pt *pointTable, l *errList) {
	if ch.Protocol != ProtocolCAN && ch.Protocol != ProtocolGPIO {
		return
	}
	path := filepath.Join(chDir, "mapping", typ.Name()+"_mapping.csv")
	src, state := readFile(path, l)
	if state != fileOK {
		return
	}
	index := make(map[point.ID]int, len(pt.points))
	for i, p := range pt.points {
		index[p.ID] = i
	}
	attach := func(id point.ID, pos Position, set func(p *Point)) {
		i, ok := index[id]
		if !ok {
			if pt.settled(id) {
				l.add(pos, "point_id %d is not in %s", id, pt.path)
			}
			return
		}
		set(&pt.points[i])
	}
	if ch.Protocol == ProtocolCAN {
		for id, m := range parseCANMapping(path, src, l) {
			attach(id, m.Pos, func(p *Point) { p.CAN = m })
		}
		return
	}
	for id, m := range parseGPIOMapping(path, typ, src, l) {
		attach(id, m.Pos, func(p *Point) { p.GPIO = m })
	}
}
