package modbusserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// Area is one of the four Modbus data areas.
type Area uint8

// The four areas, in the order of the function codes that read them.
const (
	Coils Area = iota + 1
	DiscreteInputs
	HoldingRegisters
	InputRegisters
)

func (a Area) String() string {
	switch a {
	case Coils:
		return "coils"
	case DiscreteInputs:
		return "discrete inputs"
	case HoldingRegisters:
		return "holding registers"
	case InputRegisters:
		return "input registers"
	}
	return fmt.Sprintf("Area(%d)", uint8(a))
}

// Handler owns the data behind a listener. Its methods are called concurrently from
// the goroutines of different connections and must be safe for that. Returning an
// Exception sends it to the client; any other error is logged and answered with
// ServerDeviceFailure. Quantities and address ranges are already checked against the
// protocol limits; the handler checks them against its own image.
type Handler interface {
	ReadBits(unit uint8, area Area, addr, qty uint16) ([]bool, error)
	ReadRegisters(unit uint8, area Area, addr, qty uint16) ([]uint16, error)
	WriteBits(unit uint8, addr uint16, values []bool) error
	WriteRegisters(unit uint8, addr uint16, values []uint16) error
}

// Options tune a Server.
type Options struct {
	Logger *slog.Logger // nil discards
	// OnRequest is called with every framed request before it is served, including
	// requests answered with an exception or swallowed by a fault. It runs on the
	// connection's goroutine and must not block.
	OnRequest func(Request)
}

// Server is one Modbus TCP listener. Connections are served concurrently, each one's
// requests sequentially, in the order they arrive.
type Server struct {
	h         Handler
	ln        net.Listener
	log       *slog.Logger
	onRequest func(Request)
	done      chan struct{} // closed by Close: wakes delayed answers

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	streams []io.ReadWriteCloser // ServeStream's
	faults  faults
	closed  bool
	wg      sync.WaitGroup // one per connection goroutine

	rtu bool // RTU framing (rtu.go) instead of MBAP
	bus bus  // RTU bus discipline and counters
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Listen binds addr ("host:port"; port 0 picks a free one). Serve must follow, or
// Close to release the port.
func Listen(addr string, h Handler, opts Options) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("modbus listen on %s: %w", addr, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		h: h, ln: ln, log: log.With("listen", ln.Addr().String()),
		onRequest: opts.OnRequest, done: make(chan struct{}),
		conns: make(map[net.Conn]struct{}),
	}, nil
}

// Addr is the address actually bound (nil for a stream server).
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Serve accepts connections until ctx is done or Close is called, then closes the
// listener and every connection and returns once all connection goroutines have
// exited. It returns nil after a shutdown and the accept error otherwise.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	defer s.wg.Wait()
	backoff := time.Duration(0)
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of descriptors and the like pass; wait instead of spinning.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("modbus accept failed, retrying", "err", err, "backoff", backoff)
				select {
				case <-time.After(backoff):
					continue
				case <-s.done:
					return nil
				}
			}
			_ = s.Close()
			return fmt.Errorf("modbus accept on %s: %w", s.Addr(), err)
		}
		backoff = 0
		if !s.track(c) {
			_ = c.Close() // shutting down, or the listener drops every connection
			continue
		}
		go s.serveConn(c)
	}
}

// Close stops the listener and closes every connection. It is safe to call more
// than once and concurrently with Serve.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.done)
	for c := range s.conns {
		_ = c.Close()
	}
	for _, rw := range s.streams {
		_ = rw.Close()
	}
	if s.ln == nil {
		return nil
	}
	if err := s.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close modbus listener %s: %w", s.Addr(), err)
	}
	return nil
}

// SetFault injects (or with FaultNone clears) a fault. A listener-wide FaultDrop
// closes every open connection at once and every new one as soon as it is accepted.
func (s *Server) SetFault(f Fault) error {
	if err := f.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.set(f)
	if s.faults.dropsAll() {
		for c := range s.conns {
			_ = c.Close()
		}
	}
	return nil
}

// Faults lists the active faults: the listener-wide one first (if any), then the
// per-unit ones.
func (s *Server) Faults() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Fault
	if s.faults.all.Mode != "" && s.faults.all.Mode != FaultNone {
		out = append(out, s.faults.all)
	}
	for u := range 256 {
		if f, ok := s.faults.byUnit[uint8(u)]; ok {
			out = append(out, f)
		}
	}
	return out
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// track registers a new connection, or reports false when it must be refused.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.faults.dropsAll() {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1) // under mu, so Close+Wait cannot miss it
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	_ = c.Close()
	s.wg.Done()
}

func (s *Server) faultFor(unit uint8) Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.lookup(unit)
}

