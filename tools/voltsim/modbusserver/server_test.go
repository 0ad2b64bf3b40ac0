package modbusserver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// memory is a Handler with 100 of each object for unit 1 and nothing else.
type memory struct {
	mu   sync.Mutex
	bits [4][100]bool
	regs [4][100]uint16
}

func (m *memory) check(unit uint8, addr, qty uint16) error {
	if unit != 1 {
		return GatewayTargetFailedToRespond
	}
	if int(addr)+int(qty) > 100 {
		return IllegalDataAddress
	}
	return nil
}

func (m *memory) ReadBits(unit uint8, a Area, addr, qty uint16) ([]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(unit, addr, qty); err != nil {
		return nil, err
	}
	return append([]bool(nil), m.bits[a-1][addr:addr+qty]...), nil
}

func (m *memory) ReadRegisters(unit uint8, a Area, addr, qty uint16) ([]uint16, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(unit, addr, qty); err != nil {
		return nil, err
	}
	if addr == 99 {
		return nil, errors.New("sensor unplugged") // anything but an Exception → 04
	}
	return append([]uint16(nil), m.regs[a-1][addr:addr+qty]...), nil
}

func (m *memory) WriteBits(unit uint8, addr uint16, v []bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(unit, addr, uint16(len(v))); err != nil {
		return err
	}
	copy(m.bits[Coils-1][addr:], v)
	return nil
}

func (m *memory) WriteRegisters(unit uint8, addr uint16, v []uint16) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(unit, addr, uint16(len(v))); err != nil {
		return err
	}
	copy(m.regs[HoldingRegisters-1][addr:], v)
	return nil
}

// startServer runs a Server on a random loopback port for the duration of the test.
func startServer(t *testing.T, h Handler, opts Options) *Server {
	t.Helper()
	s, err := Listen("127.0.0.1:0", h, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(2 * time.Second):
			t.Error("Serve did not return within 2 s of cancel")
		}
	})
	return s
}

func dial(t *testing.T, s *Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// roundTrip sends adu and returns the answer frame.
func roundTrip(t *testing.T, c net.Conn, adu []byte) []byte {
	t.Helper()
	if _, err := c.Write(adu); err != nil {
		t.Fatal(err)
	}
	return readFrame(t, c)
}

func readFrame(t *testing.T, c net.Conn) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	hdr := make([]byte, HeaderLen)
	if _, err := io.ReadFull(c, hdr); err != nil {
		t.Fatalf("read answer header: %v", err)
	}
	h, err := DecodeHeader(hdr)
	if err != nil {
		t.Fatalf("answer header: %v", err)
	}
	body := make([]byte, h.PDULen())
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatalf("read answer body: %v", err)
	}
	return append(hdr, body...)
}

func encode(t *testing.T, tid uint16, r Request) []byte {
	t.Helper()
	adu, err := EncodeRequest(tid, r)
	if err != nil {
		t.Fatal(err)
	}
	return adu
}

func TestServerReadWriteAndPipelining(t *testing.T) {
	m := &memory{}
	var logged []Request
	var logMu sync.Mutex
	s := startServer(t, m, Options{OnRequest: func(r Request) {
		logMu.Lock()
		logged = append(logged, r)
		logMu.Unlock()
	}})
	c := dial(t, s)

	// Two requests in one write: answered in order, each with its own transaction id.
	w1 := encode(t, 10, Request{Unit: 1, Function: FuncWriteMultipleRegisters, Address: 4, Quantity: 2, Registers: []uint16{0x0102, 0xA0B0}})
	r1 := encode(t, 11, Request{Unit: 1, Function: FuncReadHoldingRegisters, Address: 3, Quantity: 4})
	if _, err := c.Write(append(w1, r1...)); err != nil {
		t.Fatal(err)
	}
	if got, want := readFrame(t, c), []byte{0, 10, 0, 0, 0, 6, 1, 0x10, 0, 4, 0, 2}; !bytes.Equal(got, want) {
		t.Errorf("FC16 answer % X, want % X", got, want)
	}
	if got, want := readFrame(t, c), []byte{0, 11, 0, 0, 0, 11, 1, 0x03, 8, 0, 0, 0x01, 0x02, 0xA0, 0xB0, 0, 0}; !bytes.Equal(got, want) {
		t.Errorf("FC3 answer % X, want % X", got, want)
	}

	got := roundTrip(t, c, encode(t, 12, Request{Unit: 1, Function: FuncWriteSingleCoil, Address: 9, Quantity: 1, Bits: []bool{true}}))
	if want := []byte{0, 12, 0, 0, 0, 6, 1, 0x05, 0, 9, 0xFF, 0}; !bytes.Equal(got, want) {
		t.Errorf("FC5 answer % X, want % X", got, want)
	}
	got = roundTrip(t, c, encode(t, 13, Request{Unit: 1, Function: FuncReadCoils, Address: 1, Quantity: 10}))
	if want := []byte{0, 13, 0, 0, 0, 5, 1, 0x01, 2, 0x00, 0x01}; !bytes.Equal(got, want) {
		t.Errorf("FC1 answer % X, want % X (coil 9 is bit 8 of the answer)", got, want)
	}

	logMu.Lock()
	defer logMu.Unlock()
	if len(logged) != 4 || logged[1].Function != FuncReadHoldingRegisters || logged[1].Address != 3 || logged[1].Quantity != 4 {
		t.Errorf("OnRequest saw %+v", logged)
	}
}

