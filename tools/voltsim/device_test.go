package voltsim_test

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/tools/voltsim"
)

// valueBytes reorders the bytes of registers as they travel (first register's high
// byte first) into the value's big-endian bytes, following the byte order's name:
// the i-th letter says which value byte (A = most significant) travels at wire
// position i. It is the test's own decoder, independent of modbusmap.
func valueBytes(regs []uint16, order string) []byte {
	wire := make([]byte, 2*len(regs))
	for i, r := range regs {
		binary.BigEndian.PutUint16(wire[2*i:], r)
	}
	out := make([]byte, len(order))
	for i := range order {
		out[order[i]-'A'] = wire[i]
	}
	return out
}

func TestServesEveryDataTypeAndByteOrder(t *testing.T) {
	sim := startSim(t, writeSite(t, deviceSite), voltsim.Options{})
	cases := []struct {
		id     point.ID
		value  float64
		addr   uint16
		order  string
		decode func([]byte) float64
	}{
		{1, 54321, 0, "AB", func(b []byte) float64 { return float64(binary.BigEndian.Uint16(b)) }},
		{2, -1234, 1, "BA", func(b []byte) float64 { return float64(int16(binary.BigEndian.Uint16(b))) }},
		{3, 3_000_000_000, 2, "ABCD", func(b []byte) float64 { return float64(binary.BigEndian.Uint32(b)) }},
		{4, -123_456_789, 4, "CDAB", func(b []byte) float64 { return float64(int32(binary.BigEndian.Uint32(b))) }},
		{5, 3.5, 6, "DCBA", func(b []byte) float64 { return float64(math.Float32frombits(binary.BigEndian.Uint32(b))) }},
		{6, -1250.25, 8, "BADC", func(b []byte) float64 { return float64(math.Float32frombits(binary.BigEndian.Uint32(b))) }},
		{7, 1_234_567_890_123, 10, "ABCDEFGH", func(b []byte) float64 { return float64(binary.BigEndian.Uint64(b)) }},
		{8, -9_876_543_210, 14, "GHEFCDAB", func(b []byte) float64 { return float64(int64(binary.BigEndian.Uint64(b))) }},
		{9, math.Pi, 18, "HGFEDCBA", func(b []byte) float64 { return math.Float64frombits(binary.BigEndian.Uint64(b)) }},
		{10, -2.5e-7, 22, "BADCFEHG", func(b []byte) float64 { return math.Float64frombits(binary.BigEndian.Uint64(b)) }},
	}
	for _, c := range cases {
		must(t, sim.SetValue(1, point.Telemetry, c.id, c.value))
	}
	cl := client(t, sim.Addr(1), 1, time.Second)
	// One block read across all of them, as a poller merging neighbours would do.
	regs, err := cl.ReadRegisters(0, 26, modbus.HOLDING_REGISTER)
	must(t, err)
	for _, c := range cases {
		n := uint16(len(c.order) / 2)
		got := c.decode(valueBytes(regs[c.addr:c.addr+n], c.order))
		if got != c.value {
			t.Errorf("T%d (%s at %d): registers %s decode to %v, want %v", c.id, c.order, c.addr, fmtRegs(regs[c.addr:c.addr+n]), got, c.value)
		}
		if v, err := sim.Value(1, point.Telemetry, c.id); err != nil || v != c.value {
			t.Errorf("Value(T%d) = %v, %v", c.id, v, err)
		}
	}

	// Scale and offset: engineering 12.3 = raw 523 × 0.1 − 40, in an input register.
	must(t, sim.SetValue(1, point.Telemetry, 11, 12.3))
	in, err := cl.ReadRegisters(26, 1, modbus.INPUT_REGISTER)
	must(t, err)
	if raw := int16(in[0]); raw != 523 {
		t.Errorf("scaled point: raw %d, want 523", raw)
	}
	must(t, sim.SetValue(1, point.Telemetry, 13, -0.75))
	in, err = cl.ReadRegisters(100, 2, modbus.INPUT_REGISTER)
	must(t, err)
	if got := math.Float32frombits(binary.BigEndian.Uint32(valueBytes(in, "CDAB"))); got != -0.75 {
		t.Errorf("input float32 CDAB: %v", got)
	}

	// Behind the gateway, slave 2 has its own register 0.
	must(t, sim.SetValue(1, point.Telemetry, 12, 777))
	c2 := client(t, sim.Addr(1), 2, time.Second)
	r2, err := c2.ReadRegisters(0, 1, modbus.HOLDING_REGISTER)
	must(t, err)
	if r2[0] != 777 || regs[0] != 54321 {
		t.Errorf("slave 2 register 0 = %d (want 777), slave 1 register 0 = %d (want 54321)", r2[0], regs[0])
	}

	// A value the wire type cannot hold is refused and changes nothing.
	if err := sim.SetValue(1, point.Telemetry, 2, 40000); err == nil {
		t.Error("SetValue accepted 40000 for an int16 point")
	}
	if v, _ := sim.Value(1, point.Telemetry, 2); v != -1234 {
		t.Errorf("refused SetValue changed the value to %v", v)
	}
	if err := sim.SetValue(1, point.Telemetry, 99, 1); err == nil {
		t.Error("SetValue of an unknown point succeeded")
	}
}