// serveConn reads requests one after the other and answers each before reading the
// next, as a single-threaded device would.
func (s *Server) serveConn(c net.Conn) {
	defer s.untrack(c)
	log := s.log.With("remote", c.RemoteAddr().String())
	if s.rtu {
		if err := s.serveRTU(c, log); err != nil && !errors.Is(err, io.EOF) && !s.isClosed() {
			log.Debug("modbus RTU connection closed", "err", err)
		}
		return
	}
	hdr := make([]byte, HeaderLen)
	pdu := make([]byte, MaxPDULen)
	var out []byte
	for {
		if _, err := io.ReadFull(c, hdr); err != nil {
			if !errors.Is(err, io.EOF) && !s.isClosed() {
				log.Debug("modbus connection closed", "err", err)
			}
			return
		}
		h, err := DecodeHeader(hdr)
		if err != nil {
			log.Info("closing modbus connection", "err", err)
			return
		}
		body := pdu[:h.PDULen()]
		if _, err := io.ReadFull(c, body); err != nil {
			log.Debug("modbus connection closed inside a frame", "err", err)
			return
		}
		answer, keep := s.respond(h, body)
		if !keep {
			return
		}
		if answer == nil {
			continue
		}
		out = appendADU(out[:0], h.Transaction, h.Unit, answer)
		if _, err := c.Write(out); err != nil {
			log.Debug("modbus write failed", "err", err)
			return
		}
	}
}

// respond decides the answer PDU to one request: nil for no answer, keep=false to
// close the connection.
func (s *Server) respond(h Header, body []byte) (answer []byte, keep bool) {
	req, decodeErr := DecodePDU(h.Unit, body)
	if s.onRequest != nil {
		s.onRequest(req)
	}
	switch f := s.faultFor(h.Unit); f.Mode {
	case FaultTimeout:
		return nil, true
	case FaultDrop:
		return nil, false
	case FaultException:
		return exceptionPDU(req.Function, f.Exception), true
	case FaultDelay:
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.done:
			return nil, false
		}
	}
	if decodeErr != nil {
		return exceptionPDU(req.Function, asException(decodeErr)), true
	}
	pdu, err := s.execute(req)
	if err != nil {
		var ex Exception
		if !errors.As(err, &ex) {
			s.log.Warn("modbus request failed", "unit", req.Unit, "function", req.Function,
				"address", req.Address, "quantity", req.Quantity, "err", err)
			ex = ServerDeviceFailure
		}
		return exceptionPDU(req.Function, ex), true
	}
	return pdu, true
}

// execute runs a valid request against the handler and builds the answer PDU.
func (s *Server) execute(r Request) ([]byte, error) {
	switch r.Function {
	case FuncReadCoils, FuncReadDiscreteInputs:
		area := Coils
		if r.Function == FuncReadDiscreteInputs {
			area = DiscreteInputs
		}
		bits, err := s.h.ReadBits(r.Unit, area, r.Address, r.Quantity)
		if err != nil {
			return nil, err
		}
		if len(bits) != int(r.Quantity) {
			return nil, fmt.Errorf("handler returned %d bits for %d", len(bits), r.Quantity)
		}
		packed := packBits(bits)
		return append([]byte{r.Function, byte(len(packed))}, packed...), nil
	case FuncReadHoldingRegisters, FuncReadInputRegisters:
		area := HoldingRegisters
		if r.Function == FuncReadInputRegisters {
			area = InputRegisters
		}
		regs, err := s.h.ReadRegisters(r.Unit, area, r.Address, r.Quantity)
		if err != nil {
			return nil, err
		}
		if len(regs) != int(r.Quantity) {
			return nil, fmt.Errorf("handler returned %d registers for %d", len(regs), r.Quantity)
		}
		out := append(make([]byte, 0, 2+2*len(regs)), r.Function, byte(2*len(regs)))
		for _, v := range regs {
			out = binary.BigEndian.AppendUint16(out, v)
		}
		return out, nil
	case FuncWriteSingleCoil, FuncWriteMultipleCoils:
		if err := s.h.WriteBits(r.Unit, r.Address, r.Bits); err != nil {
			return nil, err
		}
	case FuncWriteSingleRegister, FuncWriteMultipleRegisters:
		if err := s.h.WriteRegisters(r.Unit, r.Address, r.Registers); err != nil {
			return nil, err
		}
	default:
		return nil, IllegalFunction // DecodePDU has already refused it
	}
	// Write answers: FC 5 and 6 echo address and value, FC 15 and 16 address and quantity.
	out := binary.BigEndian.AppendUint16([]byte{r.Function}, r.Address)
	switch r.Function {
	case FuncWriteSingleCoil:
		v := uint16(0)
		if r.Bits[0] {
			v = 0xFF00
		}
		return binary.BigEndian.AppendUint16(out, v), nil
	case FuncWriteSingleRegister:
		return binary.BigEndian.AppendUint16(out, r.Registers[0]), nil
	}
	return binary.BigEndian.AppendUint16(out, r.Quantity), nil
}

func exceptionPDU(function uint8, ex Exception) []byte {
	return []byte{function | 0x80, byte(ex)}
}

func asException(err error) Exception {
	var ex Exception
	if errors.As(err, &ex) {
		return ex
	}
	return ServerDeviceFailure
}
