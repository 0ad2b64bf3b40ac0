// RTU framing: the serial-line form of Modbus (unit id, PDU, CRC-16), served on a
// byte stream — a TCP connection from a client of a serial server (RTU over TCP)
// or the master side of a pseudo-terminal standing in for a serial port.
//
// A stream is one bus. The server checks the bus discipline a master must keep on
// RS-485: one request, then its answer, then the next request. A request that
// arrives while an earlier one is still waiting for its answer would collide on a
// real bus; it is served but counted in BusStats.Violations.

package modbusserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// CRC16 is the Modbus CRC (polynomial 0xA001 reflected, initial 0xFFFF). On the wire
// it goes low byte first.
func CRC16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 == 1 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// AppendRTU appends an RTU frame (unit, pdu, CRC) to dst.
func AppendRTU(dst []byte, unit uint8, pdu []byte) []byte {
	start := len(dst)
	dst = append(dst, unit)
	dst = append(dst, pdu...)
	crc := CRC16(dst[start:])
	return append(dst, byte(crc), byte(crc>>8))
}

// ErrRTUCRC marks a frame whose CRC does not match.
var ErrRTUCRC = errors.New("RTU frame CRC mismatch")

// ErrRTUFunction marks a request whose length cannot be known (an unsupported
// function code): its bytes are skipped up to the next silence.
var ErrRTUFunction = errors.New("RTU request with an unknown function code")

// maxRTUFrame bounds the buffer of one request: unit, function, address,
// quantity and byte count, as many bytes as a byte count can say, and the CRC. (A
// valid frame is at most 256 bytes; a larger byte count is read to stay in step and
// then refused by DecodePDU.)
const maxRTUFrame = 2 + 5 + 255 + 2

// ReadRTURequest reads one request frame from r and returns the unit and the PDU
// (function code and data, without the CRC). The frame's length follows from its
// function code, as on a serial line where only silence separates frames.
func ReadRTURequest(r io.Reader, buf []byte) (unit uint8, pdu []byte, err error) {
	if len(buf) < maxRTUFrame {
		buf = make([]byte, maxRTUFrame)
	}
	if _, err := io.ReadFull(r, buf[:2]); err != nil {
		return 0, nil, err
	}
	n := 2
	switch buf[1] {
	case FuncReadCoils, FuncReadDiscreteInputs, FuncReadHoldingRegisters, FuncReadInputRegisters,
		FuncWriteSingleCoil, FuncWriteSingleRegister:
		if _, err := io.ReadFull(r, buf[n:n+4]); err != nil {
			return 0, nil, noEOF(err)
		}
		n += 4
	case FuncWriteMultipleCoils, FuncWriteMultipleRegisters:
		if _, err := io.ReadFull(r, buf[n:n+5]); err != nil {
			return 0, nil, noEOF(err)
		}
		n += 5
		count := int(buf[n-1])
		if _, err := io.ReadFull(r, buf[n:n+count]); err != nil {
			return 0, nil, noEOF(err)
		}
		n += count
	default:
		return buf[0], buf[1:2], fmt.Errorf("%w %d", ErrRTUFunction, buf[1])
	}
	if _, err := io.ReadFull(r, buf[n:n+2]); err != nil {
		return 0, nil, noEOF(err)
	}
	if crc := CRC16(buf[:n]); byte(crc) != buf[n] || byte(crc>>8) != buf[n+1] {
		return buf[0], buf[1:n], ErrRTUCRC
	}
	return buf[0], buf[1:n], nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// BusStats counts what the RTU side of a server saw.
type BusStats struct {
	Requests   int64 `json:"requests"`   // well-framed requests with a good CRC
	Violations int64 `json:"violations"` // requests that arrived before the previous answer was sent
	BadFrames  int64 `json:"bad_frames"` // requests with a bad CRC or an unknown length, ignored
	Unanswered int64 `json:"unanswered"` // requests left without an answer (broadcast, absent slave, timeout fault)
}

// bus is the state of one RTU bus, shared by every stream of a server: a serial
// server has one serial line whatever number of TCP clients it accepts.
type bus struct {
	mu      sync.Mutex
	pending int // requests received and not yet answered (or dropped)
	stats   BusStats
}

func (b *bus) arrived() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stats.Requests++
	if b.pending > 0 {
		b.stats.Violations++
	}
	b.pending++
}

