// Package voltsim is the device simulator of DESIGN §8. It reads a site's channel
// configuration and serves exactly the mapped points of every enabled channel over
// the channel's real protocol, one listener per channel, so comsrv can be developed
// and tested against something that behaves like the field: values that follow
// profiles driven by a simulation clock (PV curve with curtailment, site load,
// battery state of charge that integrates the commanded power, a grid meter that
// sees them all), commands that land in the device
// and are recorded, and faults injected on demand through the library API or a small
// HTTP control API.
//
// Protocols are plugins (protocol.go): Modbus TCP and RTU, IEC 104, CAN, GPIO.
package voltsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
)

// Options tune a Sim. The zero value serves every channel on its own address with a
// clock that advances by itself.
type Options struct {
	// ListenOverride binds every channel to this address instead of the channel's
	// host:port: a host ("127.0.0.1", port 0 picks a free port per channel) or
	// host:port. Tests use "127.0.0.1" and read the ports back with Addr.
	ListenOverride string
	// ControlAddr is where the HTTP control API listens ("" for none).
	ControlAddr string
	// Tick is how often the clock advances when it runs by itself. Default 200 ms.
	Tick time.Duration
	// ManualClock stops the clock from advancing by itself: only Step moves it.
	ManualClock bool
	// Start is the simulation time at start. Default: now. Its location is the
	// "local time" of the PV curve.
	Start time.Time
	// Seed makes the noise repeatable.
	Seed uint64
	// Profiles override the profiles guessed from signal names.
	Profiles []ProfileOverride
	// SiteLoad is the peak (kW, at 13:00) of the site's consumption that no point
	// measures: the grid meter sees it, no load point shows it. 0 picks the
	// default: 80 kW when no point of the site has the load profile, none when one
	// has. Negative: no such load.
	SiteLoad float64
	// Logger; nil discards.
	Logger *slog.Logger
}

// Sim is a running set of simulated devices.
type Sim struct {
	log     *slog.Logger
	opts    Options
	control *controlServer // nil without Options.ControlAddr
	ran     atomic.Bool

	// mu guards the clock, the generator and every point's value and profile. It is
	// taken before an endpoint's own lock (see endpoint).
	mu    sync.Mutex
	now   time.Time
	rng   *rand.Rand
	chans map[uint32]*simChannel
	order []*simChannel // by channel id

	siteLoad float64 // peak of the unmetered site load (plant.go); 0: none
}

type simChannel struct {
	cfg      *config.Channel
	ep       endpoint
	points   map[pointKey]*simPoint
	order    []*simPoint // by type, then id: the order values are computed in
	battery  *battery
	pvLimit  *simPoint // the point whose value (% of rated) clamps the channel's PV; nil if none
	writes   boundedLog[Write]
	requests boundedLog[RequestLog]
}

type simPoint struct {
	key     pointKey
	cfg     *config.Point
	profile Profile
	value   float64
	failing bool // the last value did not encode; logged once until one does
}

// ChannelInfo describes one simulated channel.
type ChannelInfo struct {
	ID       uint32 `json:"id"`
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
	Addr     string `json:"address"`
	Points   int    `json:"points"`
}

// New builds the simulated devices of every enabled channel whose protocol voltsim
// speaks, binds their listeners (and the control API) and computes the initial
// values. Channels of other protocols are skipped with a log line. Call Run to
// serve, or Close to release the listeners without serving.
func New(cfg *config.Config, opts Options) (*Sim, error) {
	if cfg == nil {
		return nil, errors.New("voltsim: no config")
	}
	if opts.Tick <= 0 {
		opts.Tick = 200 * time.Millisecond
	}
	if opts.Start.IsZero() {
		opts.Start = time.Now()
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sim{
		log: log, opts: opts, now: opts.Start,
		rng:   rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9E3779B97F4A7C15)),
		chans: map[uint32]*simChannel{},
	}
	overrides, err := indexOverrides(cfg, opts.Profiles)
	if err != nil {
		return nil, err
	}
	for i := range cfg.Channels {
		ch := &cfg.Channels[i]
		factory, ok := protocols[ch.Protocol]
		switch {
		case !ch.Enabled:
			log.Info("channel disabled, not simulated", "channel", ch.ID, "name", ch.Name)
			continue
		case !ok:
			if ch.Protocol != config.ProtocolVirtual { // virtual channels have no device to simulate
				log.Info("protocol not simulated yet", "channel", ch.ID, "name", ch.Name, "protocol", ch.Protocol)
			}
			continue
		}
		sc := newSimChannel(ch, overrides[ch.ID])
		ep, err := factory(ch, endpointEnv{
			Listen:    listenAddr(opts.ListenOverride),
			Logger:    log.With("channel", ch.ID),
			OnWrite:   func(w []deviceWrite) { s.deviceWrote(sc, w) },
			OnRequest: sc.requests.add,
		})
		if err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("voltsim: channel %d (%s): %w", ch.ID, ch.Name, err)
		}
		sc.ep = ep
		s.chans[ch.ID] = sc
		s.order = append(s.order, sc)
	}
	if len(s.order) == 0 {
		return nil, fmt.Errorf("voltsim: no enabled channel with a protocol the simulator speaks (%s)", strings.Join(slices.Sorted(maps.Keys(protocols)), ", "))
	}
	if opts.ControlAddr != "" {
		if s.control, err = listenControl(opts.ControlAddr, s, log); err != nil {
			_ = s.Close()
			return nil, err
		}
	}

	s.siteLoad = siteLoadPeak(opts.SiteLoad, s.order)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(0)
	for _, sc := range s.order {
		for _, p := range sc.order {
			_ = s.push(sc, p) // a bool with reverse is raw 1 at engineering 0: push everything once
		}
	}
	return s, nil
}

