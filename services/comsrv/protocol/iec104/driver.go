// Package iec104 is comsrv's IEC 60870-5-104 driver: a controlling station
// (client) built on github.com/wendy512/go-iecp5's cs104 client. It starts data
// transfer (STARTDT), keeps the link alive with TESTFR (t3), honours k/w and
// t0..t3, sends general and counter interrogations and clock synchronisation at
// connect and on schedules, delivers spontaneous data through the sink from the
// library's receive goroutine, and executes single, double, regulating-step,
// set-point and bitstring commands, with select-before-operate where configured,
// judging each by its activation confirmation and termination.
//
// The library reconnects by itself; the driver does not let it: a lost
// connection makes the next Poll fail and the channel runner reconnects with its
// backoff, like every other protocol.
package iec104

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wendy512/go-iecp5/asdu"
	"github.com/wendy512/go-iecp5/cs104"

	"github.com/voltageems/voltage/services/comsrv/protocol"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
)

func init() {
	protocol.Register(config.ProtocolIEC104, New)
}

// objKey addresses an information object.
type objKey struct {
	ca  uint16
	ioa uint32
}

type pointKey struct {
	t  point.Type
	id point.ID
}

// Driver is an iec104 channel.
type Driver struct {
	ch      *config.Channel
	params  config.IEC104Params
	log     *slog.Logger
	monitor map[objKey]*config.Point // T and S points by address
	cas     []uint16                 // common addresses of the mapping, for interrogations
	totals  bool                     // the channel has integrated-totals points

	link *link // the current connection; nil when closed
	// schedules, owned by the runner goroutine
	nextGI, nextCI, nextSync time.Time
}

// New builds the driver for an iec104 channel, validating its parameters and
// mappings.
func New(ch *config.Channel, log *slog.Logger) (protocol.Driver, error) {
	var p config.IEC104Params
	if err := ch.DecodeParameters(&p); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("parameters: %w", err)
	}
	d := &Driver{ch: ch, params: p, log: log, monitor: map[objKey]*config.Point{}}
	seenCA := map[uint16]bool{}
	commands := map[objKey]*config.Point{}
	for _, t := range point.Types {
		for i := range ch.Points[t] {
			pt := &ch.Points[t][i]
			m := pt.IEC104
			if m == nil {
				return nil, fmt.Errorf("%s point %d has no IEC 104 mapping", t.Name(), pt.ID)
			}
			k := objKey{m.CommonAddress, m.IOA}
			if !seenCA[m.CommonAddress] {
				seenCA[m.CommonAddress] = true
				d.cas = append(d.cas, m.CommonAddress)
			}
			index := d.monitor
			if t.Writable() {
				index = commands
			}
			if other := index[k]; other != nil {
				return nil, fmt.Errorf("%s point %d and %s point %d both map to common_address %d ioa %d",
					other.Type.Name(), other.ID, t.Name(), pt.ID, k.ca, k.ioa)
			}
			index[k] = pt
			if config.IEC104TypeFamily(m.TypeID) == config.MItNa1 {
				d.totals = true
			}
		}
	}
	return d, nil
}

// Acquisition implements protocol.Driver.
func (d *Driver) Acquisition() config.Acquisition { return d.params.Acquisition }

func (d *Driver) addr() string { return net.JoinHostPort(d.params.Host, strconv.Itoa(d.params.Port)) }

// Connect implements protocol.Driver: it opens the TCP connection, starts data
// transfer and sends what is due at connect (clock sync, interrogations).
func (d *Driver) Connect(ctx context.Context, sink protocol.Sink) error {
	l := newLink(d, sink)
	if err := l.open(ctx); err != nil {
		l.close()
		return err
	}
	d.link = l
	now := time.Now()
	d.nextGI, d.nextCI, d.nextSync = time.Time{}, time.Time{}, time.Time{}
	if *d.params.ClockSyncAtConnect {
		d.nextSync = now
	} else if d.params.ClockSyncIntervalMS > 0 {
		d.nextSync = now.Add(time.Duration(d.params.ClockSyncIntervalMS) * time.Millisecond)
	}
	if *d.params.InterrogationAtConnect {
		d.nextGI = now
	} else if d.params.InterrogationIntervalMS > 0 {
		d.nextGI = now.Add(time.Duration(d.params.InterrogationIntervalMS) * time.Millisecond)
	}
	if d.totals && *d.params.CounterInterrogationAtConnect {
		d.nextCI = now
	} else if d.params.CounterInterrogationIntervalMS > 0 {
		d.nextCI = now.Add(time.Duration(d.params.CounterInterrogationIntervalMS) * time.Millisecond)
	}
	if err := d.runSchedules(now); err != nil {
		// The runner closes only what connected: release the link here.
		l.close()
		d.link = nil
		return err
	}
	return nil
}

