// Package comsrv is the communication service: it runs every enabled channel of the
// site (a protocol driver under a link supervisor), writes their points into Redis
// and executes the commands written to their command streams. Run is the whole
// service; cmd/comsrv is a thin main around it and the edge appliance embeds it.
package comsrv

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/services/comsrv/channel"
	"github.com/voltageems/voltage/services/comsrv/commands"
	"github.com/voltageems/voltage/services/comsrv/protocol"
	_ "github.com/voltageems/voltage/services/comsrv/protocol/all" // every driver
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/redisx"
	"github.com/voltageems/voltage/shared/service"
	"github.com/voltageems/voltage/shared/statestore"
)

// Config is what Run needs.
type Config struct {
	Site      *config.Config
	ConfigDir string // reloaded from on SIGHUP and POST /reload; "" disables reloads
	HTTPAddr  string // health, metrics and the channel API
	Log       *slog.Logger
	Reload    <-chan struct{}

	// ConsumerName names this comsrv in the command consumer groups. It must stay
	// the same across restarts so commands read before a crash are found again.
	// Default: comsrv-{hostname}.
	ConsumerName string
	// Bound, when set, receives the HTTP listener's address (tests use port 0).
	Bound func(net.Addr)
	// Hooks are passed to every command consumer (tests only).
	Hooks commands.Hooks
}

// Run runs comsrv until ctx is done. Invalid configuration (a driver rejecting its
// channel's parameters or mappings) is returned as *service.ConfigError before
// anything starts.
func Run(ctx context.Context, cfg Config) error {
	// Everything Run starts stops with it, also when it returns early on an error.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	if cfg.ConsumerName == "" {
		host, _ := os.Hostname()
		cfg.ConsumerName = "comsrv-" + host
	}
	drivers, err := buildDrivers(cfg.Site, log)
	if err != nil {
		return &service.ConfigError{Err: err}
	}

	base, err := service.Open(ctx, "comsrv", cfg.Site, log)
	if err != nil {
		return err
	}
	defer base.Close()
	rdb, srv := base.Redis, base.HTTP
	s := &server{
		cfg: cfg, log: log, rdb: rdb,
		store:      statestore.NewWriter(rdb, cfg.Site.Site.Redis.ChangesMaxLen),
		chMetrics:  channel.NewMetrics(srv.Registry),
		cmdMetrics: commands.NewMetrics(srv.Registry),
		running:    map[uint32]*runningChannel{},
		dispatcher: commands.NewDispatcher(rdb, cfg.ConsumerName, log),
	}
	srv.HandleProfiles()
	srv.Handle("GET /channels", http.HandlerFunc(s.listChannels))
	s.handleControl(srv)
	s.runCtx = ctx

	var wg sync.WaitGroup
	wg.Go(func() { _ = s.dispatcher.Run(ctx) })
	runID, _ := redisx.RunID(ctx, rdb) // "" while Redis is away: the watcher learns it later
	wg.Go(func() { s.watchRedisResets(ctx, runID) })

	s.apply(ctx, cfg.Site, drivers)
	log.Info("comsrv running", "channels", len(cfg.Site.Channels), "http", cfg.HTTPAddr)

	err = base.Serve(ctx, cfg.HTTPAddr, cfg.Bound, cfg.Reload, s.reload)
	cancel()
	s.stopAll()
	wg.Wait()
	return err
}

// Validate checks what config.Load cannot: every channel's protocol is available
// and its driver accepts the channel's parameters and mappings. It is what
// `voltctl config validate` and a reload run before anything changes.
func Validate(site *config.Config) error {
	drivers, err := buildDrivers(site, slog.New(slog.DiscardHandler))
	for _, d := range drivers {
		_ = d.Close() // built, never connected
	}
	return err
}

// buildDrivers validates every channel by building its driver. Disabled channels
// are validated too, so enabling one later cannot fail on a typo made today.
func buildDrivers(site *config.Config, log *slog.Logger) (map[uint32]protocol.Driver, error) {
	drivers := map[uint32]protocol.Driver{}
	var errs []error
	for i := range site.Channels {
		ch := &site.Channels[i]
		d, err := protocol.New(ch, log.With("channel", ch.ID))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		drivers[ch.ID] = d
	}
	return drivers, errors.Join(errs...)
}

type server struct {
	cfg        Config
	log        *slog.Logger
	rdb        *redis.Client
	store      *statestore.Writer
	chMetrics  *channel.Metrics
	cmdMetrics *commands.Metrics
	dispatcher *commands.Dispatcher

	runCtx context.Context // Run's context: channels started later live in it
	fileMu sync.Mutex      // one change of channels.yaml at a time

	mu      sync.Mutex
	site    *config.Config
	running map[uint32]*runningChannel
}

// runningChannel is one channel's goroutines: its runner and its command consumer.
type runningChannel struct {
	ch          *config.Channel
	runner      *channel.Runner // nil for a disabled channel
	fingerprint string
	cancel      context.CancelFunc
	done        sync.WaitGroup
}

