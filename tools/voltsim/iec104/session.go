package iec104

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/wendy512/go-iecp5/asdu"
)

// APCI constants (IEC 60870-5-104 §5).
const (
	startByte = 0x68
	maxAPDU   = 253 // length octet: control field (4) + ASDU (≤ 249)

	uStartAct = 0x07
	uStartCon = 0x0B
	uStopAct  = 0x13
	uStopCon  = 0x23
	uTestAct  = 0x43
	uTestCon  = 0x83
)

// maxQueue bounds the I-frames waiting for the k window of one connection.
const maxQueue = 4096

// session is one controlling station's connection. The reader goroutine parses
// frames and handles ASDUs; the writer goroutine is the only one that writes to
// the connection: it sends control frames, then I-frames while the k window is
// open, and runs the t1/t2/t3 timers.
type session struct {
	st   *Station
	conn net.Conn

	mu        sync.Mutex
	active    bool     // STARTDT received
	ctrl      [][]byte // U and S frames to send, in order
	queue     [][]byte // ASDUs waiting for the window
	sendSN    uint16   // N(S) of the next I-frame
	ackSN     uint16   // oldest N(S) the peer has not acknowledged
	sentAt    []time.Time
	recvSN    uint16 // N(R): next I-frame expected
	unacked   int    // received I-frames not yet acknowledged
	recvSince time.Time
	lastRx    time.Time
	testSent  time.Time
	closed    bool

	wake chan struct{}
	done chan struct{}
}

func newSession(st *Station, conn net.Conn) *session {
	now := time.Now()
	return &session{st: st, conn: conn, lastRx: now, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// Params implements asdu.Connect.
func (s *session) Params() *asdu.Params { return asdu.ParamsWide }

// UnderlyingConn implements asdu.Connect.
func (s *session) UnderlyingConn() net.Conn { return s.conn }

// Send implements asdu.Connect: the ASDU is queued for the writer. It never
// blocks; a full queue drops the ASDU with an error.
func (s *session) Send(a *asdu.ASDU) error {
	raw, err := a.MarshalBinary()
	if err != nil {
		return err
	}
	b := append([]byte(nil), raw...)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	if len(s.queue) >= maxQueue {
		s.mu.Unlock()
		return errors.New("send queue full")
	}
	s.queue = append(s.queue, b)
	s.mu.Unlock()
	s.signal()
	return nil
}

func (s *session) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *session) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	_ = s.conn.Close()
}

// run serves the connection until it ends.
func (s *session) run() {
	var wg sync.WaitGroup
	wg.Go(s.write)
	s.read()
	s.close()
	close(s.done)
	wg.Wait()
}

func (s *session) read() {
	hdr := make([]byte, 2)
	for {
		if _, err := io.ReadFull(s.conn, hdr); err != nil {
			return
		}
		if hdr[0] != startByte || hdr[1] < 4 || hdr[1] > maxAPDU {
			s.st.log.Warn("iec104: malformed APCI, closing", "start", hdr[0], "length", hdr[1])
			return
		}
		body := make([]byte, hdr[1])
		if _, err := io.ReadFull(s.conn, body); err != nil {
			return
		}
		if err := s.frame(body); err != nil {
			s.st.log.Warn("iec104: closing connection", "err", err)
			return
		}
	}
}

