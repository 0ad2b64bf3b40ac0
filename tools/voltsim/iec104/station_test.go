package iec104

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/wendy512/go-iecp5/asdu"

	"github.com/voltageems/voltage/shared/config"
)

// master is a bare controlling station speaking raw APCI, so the tests see the
// exact frames the station sends.
type master struct {
	t      *testing.T
	conn   net.Conn
	sendSN uint16
	recvSN uint16
}

func startStation(t *testing.T, cfg Config, onCmd func(Command)) *Station {
	t.Helper()
	st, err := Listen("127.0.0.1:0", Options{Config: cfg, OnCommand: onCmd})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("station did not stop within 5 s")
		}
	})
	return st
}

func dial(t *testing.T, st *Station) *master {
	t.Helper()
	c, err := net.DialTimeout("tcp", st.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	m := &master{t: t, conn: c}
	m.write(uFrame(uStartAct))
	if f := m.read(); !bytes.Equal(f, uFrame(uStartCon)) {
		t.Fatalf("STARTDT answered with % x", f)
	}
	return m
}

func (m *master) write(b []byte) {
	m.t.Helper()
	if _, err := m.conn.Write(b); err != nil {
		m.t.Fatal(err)
	}
}

// read returns the next frame, skipping S-frames.
func (m *master) read() []byte {
	m.t.Helper()
	for {
		_ = m.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		hdr := make([]byte, 2)
		if _, err := io.ReadFull(m.conn, hdr); err != nil {
			m.t.Fatalf("read: %v", err)
		}
		body := make([]byte, hdr[1])
		if _, err := io.ReadFull(m.conn, body); err != nil {
			m.t.Fatalf("read: %v", err)
		}
		if body[0]&0x03 == 0x01 {
			continue
		}
		if body[0]&0x01 == 0 {
			m.recvSN++
			m.write(sFrame(m.recvSN)) // acknowledge at once
		}
		return append(hdr, body...)
	}
}

// asdu reads the next I-frame and decodes it.
func (m *master) asdu() *asdu.ASDU {
	m.t.Helper()
	f := m.read()
	if f[2]&0x01 != 0 {
		m.t.Fatalf("expected an I-frame, got % x", f)
	}
	a := asdu.NewEmptyASDU(asdu.ParamsWide)
	if err := a.UnmarshalBinary(f[6:]); err != nil {
		m.t.Fatalf("ASDU % x: %v", f[6:], err)
	}
	return a
}

// Send implements asdu.Connect so the library's encoders build the requests.
func (m *master) Send(a *asdu.ASDU) error {
	b, err := a.MarshalBinary()
	if err != nil {
		return err
	}
	m.write(iFrame(m.sendSN, m.recvSN, b))
	m.sendSN++
	return nil
}
func (m *master) Params() *asdu.Params     { return asdu.ParamsWide }
func (m *master) UnderlyingConn() net.Conn { return m.conn }

var act = asdu.CauseOfTransmission{Cause: asdu.Activation}

func TestInterrogationAnswersInOrder(t *testing.T) {
	st := startStation(t, Config{}, nil)
	st.AddMonitor(Key{1, 10}, config.MMeTf1)
	st.AddMonitor(Key{1, 11}, config.MSpNa1)
	st.AddMonitor(Key{1, 12}, config.MItNa1)
	st.AddMonitor(Key{2, 10}, config.MMeNc1)
	for k, v := range map[Key]float64{{1, 10}: 1.5, {1, 11}: 1, {1, 12}: 99, {2, 10}: 7} {
		if err := st.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetQuality(Key{1, 11}, QualityInvalid); err != nil {
		t.Fatal(err)
	}
	m := dial(t, st)
	if err := asdu.InterrogationCmd(m, act, 1, asdu.QOIStation); err != nil {
		t.Fatal(err)
	}
	con := m.asdu()
	if con.Type != asdu.C_IC_NA_1 || con.Coa.Cause != asdu.ActivationCon || con.Coa.IsNegative {
		t.Fatalf("first answer %v, want a positive ActCon", con.Identifier)
	}
	if ioa, qoi := con.GetInterrogationCmd(); ioa != 0 || qoi != asdu.QOIStation {
		t.Errorf("ActCon carries ioa %d qoi %d, want the request's object (0, 20)", ioa, qoi)
	}
	got := map[asdu.TypeID]int{}
	for {
		a := m.asdu()
		if a.Type == asdu.C_IC_NA_1 {
			if a.Coa.Cause != asdu.ActivationTerm {
				t.Fatalf("got %v, want ActTerm", a.Identifier)
			}
			break
		}
		if a.Coa.Cause != asdu.InterrogatedByStation || a.CommonAddr != 1 {
			t.Errorf("data %v, want cause 20 for common address 1", a.Identifier)
		}
		got[a.Type]++
		switch a.Type {
		case asdu.M_ME_NC_1: // the time-tagged type is answered without its tag
			if v := a.GetMeasuredValueFloat(); v[0].Value != 1.5 {
				t.Errorf("float %v", v)
			}
		case asdu.M_SP_NA_1:
			if v := a.GetSinglePoint(); !v[0].Value || v[0].Qds&asdu.QDSInvalid == 0 {
				t.Errorf("single %+v, want ON with IV", v)
			}
		}
	}
	if got[asdu.M_ME_NC_1] != 1 || got[asdu.M_SP_NA_1] != 1 || len(got) != 2 {
		t.Errorf("answered with %v, want the float and the single point (no counters, no other station)", got)
	}
	if c := st.Counters(); c.Interrogations != 1 {
		t.Errorf("counters %+v", c)
	}

	// A spontaneous change goes out with its time tag.
	if err := st.Set(Key{1, 10}, 2.5); err != nil {
		t.Fatal(err)
	}
	a := m.asdu()
	if a.Type != asdu.M_ME_TF_1 || a.Coa.Cause != asdu.Spontaneous {
		t.Fatalf("spontaneous %v", a.Identifier)
	}
	if v := a.GetMeasuredValueFloat(); v[0].Value != 2.5 || time.Since(v[0].Time).Abs() > time.Minute {
		t.Errorf("spontaneous %+v", v)
	}
	// Values the type cannot carry are refused.
	if err := st.Set(Key{1, 11}, 2); err == nil {
		t.Error("single point 2 accepted")
	}
}

func TestCommandsConfirmedRefusedAndSelected(t *testing.T) {
	var mu sync.Mutex
	var executed []Command
	st := startStation(t, Config{}, func(c Command) {
		mu.Lock()
		executed = append(executed, c)
		mu.Unlock()
	})
	st.AddCommand(Key{1, 400}, config.CSeNc1, false)
	st.AddCommand(Key{1, 300}, config.CDcNa1, true)
	m := dial(t, st)

	sp := asdu.SetpointCommandFloatInfo{Ioa: 400, Value: 12.75}
	if err := asdu.SetpointCmdFloat(m, asdu.C_SE_NC_1, act, 1, sp); err != nil {
		t.Fatal(err)
	}
	for _, want := range []asdu.Cause{asdu.ActivationCon, asdu.ActivationTerm} {
		a := m.asdu()
		if a.Type != asdu.C_SE_NC_1 || a.Coa.Cause != want || a.Coa.IsNegative {
			t.Fatalf("got %v, want positive %d", a.Identifier, want)
		}
		// The confirmation repeats the whole object, not a truncated copy.
		if c := a.GetSetpointFloatCmd(); c.Ioa != 400 || c.Value != 12.75 {
			t.Errorf("confirmation carries %+v", c)
		}
	}
	mu.Lock()
	if len(executed) != 1 || executed[0].Raw != 12.75 || executed[0].Key != (Key{1, 400}) {
		t.Errorf("executed %+v", executed)
	}
	mu.Unlock()

	// Execute without select on an SBO object: negative ActCon.
	dc := asdu.DoubleCommandInfo{Ioa: 300, Value: 2}
	if err := asdu.DoubleCmd(m, asdu.C_DC_NA_1, act, 1, dc); err != nil {
		t.Fatal(err)
	}
	if a := m.asdu(); a.Coa.Cause != asdu.ActivationCon || !a.Coa.IsNegative {
		t.Fatalf("execute without select: %v, want negative ActCon", a.Identifier)
	}
	// Select, then execute: ActCon, ActCon, ActTerm.
	dc.Qoc.InSelect = true
	_ = asdu.DoubleCmd(m, asdu.C_DC_NA_1, act, 1, dc)
	if a := m.asdu(); a.Coa.Cause != asdu.ActivationCon || a.Coa.IsNegative || !a.GetDoubleCmd().Qoc.InSelect {
		t.Fatalf("select: %v", a.Identifier)
	}
	dc.Qoc.InSelect = false
	_ = asdu.DoubleCmd(m, asdu.C_DC_NA_1, act, 1, dc)
	for _, want := range []asdu.Cause{asdu.ActivationCon, asdu.ActivationTerm} {
		if a := m.asdu(); a.Coa.Cause != want || a.Coa.IsNegative {
			t.Fatalf("execute: %v, want %d", a.Identifier, want)
		}
	}

	// An injected refusal with a chosen cause, once.
	if err := st.RejectNext(&Key{1, 400}, uint8(asdu.UnknownIOA)); err != nil {
		t.Fatal(err)
	}
	_ = asdu.SetpointCmdFloat(m, asdu.C_SE_NC_1, act, 1, sp)
	if a := m.asdu(); a.Coa.Cause != asdu.UnknownIOA || !a.Coa.IsNegative {
		t.Fatalf("rejected: %v", a.Identifier)
	}
	_ = asdu.SetpointCmdFloat(m, asdu.C_SE_NC_1, act, 1, sp)
	if a := m.asdu(); a.Coa.Cause != asdu.ActivationCon || a.Coa.IsNegative {
		t.Fatalf("after the one-shot fault: %v", a.Identifier)
	}
	m.asdu() // ActTerm

	// Unknown object and unknown common address.
	_ = asdu.SetpointCmdFloat(m, asdu.C_SE_NC_1, act, 1, asdu.SetpointCommandFloatInfo{Ioa: 999})
	if a := m.asdu(); a.Coa.Cause != asdu.UnknownIOA || !a.Coa.IsNegative {
		t.Errorf("unknown ioa: %v", a.Identifier)
	}
	_ = asdu.SetpointCmdFloat(m, asdu.C_SE_NC_1, act, 9, sp)
	if a := m.asdu(); a.Coa.Cause != asdu.UnknownCA || !a.Coa.IsNegative {
		t.Errorf("unknown ca: %v", a.Identifier)
	}
}

func TestDropClosesAndRefuses(t *testing.T) {
	st := startStation(t, Config{}, nil)
	st.AddMonitor(Key{1, 1}, config.MSpNa1)
	m := dial(t, st)
	st.Drop(true)
	_ = m.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := m.conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after Drop")
	}
	c, err := net.Dial("tcp", st.Addr())
	if err == nil {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a new connection was served while dropping")
		}
		_ = c.Close()
	}
	st.ClearFaults()
	dial(t, st) // served again
}