// Close implements protocol.Driver: STOPDT, then the connection is closed and
// the library's goroutines have ended (bounded by t1).
func (d *Driver) Close() error {
	if d.link == nil {
		return nil
	}
	d.link.close()
	d.link = nil
	return nil
}

// Poll implements protocol.Driver. Data arrives by itself (interrogation
// answers, spontaneous changes); Poll reports a lost link, sends what the
// schedules say is due, and re-delivers every value the station reported on this
// connection, so that a point the station keeps quiet about (it has not
// changed) stays current while the link is up.
func (d *Driver) Poll(ctx context.Context, sink protocol.Sink) error {
	l := d.link
	if l == nil {
		return errors.New("not connected")
	}
	if err := l.lostErr(); err != nil {
		return err
	}
	now := time.Now()
	if l.stationRestarted.Swap(false) && len(d.cas) > 0 {
		d.nextGI = now // end of initialisation: the station's image is new
		if d.totals {
			d.nextCI = now
		}
	}
	if err := d.runSchedules(now); err != nil {
		return err
	}
	l.redeliver(sink)
	return nil
}

// runSchedules sends the clock sync, general and counter interrogations that are
// due, and plans the next ones.
func (d *Driver) runSchedules(now time.Time) error {
	l := d.link
	due := func(next *time.Time, intervalMS int) bool {
		if next.IsZero() || now.Before(*next) {
			return false
		}
		if intervalMS > 0 {
			*next = now.Add(time.Duration(intervalMS) * time.Millisecond)
		} else {
			*next = time.Time{}
		}
		return true
	}
	if due(&d.nextSync, d.params.ClockSyncIntervalMS) {
		for _, ca := range d.cas {
			if err := asdu.ClockSynchronizationCmd(l.client, l.activation(), asdu.CommonAddr(ca), time.Now()); err != nil {
				return fmt.Errorf("clock synchronisation of common address %d: %w", ca, err)
			}
		}
	}
	if due(&d.nextGI, d.params.InterrogationIntervalMS) {
		for _, ca := range d.cas {
			if err := asdu.InterrogationCmd(l.client, l.activation(), asdu.CommonAddr(ca), asdu.QOIStation); err != nil {
				return fmt.Errorf("general interrogation of common address %d: %w", ca, err)
			}
		}
	}
	if due(&d.nextCI, d.params.CounterInterrogationIntervalMS) {
		qcc := asdu.QualifierCountCall{Request: asdu.QCCTotal, Freeze: asdu.QCCFrzRead}
		for _, ca := range d.cas {
			if err := asdu.CounterInterrogationCmd(l.client, l.activation(), asdu.CommonAddr(ca), qcc); err != nil {
				return fmt.Errorf("counter interrogation of common address %d: %w", ca, err)
			}
		}
	}
	return nil
}

// deliver routes the objects of a monitoring ASDU to their points.
func (d *Driver) deliver(l *link, objs []Object) {
	now := protocol.Now()
	for _, o := range objs {
		p := d.monitor[objKey{o.CA, o.IOA}]
		if p == nil {
			continue // not mapped: stations report more than a site uses
		}
		m := p.IEC104
		if m.COT != 0 && uint8(o.Cause) != m.COT {
			continue
		}
		if config.IEC104TypeFamily(o.Type) != config.IEC104TypeFamily(m.TypeID) {
			l.sink.Fail(p.Type, p.ID, point.Invalid, fmt.Errorf("station sent %s for common_address %d ioa %d, mapped as %s", o.Type, o.CA, o.IOA, m.TypeID))
			continue
		}
		s := Sample(p, o, now)
		l.remember(pointKey{p.Type, p.ID}, s)
		l.sink.Sample(p.Type, s)
	}
}

// clientParams are the ASDU sizes of IEC 104 with the channel's originator.
func (d *Driver) clientParams() *asdu.Params {
	p := *asdu.ParamsWide
	p.OrigAddress = asdu.OriginAddr(d.params.OriginatorAddress)
	return &p
}

