package modbusserver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	mb "github.com/simonvetter/modbus"
)

func TestCRC16KnownValue(t *testing.T) {
	// Modbus over serial line v1.02, §6.2.2 worked example: 02 07 → CRC 0x1241 (sent 41 12).
	if got := CRC16([]byte{0x02, 0x07}); got != 0x1241 {
		t.Fatalf("CRC16(02 07) = %04X, want 1241", got)
	}
	// Read holding registers 0..1 of slave 1: 01 03 00 00 00 01 → 84 0A.
	frame := AppendRTU(nil, 1, []byte{3, 0, 0, 0, 1})
	if want := []byte{1, 3, 0, 0, 0, 1, 0x84, 0x0A}; !bytes.Equal(frame, want) {
		t.Fatalf("frame % X, want % X", frame, want)
	}
}

func startRTUServer(t *testing.T, h Handler) *Server {
	t.Helper()
	s, err := ListenRTU("127.0.0.1:0", h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			t.Error("Serve did not return within 3 s of cancel")
		}
	})
	return s
}

func rtuClient(t *testing.T, url string, timeout time.Duration) *mb.ModbusClient {
	t.Helper()
	c, err := mb.NewClient(&mb.ClientConfiguration{URL: url, Timeout: timeout, Speed: 115200})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestRTUOverTCPServesAndSurvivesFaults reads and writes through a library client
// we did not write, then checks a CRC fault, a silent slave and an absent slave
// all fail only their own requests.
func TestRTUOverTCPServesAndSurvivesFaults(t *testing.T) {
	m := &memory{}
	m.regs[HoldingRegisters-1][3] = 0xBEEF
	s := startRTUServer(t, m)
	c := rtuClient(t, "rtuovertcp://"+s.Addr().String(), 300*time.Millisecond)
	_ = c.SetUnitId(1)
	if v, err := c.ReadRegister(3, mb.HOLDING_REGISTER); err != nil || v != 0xBEEF {
		t.Fatalf("read = %04X, %v; want BEEF", v, err)
	}
	if err := c.WriteRegisters(10, []uint16{1, 2, 3}); err != nil {
		t.Fatalf("write: %v", err)
	}
	if m.regs[HoldingRegisters-1][11] != 2 {
		t.Fatalf("write did not land: %v", m.regs[HoldingRegisters-1][10:13])
	}
	if _, err := c.ReadRegister(99, mb.HOLDING_REGISTER); !errors.Is(err, mb.ErrServerDeviceFailure) {
		t.Fatalf("exception: %v, want server device failure", err)
	}

	u := uint8(1)
	if err := s.SetFault(Fault{Mode: FaultCRC, Unit: &u}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadRegister(3, mb.HOLDING_REGISTER); !errors.Is(err, mb.ErrBadCRC) {
		t.Fatalf("CRC fault: %v, want bad crc", err)
	}
	if err := s.SetFault(Fault{Mode: FaultTimeout, Unit: &u}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadRegister(3, mb.HOLDING_REGISTER); !errors.Is(err, mb.ErrRequestTimedOut) {
		t.Fatalf("silent slave: %v, want a timeout", err)
	}
	_ = c.SetUnitId(7) // nobody on the bus answers for 7
	if _, err := c.ReadRegister(3, mb.HOLDING_REGISTER); !errors.Is(err, mb.ErrRequestTimedOut) {
		t.Fatalf("absent slave: %v, want a timeout", err)
	}
	_ = s.SetFault(Fault{Mode: FaultNone})
	_ = c.SetUnitId(1)
	if v, err := c.ReadRegister(3, mb.HOLDING_REGISTER); err != nil || v != 0xBEEF {
		t.Fatalf("after the faults: %04X, %v", v, err)
	}
	st := s.BusStats()
	if st.Violations != 0 || st.Unanswered != 2 || st.Requests != 7 {
		t.Fatalf("bus stats %+v, want 7 requests, 2 unanswered, no violations", st)
	}
}

// TestRTUBusViolationCounted sends a second request before the first one's answer,
// which would collide on an RS-485 bus.
func TestRTUBusViolationCounted(t *testing.T) {
	s := startRTUServer(t, &memory{})
	if err := s.SetFault(Fault{Mode: FaultDelay, Delay: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := AppendRTU(nil, 1, []byte{FuncReadHoldingRegisters, 0, 0, 0, 2})
	if _, err := c.Write(append(append([]byte(nil), req...), req...)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	answers := make([]byte, 2*9) // two answers of 2 registers: unit, fc, count, 4 bytes, CRC
	if _, err := io.ReadFull(c, answers); err != nil {
		t.Fatalf("read answers: %v", err)
	}
	if st := s.BusStats(); st.Violations != 1 || st.Requests != 2 {
		t.Fatalf("bus stats %+v, want 1 violation of 2 requests", st)
	}
}

// TestRTUBadFramesIgnored checks a request with a bad CRC and one with an unknown
// function code get no answer and do not desynchronise the next request.
func TestRTUBadFramesIgnored(t *testing.T) {
	m := &memory{}
	m.regs[InputRegisters-1][0] = 42
	s := startRTUServer(t, m)
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bad := AppendRTU(nil, 1, []byte{FuncReadInputRegisters, 0, 0, 0, 1})
	bad[len(bad)-1] ^= 1
	if _, err := c.Write(bad); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(AppendRTU(nil, 1, []byte{0x2B, 0x0E, 1, 0})); err != nil { // FC 43: length unknown here
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond) // the line must be silent for the skip to end: this is the silence, not a wait for a result
	good := AppendRTU(nil, 1, []byte{FuncReadInputRegisters, 0, 0, 0, 1})
	if _, err := c.Write(good); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 7)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read answer: %v", err)
	}
	if want := AppendRTU(nil, 1, []byte{FuncReadInputRegisters, 2, 0, 42}); !bytes.Equal(got, want) {
		t.Fatalf("answer % X, want % X", got, want)
	}
	if st := s.BusStats(); st.BadFrames != 2 || st.Requests != 1 {
		t.Fatalf("bus stats %+v, want 2 bad frames and 1 request", st)
	}
}

// TestRTUOverPTY serves a pseudo-terminal pair and reads it with the library's
// serial RTU client, which opens the slave side as its serial port.
func TestRTUOverPTY(t *testing.T) {
	p, err := OpenPTY()
	if err != nil {
		t.Fatalf("open a pseudo-terminal (needs /dev/ptmx and devpts): %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	m := &memory{}
	m.bits[Coils-1][5] = true
	m.regs[HoldingRegisters-1][0] = 1234
	s := NewStream(m, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeStream(ctx, p.Master) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ServeStream: %v", err)
			}
		case <-time.After(3 * time.Second):
			t.Error("ServeStream did not return")
		}
	})
	c := rtuClient(t, "rtu://"+p.SlavePath, time.Second)
	_ = c.SetUnitId(1)
	for range 3 {
		if v, err := c.ReadRegister(0, mb.HOLDING_REGISTER); err != nil || v != 1234 {
			t.Fatalf("read over the pty = %d, %v", v, err)
		}
		if b, err := c.ReadCoil(5); err != nil || !b {
			t.Fatalf("coil over the pty = %v, %v", b, err)
		}
	}
	if st := s.BusStats(); st.Violations != 0 || st.Requests != 6 {
		t.Fatalf("bus stats %+v", st)
	}
}

// FuzzRTURequest feeds arbitrary bytes to the RTU request reader: no panic, and
// every request it accepts re-encodes to the same bytes.
func FuzzRTURequest(f *testing.F) {
	f.Add(AppendRTU(nil, 1, []byte{3, 0, 0, 0, 10}))
	f.Add(AppendRTU(nil, 2, []byte{16, 0, 1, 0, 2, 4, 0, 1, 0, 2}))
	f.Add(AppendRTU(nil, 3, []byte{15, 0, 1, 0, 3, 1, 5}))
	f.Add([]byte{1, 0x2B, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for {
			unit, pdu, err := ReadRTURequest(r, nil)
			if err != nil {
				if errors.Is(err, ErrRTUFunction) {
					continue
				}
				return
			}
			if _, err := DecodePDU(unit, pdu); err != nil {
				var ex Exception
				if !errors.As(err, &ex) {
					t.Fatalf("decode error is not an exception: %v", err)
				}
			}
			frame := AppendRTU(nil, unit, pdu)
			if !bytes.Contains(b, frame) {
				t.Fatalf("accepted frame % X is not in the input", frame)
			}
		}
	})
}