// apply starts, restarts and stops channels so that exactly site's channels run.
// Channels whose configuration did not change keep running with their connections.
func (s *server) apply(ctx context.Context, site *config.Config, drivers map[uint32]protocol.Driver) {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[uint32]bool{}
	for i := range site.Channels {
		ch := &site.Channels[i]
		want[ch.ID] = true
		fp := fingerprint(ch)
		if old := s.running[ch.ID]; old != nil {
			if old.fingerprint == fp {
				old.ch = ch
				continue
			}
			s.log.Info("channel changed; restarting it", "channel", ch.ID)
			old.stop()
		}
		s.running[ch.ID] = s.start(ctx, ch, drivers[ch.ID], fp)
	}
	for id, rc := range s.running {
		if !want[id] {
			s.log.Info("channel removed; stopping it", "channel", id)
			rc.stop()
			delete(s.running, id)
		}
	}
	s.site = site
}

func (s *server) start(ctx context.Context, ch *config.Channel, drv protocol.Driver, fp string) *runningChannel {
	cctx, cancel := context.WithCancel(ctx)
	rc := &runningChannel{ch: ch, fingerprint: fp, cancel: cancel}
	log := s.log.With("channel", ch.ID)
	worker := &commands.Worker{Channel: ch, Redis: s.rdb, Name: s.cfg.ConsumerName, Log: log, Metrics: s.cmdMetrics, Hooks: s.cfg.Hooks}
	if ch.Enabled {
		rc.runner = channel.New(ch, drv, s.rdb, s.store, s.chMetrics, s.log)
		worker.Exec = rc.runner
		rc.done.Add(1)
		go func() { defer rc.done.Done(); _ = rc.runner.Run(cctx) }()
	} else {
		log.Info("channel disabled; its commands are rejected")
		// Readers of the status hash (gateway, alarms, the cloud) see why it is silent.
		if err := s.rdb.HSet(ctx, keyspace.ChannelStatus(ch.ID), "state", "disabled").Err(); err != nil {
			log.Warn("cannot mark the channel disabled in its status", "err", err)
		}
	}
	rc.done.Add(1)
	go func() { defer rc.done.Done(); _ = worker.Run(cctx, s.dispatcher) }()
	return rc
}

func (rc *runningChannel) stop() {
	rc.cancel()
	rc.done.Wait()
}

func (s *server) stopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	var wg sync.WaitGroup
	for _, rc := range s.running {
		wg.Add(1)
		go func() { defer wg.Done(); rc.stop() }()
	}
	wg.Wait()
	s.running = map[uint32]*runningChannel{}
}

// reload loads the config folder again and applies it only if all of it is valid.
func (s *server) reload(ctx context.Context) error {
	if s.cfg.ConfigDir == "" {
		return errors.New("no config folder to reload from")
	}
	site, err := service.LoadConfig(s.cfg.ConfigDir)
	if err != nil {
		return err
	}
	drivers, err := buildDrivers(site, s.log)
	if err != nil {
		return err
	}
	s.apply(ctx, site, drivers)
	s.log.Info("configuration reloaded", "channels", len(site.Channels))
	return nil
}

// watchRedisResets notices a Redis that restarted without its data (a new run_id)
// and makes every channel rewrite all its points instead of waiting for changes.
func (s *server) watchRedisResets(ctx context.Context, last string) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		id, err := redisx.RunID(ctx, s.rdb)
		if err != nil {
			continue
		}
		if last != "" && id != last {
			s.log.Warn("redis restarted; rewriting every point", "run_id", id)
			s.mu.Lock()
			for _, rc := range s.running {
				if rc.runner != nil {
					rc.runner.MarkRedisReset()
				}
			}
			s.mu.Unlock()
		}
		last = id
	}
}

// fingerprint identifies a channel's configuration, to tell which channels a reload
// changed: a hash of all of it, so a site with many points does not keep a second
// copy of its configuration in memory.
func fingerprint(ch *config.Channel) string {
	h := sha256.New()
	_ = json.NewEncoder(h).Encode(struct {
		C *config.Channel
		P map[string][]config.Point
	}{ch, pointsByLetter(ch)})
	return string(h.Sum(nil))
}

func pointsByLetter(ch *config.Channel) map[string][]config.Point {
	m := map[string][]config.Point{}
	for t, ps := range ch.Points {
		m[t.String()] = ps
	}
	return m
}

type channelInfo struct {
	ID       uint32 `json:"id"`
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
	Enabled  bool   `json:"enabled"`
	State    string `json:"state"`
	Points   int    `json:"points"`
}

func (s *server) listChannels(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.channelInfos())
}

// channelInfos describes every channel comsrv runs, by id.
func (s *server) channelInfos() []channelInfo {
	s.mu.Lock()
	out := make([]channelInfo, 0, len(s.running))
	for _, rc := range s.running {
		info := channelInfo{ID: rc.ch.ID, Name: rc.ch.Name, Protocol: rc.ch.Protocol, Enabled: rc.ch.Enabled, State: "disabled"}
		if rc.runner != nil {
			info.State = rc.runner.State()
		}
		for _, ps := range rc.ch.Points {
			info.Points += len(ps)
		}
		out = append(out, info)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