func TestBitsAndBitPositions(t *testing.T) {
	sim := startSim(t, writeSite(t, deviceSite), voltsim.Options{})
	cl := client(t, sim.Addr(1), 1, time.Second)

	// S5 has reverse: engineering 0 is raw 1 on the wire, from the start.
	di, err := cl.ReadDiscreteInputs(0, 7)
	must(t, err)
	if want := []bool{false, false, false, false, false, false, true}; !slices.Equal(di, want) {
		t.Errorf("initial discrete inputs %v, want %v", di, want)
	}
	must(t, sim.SetValue(1, point.Signal, 1, 1))
	must(t, sim.SetValue(1, point.Signal, 2, 1))
	must(t, sim.SetValue(1, point.Signal, 5, 1))
	di, err = cl.ReadDiscreteInputs(0, 7)
	must(t, err)
	if want := []bool{true, false, false, false, false, true, false}; !slices.Equal(di, want) {
		t.Errorf("discrete inputs %v, want %v", di, want)
	}

	must(t, sim.SetValue(1, point.Control, 2, 1))
	coils, err := cl.ReadCoils(0, 2)
	must(t, err)
	if want := []bool{false, true}; !slices.Equal(coils, want) {
		t.Errorf("coils %v, want %v", coils, want)
	}

	must(t, sim.SetValue(1, point.Signal, 3, 1))
	must(t, sim.SetValue(1, point.Signal, 4, 1))
	reg, err := cl.ReadRegister(30, modbus.HOLDING_REGISTER)
	must(t, err)
	if reg != 0x8008 {
		t.Errorf("register 30 with bits 3 and 15 set = %04X", reg)
	}
	must(t, sim.SetValue(1, point.Signal, 3, 0))
	if reg, err = cl.ReadRegister(30, modbus.HOLDING_REGISTER); err != nil || reg != 0x8000 {
		t.Errorf("register 30 after clearing bit 3 = %04X, %v", reg, err)
	}
}