func TestServerExceptions(t *testing.T) {
	s := startServer(t, &memory{}, Options{})
	c := dial(t, s)
	cases := []struct {
		name string
		adu  []byte
		want []byte // function|0x80, code
	}{
		{"unknown unit", encode(t, 1, Request{Unit: 7, Function: FuncReadInputRegisters, Address: 0, Quantity: 1}), []byte{0x84, 0x0B}},
		{"address beyond image", encode(t, 2, Request{Unit: 1, Function: FuncReadHoldingRegisters, Address: 98, Quantity: 5}), []byte{0x83, 0x02}},
		{"handler failure", encode(t, 3, Request{Unit: 1, Function: FuncReadHoldingRegisters, Address: 99, Quantity: 1}), []byte{0x83, 0x04}},
		{"unknown function", []byte{0, 4, 0, 0, 0, 2, 1, 0x2B}, []byte{0xAB, 0x01}},
		{"too many registers", []byte{0, 5, 0, 0, 0, 6, 1, 0x03, 0, 0, 0, 126}, []byte{0x83, 0x03}},
		{"too many bits", []byte{0, 6, 0, 0, 0, 6, 1, 0x02, 0, 0, 0x07, 0xD1}, []byte{0x82, 0x03}},
		{"bad coil value", []byte{0, 7, 0, 0, 0, 6, 1, 0x05, 0, 0, 0x00, 0x01}, []byte{0x85, 0x03}},
	}
	for _, tc := range cases {
		got := roundTrip(t, c, tc.adu)
		if !bytes.Equal(got[HeaderLen:], tc.want) || !bytes.Equal(got[:2], tc.adu[:2]) {
			t.Errorf("%s: answer % X, want PDU % X", tc.name, got, tc.want)
		}
	}
}

func TestServerClosesOnBrokenHeader(t *testing.T) {
	s := startServer(t, &memory{}, Options{})
	for name, garbage := range map[string][]byte{
		"http":       []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"length 300": {0, 1, 0, 0, 0x01, 0x2C, 1},
	} {
		c := dial(t, s)
		if _, err := c.Write(garbage); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, err := c.Read(make([]byte, 16)); err == nil {
			t.Errorf("%s: got %d bytes, want the connection closed", name, n)
		}
	}
	// The listener still serves well-formed clients afterwards.
	got := roundTrip(t, dial(t, s), encode(t, 1, Request{Unit: 1, Function: FuncReadInputRegisters, Address: 0, Quantity: 1}))
	if !bytes.Equal(got[HeaderLen:], []byte{0x04, 2, 0, 0}) {
		t.Errorf("answer after garbage: % X", got)
	}
}

func TestServerPerUnitFaultLeavesOtherUnits(t *testing.T) {
	s := startServer(t, &memory{}, Options{})
	c := dial(t, s)
	unit := uint8(1)
	if err := s.SetFault(Fault{Mode: FaultException, Unit: &unit, Exception: 0x06}); err != nil {
		t.Fatal(err)
	}
	got := roundTrip(t, c, encode(t, 1, Request{Unit: 1, Function: FuncReadHoldingRegisters, Address: 0, Quantity: 1}))
	if !bytes.Equal(got[HeaderLen:], []byte{0x83, 0x06}) {
		t.Errorf("unit 1 under fault: % X", got)
	}
	got = roundTrip(t, c, encode(t, 2, Request{Unit: 2, Function: FuncReadHoldingRegisters, Address: 0, Quantity: 1}))
	if !bytes.Equal(got[HeaderLen:], []byte{0x83, 0x0B}) {
		t.Errorf("unit 2 must be unaffected: % X", got)
	}
	if f := s.Faults(); len(f) != 1 || *f[0].Unit != 1 {
		t.Errorf("Faults() = %+v", f)
	}
	if err := s.SetFault(Fault{Mode: FaultNone}); err != nil {
		t.Fatal(err)
	}
	got = roundTrip(t, c, encode(t, 3, Request{Unit: 1, Function: FuncReadHoldingRegisters, Address: 0, Quantity: 1}))
	if !bytes.Equal(got[HeaderLen:], []byte{0x03, 2, 0, 0}) {
		t.Errorf("after clearing: % X", got)
	}
	if err := s.SetFault(Fault{Mode: "explode"}); err == nil {
		t.Error("unknown fault mode accepted")
	}
}

func TestServerConcurrentClients(t *testing.T) {
	s := startServer(t, &memory{}, Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		c := dial(t, s)
		wg.Go(func() {
			for j := range 50 {
				v := uint16(i*1000 + j)
				adu, _ := EncodeRequest(uint16(j), Request{Unit: 1, Function: FuncWriteSingleRegister, Address: uint16(i), Quantity: 1, Registers: []uint16{v}})
				if _, err := c.Write(adu); err != nil {
					errs <- err
					return
				}
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
				ans := make([]byte, 12)
				if _, err := io.ReadFull(c, ans); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(ans, adu) { // FC 6 echoes the request
					errs <- errors.New("FC6 answer is not an echo")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestServeReturnsOnCancelAndClosesConnections(t *testing.T) {
	s, err := Listen("127.0.0.1:0", &memory{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	c := dial(t, s)
	roundTrip(t, c, encode(t, 1, Request{Unit: 1, Function: FuncReadCoils, Address: 0, Quantity: 1}))
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Serve did not return within 2 s")
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("client connection still open after shutdown")
	}
	if _, err := net.Dial("tcp", s.Addr().String()); err == nil {
		t.Error("listener still accepting after shutdown")
	}
}