func (d *Driver) cs104Config() cs104.Config {
	return cs104.Config{
		ConnectTimeout0:   d.params.T0(),
		SendUnAckLimitK:   uint16(d.params.K),
		SendUnAckTimeout1: d.params.T1(),
		RecvUnAckLimitW:   uint16(d.params.W),
		RecvUnAckTimeout2: d.params.T2(),
		IdleTimeout3:      d.params.T3(),
	}
}

// link is one connection: the library client and what arrived on it.
type link struct {
	d      *Driver
	sink   protocol.Sink
	client *cs104.Client
	logs   *libLog

	connected chan struct{} // closed when the TCP connection is up
	active    chan struct{} // closed on STARTDT con
	lost      chan struct{} // closed when the connection ended (or never came up)
	lostOnce  sync.Once
	connOnce  sync.Once
	actOnce   sync.Once

	// stationRestarted is set by an end of initialisation (M_EI_NA_1): the next
	// poll interrogates again.
	stationRestarted atomic.Bool

	mu         sync.Mutex
	closed     bool
	lostMsg    error
	lastLibErr string
	image      map[pointKey]point.Sample // last sample of every point reported on this connection
	pending    *pendingCommand
}

func newLink(d *Driver, sink protocol.Sink) *link {
	return &link{
		d: d, sink: sink,
		connected: make(chan struct{}), active: make(chan struct{}), lost: make(chan struct{}),
		image: map[pointKey]point.Sample{},
	}
}