// listenAddr turns the listen override into an address: a bare host gets port 0.
func listenAddr(override string) string {
	if override == "" {
		return ""
	}
	if _, _, err := net.SplitHostPort(override); err == nil {
		return override
	}
	return net.JoinHostPort(override, "0")
}

// indexOverrides checks the overrides against the config and indexes them by
// channel and point. An override naming a point that does not exist is an error, so
// a typo cannot silently leave a point on its guessed profile.
func indexOverrides(cfg *config.Config, list []ProfileOverride) (map[uint32]map[pointKey]Profile, error) {
	out := map[uint32]map[pointKey]Profile{}
	for _, o := range list {
		k, prof, err := o.resolve()
		if err != nil {
			return nil, err
		}
		p := cfg.Channel(o.Channel).Point(k.typ, k.id)
		if p == nil {
			return nil, fmt.Errorf("profile override: channel %d has no point %s", o.Channel, k)
		}
		if out[o.Channel] == nil {
			out[o.Channel] = map[pointKey]Profile{}
		}
		out[o.Channel][k] = prof.withDefaults(p.Name, o.Value != nil)
	}
	return out, nil
}

// newSimChannel gives every point of ch its profile (override or guess) and wires
// the battery model when the channel has a state-of-charge point.
func newSimChannel(ch *config.Channel, overrides map[pointKey]Profile) *simChannel {
	sc := &simChannel{cfg: ch, points: map[pointKey]*simPoint{}}
	hasSOC := false
	for _, p := range ch.Points[point.Telemetry] {
		prof, ok := overrides[pointKey{point.Telemetry, p.ID}]
		hasSOC = hasSOC || ok && prof.Kind == ProfileSOC || !ok && isSOCName(normalName(p.Name))
	}
	pv := isPVChannel(ch)
	for _, t := range point.Types {
		pts := ch.Points[t]
		idx := make([]int, len(pts))
		for i := range idx {
			idx[i] = i
		}
		sort.Slice(idx, func(a, b int) bool { return pts[idx[a]].ID < pts[idx[b]].ID })
		for _, i := range idx {
			p := &pts[i]
			k := pointKey{t, p.ID}
			prof, ok := overrides[k]
			if !ok {
				prof = guessProfile(p, hasSOC, pv)
			}
			sp := &simPoint{key: k, cfg: p, profile: prof, value: prof.Value}
			sc.points[k] = sp
			sc.order = append(sc.order, sp)
		}
	}
	if hasSOC {
		b := &battery{}
		for _, p := range sc.order {
			switch p.profile.Kind {
			case ProfileSOC:
				if b.soc == nil {
					b.soc = p
				}
			case ProfileBatterySetpoint:
				if b.setpoint == nil {
					b.setpoint = p
				}
			case ProfileBatteryPower:
				b.powers = append(b.powers, p)
			}
		}
		if b.soc != nil {
			sc.battery = b
		}
	}
	sc.pvLimit = findPVLimit(sc)
	return sc
}

// Run serves every channel (and the control API) until ctx is done, advancing the
// clock unless Options.ManualClock. It closes every listener and connection and
// returns when all its goroutines have exited: nil after ctx ends, the first
// serving error otherwise. Run may be called once.
func (s *Sim) Run(ctx context.Context) error {
	if !s.ran.CompareAndSwap(false, true) {
		return errors.New("voltsim: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg     sync.WaitGroup
		errMu  sync.Mutex
		errs   []error
		record = func(err error) {
			errMu.Lock()
			errs = append(errs, err)
			errMu.Unlock()
			cancel() // one device failing stops the simulator rather than limping on
		}
	)
	for _, sc := range s.order {
		wg.Go(func() {
			if err := sc.ep.Serve(ctx); err != nil {
				record(fmt.Errorf("channel %d: %w", sc.cfg.ID, err))
			}
		})
	}
	if s.control != nil {
		wg.Go(func() {
			if err := s.control.serve(ctx); err != nil {
				record(err)
			}
		})
	}
	if !s.opts.ManualClock {
		wg.Go(func() { s.tick(ctx) })
	}
	<-ctx.Done()
	wg.Wait()
	return errors.Join(errs...)
}

// tick advances the clock every Options.Tick until ctx is done.
func (s *Sim) tick(ctx context.Context) {
	t := time.NewTicker(s.opts.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Step(s.opts.Tick)
		}
	}
}

// Close releases the listeners of a Sim whose Run was never called. After Run it
// is not needed (Run closes everything) and does nothing harmful.
func (s *Sim) Close() error {
	var errs []error
	for _, sc := range s.order {
		errs = append(errs, sc.ep.Close())
	}
	if s.control != nil {
		errs = append(errs, s.control.close())
	}
	return errors.Join(errs...)
}
