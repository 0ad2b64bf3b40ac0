// Package iec104 is voltsim's IEC 60870-5-104 controlled station (server). It
// holds an image of monitored information objects, answers general and counter
// interrogations, sends spontaneous data when a value changes, accepts clock
// synchronisation, and executes commands (with select-before-operate where a
// point requires it), confirming each with ActCon and ActTerm. Faults on demand:
// the next command (on one object or any) gets a negative confirmation with a
// chosen cause, and the link can be dropped and refused.
//
// The APCI layer (STARTDT/STOPDT, TESTFR, k/w, t1/t2/t3) is the package's own:
// the go-iecp5 server sends queued I-frames only on its 100 ms ticker, which
// would add up to 100 ms to every spontaneous change. ASDUs are built with the
// go-iecp5 asdu package, confirmations from the request's own bytes (the
// library's SendReplyMirror repeats an already consumed, truncated object).
package iec104

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/wendy512/go-iecp5/asdu"

	"github.com/voltageems/voltage/shared/config"
)

// Key addresses an information object.
type Key struct {
	CA  uint16
	IOA uint32
}

// Quality descriptor bits a simulated value can carry.
const (
	QualityOverflow    = byte(asdu.QDSOverflow)    // OV
	QualityBlocked     = byte(asdu.QDSBlocked)     // BL
	QualitySubstituted = byte(asdu.QDSSubstituted) // SB
	QualityNotTopical  = byte(asdu.QDSNotTopical)  // NT
	QualityInvalid     = byte(asdu.QDSInvalid)     // IV
)

// Config holds the station's protocol timers and windows.
type Config struct {
	K, W           int
	T1, T2, T3     time.Duration
	TimeZone       *time.Location // of CP56Time2a tags; UTC when nil
	MaxObjsPerASDU int            // default: as many as fit
}

// Command is a command the station executed.
type Command struct {
	Key
	Type config.IEC104TypeID
	// Raw is the commanded value: 0/1 for single and double commands (OFF/ON),
	// +1/-1 for a regulating step (higher/lower), the fraction for a normalized
	// set-point, the number for scaled, float and bitstring commands.
	Raw float64
}

// Options configure a station.
type Options struct {
	Config Config
	Logger *slog.Logger
	// OnCommand is called for every executed command, before ActTerm. It is
	// called from the connection's goroutine with no station lock held.
	OnCommand func(Command)
}

type monitor struct {
	typ     config.IEC104TypeID
	raw     float64
	quality byte
	set     bool // a value was set
}

type control struct {
	typ           config.IEC104TypeID
	requireSelect bool
}

// Station is a simulated controlled station.
type Station struct {
	cfg  Config
	log  *slog.Logger
	opts Options
	ln   net.Listener

	mu        sync.Mutex
	monitors  map[Key]*monitor
	controls  map[Key]*control
	selected  map[Key]float64 // objects selected and awaiting execute
	sessions  map[*session]struct{}
	drop      bool
	rejectAny *asdu.Cause
	rejectKey map[Key]asdu.Cause
	counters  Counters
	clock     []time.Time
}

// Counters count what the station received.
type Counters struct {
	Connections           int
	Interrogations        int
	CounterInterrogations int
	ClockSyncs            int
	Commands              int // executed (positive) commands
	Rejected              int // negative confirmations sent
	TestFrames            int // TESTFR act received (keep-alive of an idle link)
}

// Listen binds addr ("host:port", port 0 picks one).
func Listen(addr string, opts Options) (*Station, error) {
	c := &opts.Config
	if c.K == 0 {
		c.K = 12
	}
	if c.W == 0 {
		c.W = 8
	}
	if c.T1 == 0 {
		c.T1 = 15 * time.Second
	}
	if c.T2 == 0 {
		c.T2 = 10 * time.Second
	}
	if c.T3 == 0 {
		c.T3 = 20 * time.Second
	}
	if c.TimeZone == nil {
		c.TimeZone = time.UTC
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("iec104 station: listen on %s: %w", addr, err)
	}
	return &Station{
		cfg: *c, log: opts.Logger, opts: opts, ln: ln,
		monitors: map[Key]*monitor{}, controls: map[Key]*control{}, selected: map[Key]float64{},
		sessions: map[*session]struct{}{}, rejectKey: map[Key]asdu.Cause{},
	}, nil
}

