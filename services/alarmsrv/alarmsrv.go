// Package alarmsrv is the alarm service: it evaluates the alarm rules of
// alarmsrv/alarms.yaml on channel points, instance measurements and channel
// states as their changes arrive (pub/sub plus a resync after every subscribe),
// runs each alarm's lifecycle (active/cleared × unacknowledged/acknowledged,
// shelving, escalation, flapping), keeps the state in alarm:active and every
// transition in alarm:events, and delivers notifications (webhook, e-mail)
// through a durable outbox. Run is the whole service; cmd/alarmsrv is a thin main.
//
// Concurrency: one engine goroutine owns the rules, the conditions and the
// alarms; the HTTP API reaches them through runner.do. The outbox has one
// goroutine per notification channel.
package alarmsrv

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/model"
	"github.com/voltageems/voltage/shared/service"
)

// Config is what Run needs.
type Config struct {
	Site      *config.Config
	ConfigDir string // the site folder rules are loaded from and written to; default Site.Dir
	HTTPAddr  string
	Log       *slog.Logger
	Reload    <-chan struct{}
	// Bound, when set, receives the HTTP listener's address (tests use port 0).
	Bound func(net.Addr)
}

// Validate loads the thing model and the alarm rules of a site folder, as Run
// does before it starts and a reload before it swaps.
func Validate(site *config.Config, dir string) (*RuleSet, error) {
	m, err := model.Load(dir, site)
	if err != nil {
		return nil, err
	}
	return LoadRules(dir, site, m)
}

// Run runs alarmsrv until ctx is done. Invalid rules are returned as
// *service.ConfigError before anything starts.
func Run(ctx context.Context, cfg Config) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	dir := cfg.ConfigDir
	if dir == "" {
		dir = cfg.Site.Dir
	}
	rs, err := Validate(cfg.Site, dir)
	if err != nil {
		return &service.ConfigError{Err: err}
	}
	base, err := service.Open(ctx, "alarmsrv", cfg.Site, log)
	if err != nil {
		return err
	}
	defer base.Close()
	rdb, srv := base.Redis, base.HTTP
	mt := newMetrics(srv.Registry)
	s := &server{cfg: cfg, dir: dir, log: log, rdb: rdb, metrics: mt,
		runner: newRunner(rdb, log.With("part", "engine"), mt, cfg.Site.Site.Site.ID),
		outbox: newOutbox(rdb, log.With("part", "outbox"), mt)}
	s.rules.Store(rs)
	s.router.Store(newRouter(rs.Channels))
	s.outbox.setChannels(rs.Channels)
	reqs := &requests{rdb: rdb, log: log.With("part", "requests"), site: cfg.Site.Site.Site.ID, router: s.router.Load}

	srv.HandleProfiles()
	srv.AddReadyCheck("engine", func(context.Context) error {
		if !s.runner.ready.Load() {
			return fmt.Errorf("not subscribed and resynced, or transitions not written")
		}
		return nil
	})
	srv.AddReadyCheck("outbox", func(context.Context) error {
		if !s.outbox.ready.Load() {
			return fmt.Errorf("not reading %s", keyspace.AlarmOutbox)
		}
		return nil
	})
	s.routes(srv)

	var wg sync.WaitGroup
	wg.Go(func() { s.runner.run(ctx, rs) })
	wg.Go(func() { s.outbox.run(ctx) })
	wg.Go(func() { reqs.run(ctx) })
	log.Info("alarmsrv running", "rules", len(rs.Rules), "channels", len(rs.Channels), "http", cfg.HTTPAddr)

	err = base.Serve(ctx, cfg.HTTPAddr, cfg.Bound, cfg.Reload, s.reload)
	cancel()
	wg.Wait()
	return err
}

type server struct {
	cfg     Config
	dir     string
	log     *slog.Logger
	rdb     *redis.Client
	metrics *metrics
	runner  *runner
	outbox  *outbox

	rules  atomic.Pointer[RuleSet]
	router atomic.Pointer[router]
	// writeMu serialises rule edits (read, change, validate, write, reload).
	writeMu sync.Mutex
}

// reload loads the site folder again and applies the rules; invalid rules are
// refused and the running ones kept.
func (s *server) reload(ctx context.Context) error {
	site, err := service.LoadConfig(s.dir)
	if err != nil {
		return err
	}
	rs, err := Validate(site, s.dir)
	if err != nil {
		return err
	}
	return s.apply(ctx, rs)
}

func (s *server) apply(ctx context.Context, rs *RuleSet) error {
	err := s.runner.do(ctx, func() {
		s.runner.install(rs, s.runner.ev.alarms)
	})
	if err != nil {
		return err
	}
	s.rules.Store(rs)
	s.router.Store(newRouter(rs.Channels))
	s.outbox.setChannels(rs.Channels)
	s.log.Info("rules reloaded", "rules", len(rs.Rules), "channels", len(rs.Channels))
	return nil
}