func (b *bus) finished(answered bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pending--
	if !answered {
		b.stats.Unanswered++
	}
}

func (b *bus) badFrame() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stats.BadFrames++
}

// BusStats returns the RTU bus counters.
func (s *Server) BusStats() BusStats {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	return s.bus.stats
}

// ListenRTU binds addr for RTU over TCP: a serial server whose TCP clients send
// RTU frames. Serve must follow, or Close.
func ListenRTU(addr string, h Handler, opts Options) (*Server, error) {
	s, err := Listen(addr, h, opts)
	if err != nil {
		return nil, err
	}
	s.rtu = true
	return s, nil
}

// NewStream builds a server with no listener, for ServeStream.
func NewStream(h Handler, opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = discardLogger()
	}
	return &Server{h: h, log: log, onRequest: opts.OnRequest, done: make(chan struct{}),
		conns: make(map[net.Conn]struct{}), rtu: true}
}

// ServeStream serves RTU requests read from rw (the master side of a
// pseudo-terminal, say) until ctx is done, rw fails, or Close is called. It closes
// rw before it returns.
func (s *Server) ServeStream(ctx context.Context, rw io.ReadWriteCloser) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = rw.Close()
		return nil
	}
	s.streams = append(s.streams, rw)
	s.wg.Add(1)
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	defer s.wg.Done()
	defer rw.Close()
	err := s.serveRTU(rw, s.log)
	if s.isClosed() {
		return nil
	}
	return err
}

// rtuRequest is a frame read off the bus, waiting for the responder.
type rtuRequest struct {
	unit uint8
	pdu  []byte
}

// serveRTU reads frames on one goroutine and answers them on another, so that a
// frame arriving while an answer is being prepared is seen when it arrives (and
// counted as a violation of the bus discipline) rather than when it is read.
func (s *Server) serveRTU(rw io.ReadWriter, log interface {
	Debug(string, ...any)
}) error {
	queue := make(chan rtuRequest, 16)
	readErr := make(chan error, 1)
	go func() {
		defer close(queue)
		buf := make([]byte, maxRTUFrame)
		for {
			unit, pdu, err := ReadRTURequest(rw, buf)
			switch {
			case errors.Is(err, ErrRTUCRC):
				s.bus.badFrame()
				continue
			case errors.Is(err, ErrRTUFunction):
				s.bus.badFrame()
				skipToSilence(rw)
				continue
			case err != nil:
				readErr <- err
				return
			}
			s.bus.arrived()
			select {
			case queue <- rtuRequest{unit: unit, pdu: append([]byte(nil), pdu...)}:
			default:
				s.bus.finished(false) // a master flooding the bus: the frame is lost, as on a wire
			}
		}
	}()
	var out []byte
	for req := range queue {
		answer, keep := s.respond(Header{Unit: req.unit}, req.pdu)
		if !keep {
			s.bus.finished(false)
			if s.ln == nil {
				continue // a serial line cannot be dropped: the drop fault is silence there
			}
			return errors.New("connection dropped by fault")
		}
		if answer == nil || req.unit == 0 || isAbsentUnit(answer) {
			// No answer: a broadcast, a silent fault, or a unit that is not on the bus.
			s.bus.finished(false)
			continue
		}
		out = AppendRTU(out[:0], req.unit, answer)
		if s.faultFor(req.unit).Mode == FaultCRC {
			out[len(out)-1] ^= 0xFF
		}
		s.bus.finished(true) // before the write: the master may send the moment it has the answer
		if _, err := rw.Write(out); err != nil {
			log.Debug("modbus RTU write failed", "err", err)
			return err
		}
	}
	return <-readErr
}

// isAbsentUnit reports the handler's "no such unit" answer: on a serial bus a
// slave that is not there says nothing.
func isAbsentUnit(pdu []byte) bool {
	return len(pdu) == 2 && pdu[0]&0x80 != 0 && Exception(pdu[1]) == GatewayTargetFailedToRespond
}

// skipToSilence discards bytes until the line has been quiet for a while, the only
// way to find the next frame after one whose length is unknown.
func skipToSilence(r io.Reader) {
	d, ok := r.(interface{ SetReadDeadline(time.Time) error })
	if !ok {
		return
	}
	buf := make([]byte, maxRTUFrame)
	for {
		_ = d.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := r.Read(buf); err != nil {
			break
		}
	}
	_ = d.SetReadDeadline(time.Time{})
}