// Addr is the bound address.
func (s *Station) Addr() string { return s.ln.Addr().String() }

// AddMonitor declares a monitored object of type typ (a monitoring type).
func (s *Station) AddMonitor(k Key, typ config.IEC104TypeID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.monitors[k] = &monitor{typ: typ}
}

// AddCommand declares a command object; requireSelect refuses an execute
// that was not selected first.
func (s *Station) AddCommand(k Key, typ config.IEC104TypeID, requireSelect bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.controls[k] = &control{typ: typ, requireSelect: requireSelect}
}

// Set changes a monitored value (see Command.Raw for the meaning per type; a
// double point takes 0 for OFF and 1 for ON). A change is sent spontaneously to
// every connection in data transfer. A value the type cannot carry is an error.
func (s *Station) Set(k Key, raw float64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.monitors[k]
	if m == nil {
		return fmt.Errorf("no monitored object at common address %d ioa %d", k.CA, k.IOA)
	}
	if err := fits(m.typ, raw); err != nil {
		return err
	}
	if m.set && encodedEqual(m.typ, m.raw, raw) {
		m.raw = raw
		return nil
	}
	m.raw, m.set = raw, true
	s.spontaneousLocked(k, m)
	return nil
}

// SetQuality sets the quality descriptor bits of a monitored object (0 is good)
// and sends the object spontaneously.
func (s *Station) SetQuality(k Key, q byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.monitors[k]
	if m == nil {
		return fmt.Errorf("no monitored object at common address %d ioa %d", k.CA, k.IOA)
	}
	m.quality = q
	if m.set {
		s.spontaneousLocked(k, m)
	}
	return nil
}

// RejectNext makes the next execute (or select) of the object at k, or of any
// object when k is nil, get a negative confirmation with cause (0: 7, the
// activation confirmation itself; 44..47 name what was unknown).
func (s *Station) RejectNext(k *Key, cause uint8) error {
	c := asdu.Cause(cause)
	if c == 0 {
		c = asdu.ActivationCon
	}
	if c > 63 {
		return fmt.Errorf("cause of transmission %d is out of range 1..63", cause)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k == nil {
		s.rejectAny = &c
		return nil
	}
	if s.controls[*k] == nil {
		return fmt.Errorf("no command object at common address %d ioa %d", k.CA, k.IOA)
	}
	s.rejectKey[*k] = c
	return nil
}

// Drop closes every connection and, while on, refuses new ones. Drop(false)
// accepts connections again.
func (s *Station) Drop(on bool) {
	s.mu.Lock()
	s.drop = on
	var all []*session
	if on {
		for ss := range s.sessions {
			all = append(all, ss)
		}
	}
	s.mu.Unlock()
	for _, ss := range all {
		ss.close()
	}
}

// Faults reports the active faults: dropping, and pending negative confirmations.
func (s *Station) Faults() (dropping bool, rejectAny *uint8, rejectKeys map[Key]uint8) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rejectAny != nil {
		c := uint8(*s.rejectAny)
		rejectAny = &c
	}
	rejectKeys = map[Key]uint8{}
	for k, c := range s.rejectKey {
		rejectKeys[k] = uint8(c)
	}
	return s.drop, rejectAny, rejectKeys
}

// ClearFaults stops dropping and forgets pending rejections.
func (s *Station) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop, s.rejectAny = false, nil
	clear(s.rejectKey)
}

// Counters reports what the station received so far.
func (s *Station) Counters() Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counters
}

// ClockSyncs lists the times clock synchronisation commands carried.
func (s *Station) ClockSyncs() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.clock...)
}

// Serve accepts connections until ctx is done, then closes the listener and
// every connection and returns when all goroutines have ended.
func (s *Station) Serve(ctx context.Context) error {
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { _ = s.ln.Close() })
	defer stop()
	var err error
	for {
		conn, aerr := s.ln.Accept()
		if aerr != nil {
			if ctx.Err() == nil {
				err = fmt.Errorf("iec104 station: accept: %w", aerr)
			}
			break
		}
		ss := newSession(s, conn)
		s.mu.Lock()
		if s.drop {
			s.mu.Unlock()
			_ = conn.Close()
			continue
		}
		s.sessions[ss] = struct{}{}
		s.counters.Connections++
		s.mu.Unlock()
		wg.Go(func() {
			ss.run()
			s.mu.Lock()
			delete(s.sessions, ss)
			s.mu.Unlock()
		})
	}
	s.mu.Lock()
	for ss := range s.sessions {
		ss.close()
	}
	s.mu.Unlock()
	wg.Wait()
	return err
}