func TestMalformedFramesCloseOnlyThatConnection(t *testing.T) {
	st := startStation(t, Config{}, nil)
	for _, frame := range [][]byte{
		{0x12, 0x04, 0, 0, 0, 0},       // wrong start byte
		{0x68, 0x02, 0, 0},             // length below the control field
		{0x68, 0x04, 0xff, 0, 0, 0},    // unknown U-frame
		iFrame(0, 0, []byte{13, 1, 3}), // I-frame before STARTDT
	} {
		c, err := net.Dial("tcp", st.Addr())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(frame)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		// EOF or a reset: either way the station closed it; a timeout means it did not.
		if _, err := io.ReadAll(c); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Errorf("% x: still open, want the station to close the connection", frame)
			}
		}
		_ = c.Close()
	}
	// Garbage inside an I-frame is answered, not fatal.
	m := dial(t, st)
	m.write(iFrame(0, 0, []byte{200, 1, 6, 0, 1, 0, 1, 0, 0}))
	m.sendSN++
	// The answer mirrors the request with cause 44 and P/N set.
	if f := m.read(); len(f) < 9 || f[6] != 200 || f[8] != 0x40|44 {
		t.Errorf("unknown type answered with % x, want type 200 cause 44 negative", f)
	}
}

func TestTestFrameKeepsIdleLinkAlive(t *testing.T) {
	st := startStation(t, Config{T1: time.Second, T3: time.Second}, nil)
	m := dial(t, st)
	if f := m.read(); !bytes.Equal(f, uFrame(uTestAct)) {
		t.Fatalf("idle link: % x, want TESTFR act", f)
	}
	m.write(uFrame(uTestCon))
	m.write(uFrame(uTestAct))
	for {
		f := m.read()
		if bytes.Equal(f, uFrame(uTestCon)) {
			break
		}
		if !bytes.Equal(f, uFrame(uTestAct)) {
			t.Fatalf("% x, want TESTFR con", f)
		}
		m.write(uFrame(uTestCon))
	}
	// Not answering a TESTFR closes the link after t1.
	for {
		_ = m.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := m.conn.Read(make([]byte, 64))
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the station kept a link whose TESTFR went unanswered")
		}
		if err != nil {
			break
		}
	}
}
