// Package rulesrv is the automation service: it loads the site's rules
// (config/rulesrv/rules/*.yaml), evaluates them on every change of their inputs
// (instance measurements and channel points, through Redis pub/sub, with a
// resync from the hashes after every (re)subscribe), on intervals and cron
// schedules, and runs their actions — instance actions and channel commands
// through the command path of DESIGN §5, virtual points, events, webhooks and
// notifications — recording every execution in rule:{id}:exec and rule:events.
// Run is the whole service; cmd/rulesrv is a thin main around it.
package rulesrv

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/model"
	"github.com/voltageems/voltage/shared/service"
)

// Config is what Run needs.
type Config struct {
	Site      *config.Config
	ConfigDir string // the site folder: rules are read from and written to ConfigDir/rulesrv/rules
	HTTPAddr  string
	Log       *slog.Logger
	Reload    <-chan struct{}
	// Bound, when set, receives the HTTP listener's address (tests use port 0).
	Bound func(net.Addr)
	// Now is the clock of conditions (clock.*), cron schedules and durations.
	// Default time.Now; tests shift it.
	Now func() time.Time
	// ConflictWindow is "the same moment" for two rules writing one point. Default 1 s.
	ConflictWindow time.Duration
}

// Validate loads the model and the rules of a site folder, as Run does before it
// starts and a reload before it swaps.
func Validate(site *config.Config, dir string) (*Rules, error) {
	m, err := model.Load(dir, site)
	if err != nil {
		return nil, err
	}
	return LoadRules(dir, site, m)
}

// Run runs rulesrv until ctx is done. Invalid rules are returned as
// *service.ConfigError before anything starts.
func Run(ctx context.Context, cfg Config) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ConfigDir == "" {
		cfg.ConfigDir = cfg.Site.Dir
	}
	rs, err := Validate(cfg.Site, cfg.ConfigDir)
	if err != nil {
		return &service.ConfigError{Err: err}
	}
	b, err := service.Open(ctx, "rulesrv", cfg.Site, log)
	if err != nil {
		return err
	}
	defer b.Close()
	rdb := b.Redis

	mt := newMetrics(b.HTTP.Registry)
	rec := newRecorder(rdb, log.With("part", "records"), mt)
	x := newExecutor(ctx, rdb, log.With("part", "actions"), mt, rec)
	wd := newWatchdog(rdb, log.With("part", "watchdog"), x, rec, mt)
	x.watch = wd
	s := &server{ctx: ctx, cfg: cfg, log: log, rdb: rdb, metrics: mt, rec: rec, exec: x, arb: newArbiter(cfg.ConflictWindow)}
	b.HTTP.HandleProfiles()
	b.HTTP.AddReadyCheck("rules", s.rulesReady)
	s.routes(b.HTTP)

	// The recorder outlives the engine and the actions, so their last records are
	// written while stopping.
	recCtx, stopRec := context.WithCancel(context.WithoutCancel(ctx))
	var recWG sync.WaitGroup
	recWG.Add(1)
	go func() { defer recWG.Done(); rec.run(recCtx) }()
	defer func() { stopRec(); recWG.Wait() }()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); x.dispatch(ctx) }()
	go func() { defer wg.Done(); wd.run(ctx) }()
	defer func() { cancel(); s.stop(); wg.Wait(); x.wait() }()

	if err := s.start(ctx, rs); err != nil {
		return err
	}
	log.Info("rulesrv running", "rules", len(rs.List), "http", cfg.HTTPAddr)
	return b.Serve(ctx, cfg.HTTPAddr, cfg.Bound, cfg.Reload, s.reload)
}

type server struct {
	ctx      context.Context // Run's: engines live as long as rulesrv, not as a request
	cfg      Config
	log      *slog.Logger
	rdb      *redis.Client
	metrics  *metrics
	rec      *recorder
	exec     *executor
	arb      *arbiter
	fileMu   sync.Mutex // serialises writes of rule files
	reloadMu sync.Mutex // one reload at a time (SIGHUP, POST /reload, the rules API)

	mu      sync.Mutex
	rules   *Rules
	current *engine
	cancel  context.CancelFunc
	done    chan struct{}
}

func (s *server) engine() (*engine, *Rules) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current, s.rules
}

// start runs an engine for rs, replacing the running one and taking over the
// state of the rules that did not change.
func (s *server) start(ctx context.Context, rs *Rules) error {
	old, _ := s.engine()
	s.stop()
	e, err := newEngine(rs, s.rdb, s.log.With("part", "engine"), s.cfg.Now, s.metrics, s.exec, s.rec, s.arb)
	if err != nil {
		return err
	}
	if old != nil {
		e.adopt(old)
	} else {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		e.restoreStates(rctx)
		cancel()
	}
	ectx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); e.run(ectx) }()
	s.mu.Lock()
	s.rules, s.current, s.cancel, s.done = rs, e, cancel, done
	s.mu.Unlock()
	return nil
}

func (s *server) stop() {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.cancel, s.done = nil, nil
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// reload loads the site and the rules again and swaps them in only when all of
// it is valid. ctx is the asker's (SIGHUP, POST /reload, the rules API); the new
// engine runs under rulesrv's own.
func (s *server) reload(context.Context) error {
	ctx := s.ctx
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	site, err := service.LoadConfig(s.cfg.ConfigDir)
	if err == nil {
		var rs *Rules
		if rs, err = Validate(site, s.cfg.ConfigDir); err == nil {
			if err = s.start(ctx, rs); err == nil {
				// Answer once the new engine holds its inputs, so a dry run or a
				// status read right after a change sees the live values. Redis
				// being slow only delays the answer; the engine is in place.
				if e, _ := s.engine(); e != nil {
					wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
					e.waitSynced(wctx)
					cancel()
				}
				s.metrics.reloads.WithLabelValues("ok").Inc()
				s.log.Info("rules reloaded", "rules", len(rs.List))
				return nil
			}
		}
	}
	s.metrics.reloads.WithLabelValues("refused").Inc()
	return err
}

func (s *server) rulesReady(context.Context) error {
	e, _ := s.engine()
	switch {
	case e == nil:
		return errors.New("no rules loaded")
	case !e.subscribed.Load():
		return errors.New("not subscribed to the input changes")
	case !e.synced.Load():
		return errors.New("inputs not read from the hashes yet")
	}
	return nil
}