// Close releases the listener when Serve was never called.
func (s *Station) Close() error {
	if err := s.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// spontaneousLocked sends one object with cause 3 to every connection. s.mu is held.
func (s *Station) spontaneousLocked(k Key, m *monitor) {
	if len(s.sessions) == 0 {
		return
	}
	coa := asdu.CauseOfTransmission{Cause: asdu.Spontaneous}
	for ss := range s.sessions {
		if err := s.sendObjects(ss, coa, m.typ, k.CA, []objValue{{ioa: k.IOA, raw: m.raw, q: m.quality}}, time.Now()); err != nil {
			s.log.Warn("iec104: spontaneous data dropped", "ca", k.CA, "ioa", k.IOA, "err", err)
		}
	}
}

type objValue struct {
	ioa uint32
	raw float64
	q   byte
}

// interrogationType is the type an object is reported with in an interrogation
// answer: time tags are for events, so the type without time.
func interrogationType(t config.IEC104TypeID) config.IEC104TypeID {
	if t == config.MMeNd1 {
		return t
	}
	return config.IEC104TypeFamily(t)
}

// objectsOf returns the set objects of common address ca (65535: all) whose
// family is in want, grouped by (ca, answer type), sorted by ioa.
func (s *Station) objectsOf(ca uint16, want func(config.IEC104TypeID) bool) map[[2]int][]objValue {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[[2]int][]objValue{}
	for k, m := range s.monitors {
		if !m.set || (ca != 0xFFFF && k.CA != ca) || !want(m.typ) {
			continue
		}
		g := [2]int{int(k.CA), int(interrogationType(m.typ))}
		out[g] = append(out[g], objValue{ioa: k.IOA, raw: m.raw, q: m.quality})
	}
	for _, v := range out {
		sort.Slice(v, func(i, j int) bool { return v[i].ioa < v[j].ioa })
	}
	return out
}

func (s *Station) knownCA(ca uint16) bool {
	if ca == 0xFFFF {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.monitors {
		if k.CA == ca {
			return true
		}
	}
	for k := range s.controls {
		if k.CA == ca {
			return true
		}
	}
	return false
}

// fits checks that raw can be sent as type t.
func fits(t config.IEC104TypeID, raw float64) error {
	if math.IsNaN(raw) || math.IsInf(raw, 0) {
		return fmt.Errorf("%s cannot carry %v", t, raw)
	}
	lim := func(lo, hi float64, what string) error {
		if raw < lo || raw > hi {
			return fmt.Errorf("%s cannot carry %v: %s", t, raw, what)
		}
		return nil
	}
	switch config.IEC104TypeFamily(t) {
	case config.MSpNa1, config.MDpNa1:
		return lim(0, 1, "want 0 or 1")
	case config.MStNa1:
		return lim(-64, 63, "a step position is -64..63")
	case config.MBoNa1:
		return lim(0, math.MaxUint32, "a bitstring is 0..4294967295")
	case config.MMeNa1:
		return lim(-1, 32767.0/32768, "a normalized value is in [-1, 1)")
	case config.MMeNb1:
		return lim(math.MinInt16, math.MaxInt16, "a scaled value is -32768..32767")
	case config.MMeNc1:
		return lim(-math.MaxFloat32, math.MaxFloat32, "out of short float range")
	case config.MItNa1:
		return lim(math.MinInt32, math.MaxInt32, "a counter is a 32-bit integer")
	}
	return fmt.Errorf("%s is not a monitoring type", t)
}

// encodedEqual reports whether two values encode to the same wire value.
func encodedEqual(t config.IEC104TypeID, a, b float64) bool {
	switch config.IEC104TypeFamily(t) {
	case config.MMeNc1:
		return float32(a) == float32(b)
	case config.MMeNa1:
		return normalize(a) == normalize(b)
	case config.MSpNa1, config.MDpNa1:
		return (a != 0) == (b != 0)
	}
	return math.Round(a) == math.Round(b)
}

func normalize(v float64) asdu.Normalize {
	return asdu.Normalize(min(math.Round(v*32768), math.MaxInt16))
}