func TestWritesAreDecodedAndRecordedOnce(t *testing.T) {
	sim := startSim(t, writeSite(t, deviceSite), voltsim.Options{})
	cl := client(t, sim.Addr(1), 1, time.Second)

	must(t, cl.WriteRegister(52, 7))                                                  // FC 6: A2 uint16
	must(t, cl.WriteRegisters(50, float32Regs(123.5)))                                // FC 16: A1 float32 ABCD, scale 0.1
	must(t, cl.WriteRegisters(53, []uint16{0xFFFE, 0xFFFF}))                          // FC 16: A3 int32 CDAB = -2 (low word first)
	must(t, cl.WriteCoil(0, true))                                                    // FC 5: C1
	must(t, cl.WriteCoils(0, []bool{false, true}))                                    // FC 15: C1 and C2
	must(t, cl.WriteRegister(40, 0x0004))                                             // FC 6: C3 is bit 2 of register 40
	must(t, cl.WriteRegister(1, uint16(binary.BigEndian.Uint16([]byte{0x30, 0x39})))) // T2, int16 BA: 0x3930 = 14640

	type w struct {
		typ point.Type
		id  point.ID
		v   float64
	}
	want := []w{
		{point.Adjustment, 2, 7}, {point.Adjustment, 1, 12.35}, {point.Adjustment, 3, -2},
		{point.Control, 1, 1}, {point.Control, 1, 0}, {point.Control, 2, 1}, {point.Control, 3, 1},
		{point.Telemetry, 2, 14640},
	}
	got := sim.Writes(1)
	if len(got) != len(want) {
		t.Fatalf("Writes: %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i, g := range got {
		if g.Type != want[i].typ || g.PointID != want[i].id || !near(g.Value, want[i].v, 1e-9) || g.At.IsZero() {
			t.Errorf("write %d = %+v, want %s%d = %v", i, g, want[i].typ, want[i].id, want[i].v)
		}
	}
	// The written values are the points' values now, and read back from the device.
	for _, c := range []w{{point.Adjustment, 2, 7}, {point.Adjustment, 1, 12.35}, {point.Control, 1, 0}, {point.Control, 3, 1}} {
		if v, _ := sim.Value(1, c.typ, c.id); !near(v, c.v, 1e-9) {
			t.Errorf("Value(%s%d) = %v, want %v", c.typ, c.id, v, c.v)
		}
	}
	if r, err := cl.ReadRegisters(50, 2, modbus.HOLDING_REGISTER); err != nil || !slices.Equal(r, float32Regs(123.5)) {
		t.Errorf("setpoint registers read back %v, %v", r, err)
	}
	// Writes to read-only areas do not exist in the protocol; writes outside the
	// served range are refused and recorded nowhere.
	if err := cl.WriteRegister(60, 1); !errors.Is(err, modbus.ErrIllegalDataAddress) {
		t.Errorf("write beyond the served range: %v", err)
	}
	if n := len(sim.Writes(1)); n != len(want) {
		t.Errorf("refused write was recorded (%d writes)", n)
	}
	sim.ResetWrites(1)
	if n := len(sim.Writes(1)); n != 0 {
		t.Errorf("%d writes after ResetWrites", n)
	}
}

func float32Regs(v float32) []uint16 {
	b := math.Float32bits(v)
	return []uint16{uint16(b >> 16), uint16(b)}
}

func TestExceptionsForUnservedAddressesAndUnits(t *testing.T) {
	sim := startSim(t, writeSite(t, deviceSite), voltsim.Options{})
	cl := client(t, sim.Addr(1), 1, time.Second)

	// Holding registers of slave 1 span 0..55 (the last point, A3, ends at 54).
	if _, err := cl.ReadRegisters(27, 3, modbus.HOLDING_REGISTER); err != nil {
		t.Errorf("gap inside the served range must read as zeros: %v", err)
	}
	for _, c := range []struct {
		name       string
		addr, n    uint16
		regType    modbus.RegType
		wantErrror error
	}{
		{"past the last point", 55, 1, modbus.HOLDING_REGISTER, modbus.ErrIllegalDataAddress},
		{"straddling the end", 54, 2, modbus.HOLDING_REGISTER, modbus.ErrIllegalDataAddress},
		{"below the first input register", 0, 1, modbus.INPUT_REGISTER, modbus.ErrIllegalDataAddress},
	} {
		if _, err := cl.ReadRegisters(c.addr, c.n, c.regType); !errors.Is(err, c.wantErrror) {
			t.Errorf("%s: %v, want %v", c.name, err, c.wantErrror)
		}
	}
	if _, err := cl.ReadDiscreteInputs(7, 1); !errors.Is(err, modbus.ErrIllegalDataAddress) {
		t.Errorf("discrete input past the last point: %v", err)
	}
	if _, err := cl.ReadRegisters(0, 126, modbus.HOLDING_REGISTER); err == nil {
		t.Error("126 registers in one read accepted")
	}

	c2 := client(t, sim.Addr(1), 2, time.Second)
	if _, err := c2.ReadCoils(0, 1); !errors.Is(err, modbus.ErrIllegalDataAddress) {
		t.Errorf("slave 2 has no coils: %v", err)
	}
	c7 := client(t, sim.Addr(1), 7, time.Second)
	if _, err := c7.ReadRegisters(0, 1, modbus.HOLDING_REGISTER); !errors.Is(err, modbus.ErrGWTargetFailedToRespond) {
		t.Errorf("unknown unit id: %v, want gateway target failed to respond", err)
	}
}

func TestRequestsAreCounted(t *testing.T) {
	sim := startSim(t, writeSite(t, deviceSite), voltsim.Options{})
	cl := client(t, sim.Addr(1), 1, time.Second)
	_, err := cl.ReadRegisters(0, 10, modbus.HOLDING_REGISTER)
	must(t, err)
	sim.ResetRequests(1)
	_, err = cl.ReadRegisters(2, 24, modbus.HOLDING_REGISTER)
	must(t, err)
	_, err = cl.ReadDiscreteInputs(0, 7)
	must(t, err)
	_, _ = cl.ReadRegisters(500, 1, modbus.INPUT_REGISTER) // exception, still a request
	must(t, cl.WriteRegister(52, 1))
	want := []voltsim.RequestLog{
		{Slave: 1, Function: 3, Address: 2, Count: 24},
		{Slave: 1, Function: 2, Address: 0, Count: 7},
		{Slave: 1, Function: 4, Address: 500, Count: 1},
		{Slave: 1, Function: 6, Address: 52, Count: 1},
	}
	if got := sim.Requests(1); !slices.Equal(got, want) {
		t.Errorf("Requests = %+v, want %+v", got, want)
	}
	if got := sim.Requests(2); len(got) != 0 {
		t.Errorf("channel 2 saw %d requests", len(got))
	}
}

func TestTwoListenersAndAddressBase(t *testing.T) {
	sim := startSim(t, writeSite(t, deviceSite), voltsim.Options{})
	if sim.Addr(1) == sim.Addr(2) || sim.Addr(1) == "" || sim.Addr(2) == "" {
		t.Fatalf("addresses %q and %q", sim.Addr(1), sim.Addr(2))
	}
	if sim.Addr(3) != "" || sim.Addr(4) != "" {
		t.Errorf("disabled / virtual channels are served: %q %q", sim.Addr(3), sim.Addr(4))
	}
	if n := len(sim.Channels()); n != 2 {
		t.Errorf("Channels() lists %d", n)
	}
	must(t, sim.SetValue(1, point.Telemetry, 1, 11))
	must(t, sim.SetValue(2, point.Telemetry, 1, 22))
	must(t, sim.SetValue(2, point.Telemetry, 2, -33))
	c1 := client(t, sim.Addr(1), 1, time.Second)
	c2 := client(t, sim.Addr(2), 1, time.Second)
	v1, err := c1.ReadRegister(0, modbus.HOLDING_REGISTER)
	must(t, err)
	// address_base 1: register 1 of the mapping is protocol address 0, 10 is 9.
	v2, err := c2.ReadRegister(0, modbus.HOLDING_REGISTER)
	must(t, err)
	in, err := c2.ReadRegisters(9, 2, modbus.INPUT_REGISTER)
	must(t, err)
	if v1 != 11 || v2 != 22 || int32(uint32(in[0])<<16|uint32(in[1])) != -33 {
		t.Errorf("channel 1 reg 0 = %d, channel 2 reg 0 = %d, input 9..10 = %v", v1, v2, in)
	}
}