func (l *link) open(ctx context.Context) error {
	d := l.d
	cfg := d.cs104Config()
	if err := cfg.Valid(); err != nil {
		return fmt.Errorf("iec104 timers: %w", err)
	}
	opt := cs104.NewOption()
	opt.SetConfig(cfg)
	opt.SetParams(d.clientParams())
	opt.SetAutoReconnect(false)
	if err := opt.AddRemoteServer("tcp://" + d.addr()); err != nil {
		return fmt.Errorf("server address %s: %w", d.addr(), err)
	}
	l.client = cs104.NewClient(l, opt)
	l.logs = &libLog{log: d.log, onError: l.libraryError}
	l.client.SetLogProvider(l.logs)
	l.client.LogMode(true)
	l.client.SetOnConnectHandler(func(c *cs104.Client) {
		if l.isClosed() {
			_ = c.Close() // closed while the library was still dialling
			return
		}
		l.connOnce.Do(func() { close(l.connected) })
		c.SendStartDt()
	})
	l.client.SetServerActiveHandler(func(*cs104.Client) {
		l.actOnce.Do(func() { close(l.active) })
	})
	l.client.SetConnectionLostHandler(func(c *cs104.Client) {
		// Stop the library from dialling again: reconnecting is the runner's job.
		_ = c.Close()
		l.markLost(errors.New("connection closed"))
	})
	if err := l.client.Start(); err != nil {
		return fmt.Errorf("start iec104 client for %s: %w", d.addr(), err)
	}
	// STARTDT must be confirmed within t1 of the connection; the connection
	// itself within t0.
	deadline := time.NewTimer(d.params.T0() + d.params.T1())
	defer deadline.Stop()
	select {
	case <-l.active:
		return nil
	case <-l.lost:
		return fmt.Errorf("connect to %s: %w", d.addr(), l.lostErr())
	case <-deadline.C:
		return fmt.Errorf("connect to %s: no STARTDT confirmation within t0+t1 (%s)", d.addr(), d.params.T0()+d.params.T1())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// libraryError receives the library's error log lines: a failed dial (which the
// library only logs when it does not reconnect) and the reason a connection ended.
func (l *link) libraryError(msg string) {
	select {
	case <-l.connected:
		l.mu.Lock()
		l.lastLibErr = msg
		l.mu.Unlock()
	default:
		l.markLost(errors.New(msg)) // the dial failed: the library gives up silently
	}
}

func (l *link) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

func (l *link) markLost(reason error) {
	l.mu.Lock()
	if l.lostMsg == nil {
		if l.lastLibErr != "" {
			reason = errors.New(l.lastLibErr)
		}
		l.lostMsg = reason
	}
	p := l.pending
	l.mu.Unlock()
	l.lostOnce.Do(func() { close(l.lost) })
	if p != nil {
		p.fail(errors.New("link lost while waiting for the confirmation"))
	}
}

// lostErr is why the connection ended; nil while it is up.
func (l *link) lostErr() error {
	select {
	case <-l.lost:
	default:
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Errorf("iec104 link lost: %w", l.lostMsg)
}

func (l *link) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	if l.client == nil {
		return
	}
	select {
	case <-l.active:
		select {
		case <-l.lost:
		default:
			l.client.SendStopDt()
		}
	default:
	}
	_ = l.client.Close()
	// The library's goroutines end with the connection; wait for that so none
	// outlives the driver. Bounded: a connection that never came up has none.
	select {
	case <-l.connected:
		t := time.NewTimer(l.d.params.T1())
		defer t.Stop()
		select {
		case <-l.lost:
		case <-t.C:
			l.d.log.Warn("iec104 client did not stop within t1")
		}
	default:
	}
	l.markLost(errors.New("closed"))
}

func (l *link) activation() asdu.CauseOfTransmission {
	return asdu.CauseOfTransmission{Cause: asdu.Activation}
}

func (l *link) remember(k pointKey, s point.Sample) {
	l.mu.Lock()
	l.image[k] = s
	l.mu.Unlock()
}

func (l *link) redeliver(sink protocol.Sink) {
	l.mu.Lock()
	samples := make(map[pointKey]point.Sample, len(l.image))
	for k, s := range l.image {
		samples[k] = s
	}
	l.mu.Unlock()
	for k, s := range samples {
		sink.Sample(k.t, s)
	}
}

// The library calls the handlers below from its receive goroutine, one ASDU at
// a time.

// InterrogationHandler receives the confirmation and termination of a general
// interrogation.
func (l *link) InterrogationHandler(_ asdu.Connect, a *asdu.ASDU) error {
	l.logSystem("general interrogation", a)
	return nil
}

// CounterInterrogationHandler receives those of a counter interrogation.
func (l *link) CounterInterrogationHandler(_ asdu.Connect, a *asdu.ASDU) error {
	l.logSystem("counter interrogation", a)
	return nil
}

// ClockSyncHandler receives the confirmation of a clock synchronisation.
func (l *link) ClockSyncHandler(_ asdu.Connect, a *asdu.ASDU) error {
	l.logSystem("clock synchronisation", a)
	return nil
}

// ReadHandler, TestCommandHandler, ResetProcessHandler and
// DelayAcquisitionHandler receive answers to commands this driver never sends.
func (l *link) ReadHandler(_ asdu.Connect, a *asdu.ASDU) error        { return nil }
func (l *link) TestCommandHandler(_ asdu.Connect, a *asdu.ASDU) error { return nil }
func (l *link) ResetProcessHandler(_ asdu.Connect, a *asdu.ASDU) error {
	return nil
}
func (l *link) DelayAcquisitionHandler(_ asdu.Connect, a *asdu.ASDU) error { return nil }

// ASDUHandler receives process data and command confirmations.
func (l *link) ASDUHandler(_ asdu.Connect, a *asdu.ASDU) error {
	if a.Type >= asdu.C_SC_NA_1 && a.Type <= asdu.C_BO_TA_1 {
		l.commandReply(a)
		return nil
	}
	if a.Type == asdu.M_EI_NA_1 {
		l.d.log.Info("iec104 station initialised; interrogating again", "common_address", a.CommonAddr)
		l.stationRestarted.Store(true)
		return nil
	}
	objs, err := Decode(a)
	if err != nil {
		l.d.log.Debug("iec104 ASDU ignored", "type", a.Type, "cause", a.Coa, "err", err)
		return nil
	}
	l.d.deliver(l, objs)
	return nil
}

func (l *link) logSystem(what string, a *asdu.ASDU) {
	if a.Coa.IsNegative {
		l.d.log.Warn("iec104 "+what+" refused", "common_address", a.CommonAddr, "cause", a.Coa.String())
		return
	}
	l.d.log.Debug("iec104 "+what, "common_address", a.CommonAddr, "cause", a.Coa.String())
}

// libLog adapts the library's logger: its debug lines go to slog at debug level,
// its errors to onError (they say why a connection ended) and to debug.
type libLog struct {
	log     *slog.Logger
	onError func(string)
}

func (g *libLog) Critical(format string, v ...any) { g.Error(format, v...) }
func (g *libLog) Error(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	g.onError(msg)
	g.log.Debug("iec104 library", "msg", msg)
}
func (g *libLog) Warn(format string, v ...any) {
	if g.log.Enabled(context.Background(), slog.LevelDebug) {
		g.log.Debug("iec104 library", "msg", fmt.Sprintf(format, v...))
	}
}
func (g *libLog) Debug(format string, v ...any) {
	if g.log.Enabled(context.Background(), slog.LevelDebug-4) {
		g.log.Log(context.Background(), slog.LevelDebug-4, "iec104 library", "msg", fmt.Sprintf(format, v...))
	}
}