// frame handles one APDU body (control field + ASDU).
func (s *session) frame(b []byte) error {
	now := time.Now()
	s.mu.Lock()
	s.lastRx = now
	switch {
	case b[0]&0x01 == 0: // I-frame
		ns := uint16(b[0])>>1 | uint16(b[1])<<7
		nr := uint16(b[2])>>1 | uint16(b[3])<<7
		if !s.active {
			s.mu.Unlock()
			return errors.New("I-frame before STARTDT")
		}
		if ns != s.recvSN {
			s.mu.Unlock()
			return fmt.Errorf("I-frame N(S) %d, expected %d", ns, s.recvSN)
		}
		if err := s.ackLocked(nr); err != nil {
			s.mu.Unlock()
			return err
		}
		s.recvSN = (s.recvSN + 1) & 0x7fff
		if s.unacked == 0 {
			s.recvSince = now
		}
		s.unacked++
		if s.unacked >= s.st.cfg.W {
			s.ctrl = append(s.ctrl, sFrame(s.recvSN))
			s.unacked = 0
		}
		s.mu.Unlock()
		s.signal()
		s.st.handleASDU(s, b[4:])
		return nil
	case b[0]&0x03 == 0x01: // S-frame
		nr := uint16(b[2])>>1 | uint16(b[3])<<7
		err := s.ackLocked(nr)
		s.mu.Unlock()
		s.signal()
		return err
	default: // U-frame
		defer s.signal()
		defer s.mu.Unlock()
		switch b[0] {
		case uStartAct:
			s.active = true
			s.ctrl = append(s.ctrl, uFrame(uStartCon))
		case uStopAct:
			s.active = false
			s.ctrl = append(s.ctrl, uFrame(uStopCon))
		case uTestAct:
			s.ctrl = append(s.ctrl, uFrame(uTestCon))
			s.st.mu.Lock()
			s.st.counters.TestFrames++
			s.st.mu.Unlock()
		case uTestCon:
			s.testSent = time.Time{}
		default:
			return fmt.Errorf("unknown U-frame 0x%02x", b[0])
		}
		return nil
	}
}

// ackLocked applies the peer's N(R): every I-frame before it is acknowledged.
func (s *session) ackLocked(nr uint16) error {
	outstanding := seqDiff(s.ackSN, s.sendSN)
	acked := seqDiff(s.ackSN, nr)
	if acked > outstanding {
		return fmt.Errorf("acknowledgement N(R) %d for frames not sent (next N(S) %d)", nr, s.sendSN)
	}
	s.sentAt = s.sentAt[acked:]
	s.ackSN = nr
	return nil
}

func seqDiff(from, to uint16) int { return int((to - from) & 0x7fff) }

// write sends what is queued and runs the timers.
func (s *session) write() {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	cfg := s.st.cfg
	for {
		select {
		case <-s.done:
			return
		case <-s.wake:
		case <-tick.C:
		}
		now := time.Now()
		s.mu.Lock()
		var out [][]byte
		out = append(out, s.ctrl...)
		s.ctrl = s.ctrl[:0]
		for s.active && len(s.queue) > 0 && seqDiff(s.ackSN, s.sendSN) < cfg.K {
			a := s.queue[0]
			s.queue = s.queue[1:]
			out = append(out, iFrame(s.sendSN, s.recvSN, a))
			s.sentAt = append(s.sentAt, now)
			s.sendSN = (s.sendSN + 1) & 0x7fff
			s.unacked = 0 // the I-frame carries N(R)
		}
		var fail error
		switch {
		case len(s.sentAt) > 0 && now.Sub(s.sentAt[0]) >= cfg.T1:
			fail = fmt.Errorf("I-frame not acknowledged within t1 (%s)", cfg.T1)
		case !s.testSent.IsZero() && now.Sub(s.testSent) >= cfg.T1:
			fail = fmt.Errorf("TESTFR not confirmed within t1 (%s)", cfg.T1)
		}
		if s.unacked > 0 && now.Sub(s.recvSince) >= cfg.T2 {
			out = append(out, sFrame(s.recvSN))
			s.unacked = 0
		}
		if s.testSent.IsZero() && now.Sub(s.lastRx) >= cfg.T3 {
			out = append(out, uFrame(uTestAct))
			s.testSent = now
		}
		s.mu.Unlock()
		if fail != nil {
			s.st.log.Warn("iec104: closing connection", "err", fail)
			s.close()
			return
		}
		for _, f := range out {
			_ = s.conn.SetWriteDeadline(time.Now().Add(cfg.T1))
			if _, err := s.conn.Write(f); err != nil {
				s.close()
				return
			}
		}
	}
}

func iFrame(ns, nr uint16, a []byte) []byte {
	b := make([]byte, 6, 6+len(a))
	b[0], b[1] = startByte, byte(4+len(a))
	b[2], b[3] = byte(ns<<1), byte(ns>>7)
	b[4], b[5] = byte(nr<<1), byte(nr>>7)
	return append(b, a...)
}

func sFrame(nr uint16) []byte {
	return []byte{startByte, 4, 0x01, 0x00, byte(nr << 1), byte(nr >> 7)}
}

func uFrame(f byte) []byte { return []byte{startByte, 4, f, 0, 0, 0} }
