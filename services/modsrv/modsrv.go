// Package modsrv is the model service: it loads the site's thing model
// (shared/model: products, instances, routing, calculations), routes channel
// measurements to instance measurements, evaluates the calculation DAG
// incrementally, and turns instance actions into channel commands. Run is the
// whole service; cmd/modsrv is a thin main around it.
package modsrv

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/model"
	"github.com/voltageems/voltage/shared/service"
	"github.com/voltageems/voltage/shared/statestore"
)

// Config is what Run needs.
type Config struct {
	Site      *config.Config
	ConfigDir string // reloaded from on SIGHUP and POST /reload; "" disables reloads
	HTTPAddr  string
	Log       *slog.Logger
	Reload    <-chan struct{}

	// ConsumerName names this modsrv in the action consumer group. It must stay the
	// same across restarts so actions read before a crash are found again.
	// Default: modsrv-{hostname}.
	ConsumerName string
	// ActionClaimAge is how long an action read by another consumer may stay
	// unacknowledged before this one takes it over. Default 30 s.
	ActionClaimAge time.Duration
	// ActionTimeout bounds how long POST /instances/{id}/actions/{action} waits for
	// the outcome. Default 10 s.
	ActionTimeout time.Duration
	// Bound, when set, receives the HTTP listener's address (tests use port 0).
	Bound func(net.Addr)
}

// Validate loads and checks the model of a site folder, as Run does before it
// starts and a reload before it swaps.
func Validate(site *config.Config, dir string) (*model.Model, error) {
	return model.Load(dir, site)
}

// Run runs modsrv until ctx is done. An invalid model is returned as
// *service.ConfigError before anything starts.
func Run(ctx context.Context, cfg Config) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	if cfg.ConsumerName == "" {
		host, _ := os.Hostname()
		cfg.ConsumerName = "modsrv-" + host
	}
	if cfg.ActionClaimAge <= 0 {
		cfg.ActionClaimAge = 30 * time.Second
	}
	if cfg.ActionTimeout <= 0 {
		cfg.ActionTimeout = 10 * time.Second
	}
	dir := cfg.ConfigDir
	if dir == "" {
		dir = cfg.Site.Dir
	}
	m, err := Validate(cfg.Site, dir)
	if err != nil {
		return &service.ConfigError{Err: err}
	}

	base, err := service.Open(ctx, "modsrv", cfg.Site, log)
	if err != nil {
		return err
	}
	defer base.Close()
	rdb, srv := base.Redis, base.HTTP
	s := &server{
		cfg: cfg, dir: dir, log: log, rdb: rdb,
		store:   statestore.NewWriter(rdb, cfg.Site.Site.Redis.ChangesMaxLen),
		metrics: newMetrics(srv.Registry),
	}
	srv.HandleProfiles()
	srv.AddReadyCheck("routing", s.routingReady)
	srv.AddReadyCheck("actions", func(context.Context) error {
		if !s.actionsReady.Load() {
			return errors.New("not reading inst:actions")
		}
		return nil
	})
	s.routes(srv)

	var wg sync.WaitGroup
	ac := &actionConsumer{rdb: rdb, name: cfg.ConsumerName, model: s.model, log: log.With("part", "actions"),
		metrics: s.metrics, claimAge: cfg.ActionClaimAge, ready: s.actionsReady.Store}
	wg.Go(func() { ac.run(ctx) })

	s.start(ctx, m)
	logReport(log, m)
	log.Info("modsrv running", "model", m.Summary(), "http", cfg.HTTPAddr)

	err = base.Serve(ctx, cfg.HTTPAddr, cfg.Bound, cfg.Reload, s.reload)
	cancel()
	s.stop()
	wg.Wait()
	return err
}

type server struct {
	cfg     Config
	dir     string
	log     *slog.Logger
	rdb     *redis.Client
	store   *statestore.Writer
	metrics *metrics

	actionsReady atomic.Bool

	mu      sync.Mutex
	current *engine
	cancel  context.CancelFunc
	done    chan struct{}
}

// model is the running model (nil before the first start).
func (s *server) model() *model.Model {
	if e := s.engine(); e != nil {
		return e.m
	}
	return nil
}

func (s *server) engine() *engine {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

// start runs an engine for m, replacing (and stopping) the running one.
func (s *server) start(ctx context.Context, m *model.Model) {
	s.stop()
	e := newEngine(m, s.rdb, s.store, s.log.With("part", "routing"), s.metrics)
	ectx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); e.run(ectx) }()
	s.mu.Lock()
	s.current, s.cancel, s.done = e, cancel, done
	s.mu.Unlock()
	s.writeNames(ctx, m)
}

func (s *server) stop() {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// reload loads the model again and swaps it in only when all of it is valid.
func (s *server) reload(ctx context.Context) error {
	if s.cfg.ConfigDir == "" {
		return errors.New("no config folder to reload from")
	}
	site, err := service.LoadConfig(s.cfg.ConfigDir)
	if err == nil {
		var m *model.Model
		if m, err = Validate(site, s.cfg.ConfigDir); err == nil {
			s.start(ctx, m)
			logReport(s.log, m)
			s.log.Info("model reloaded", "model", m.Summary())
			s.metrics.reloads.WithLabelValues("ok").Inc()
			return nil
		}
	}
	s.metrics.reloads.WithLabelValues("refused").Inc()
	return err
}

func (s *server) routingReady(context.Context) error {
	e := s.engine()
	switch {
	case e == nil:
		return errNoModel
	case !e.subscribed.Load():
		return errors.New("not subscribed to the channel changes")
	case !e.synced.Load():
		return errors.New("instance values not synchronised with the channel hashes yet")
	}
	return nil
}

// writeNames writes inst:{id}:name and inst:name:index. Redis being away is
// logged; the next reload or start writes them again.
func (s *server) writeNames(ctx context.Context, m *model.Model) {
	pipe := s.rdb.TxPipeline()
	pipe.Del(ctx, keyspace.InstanceNames)
	for _, inst := range m.Instances {
		pipe.Set(ctx, keyspace.InstanceName(inst.ID), inst.Name, 0)
		pipe.HSet(ctx, keyspace.InstanceNames, inst.Name, inst.ID)
	}
	if _, err := pipe.Exec(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("cannot write the instance name index", "err", err)
	}
}

// logReport lists what the model leaves unused, so it is never silently ignored.
func logReport(log *slog.Logger, m *model.Model) {
	r := m.Report
	for _, p := range r.UnroutedChannelPoints {
		log.Info("channel point not routed to any instance", "channel", p.Channel, "type", p.Type.String(), "point", p.Point, "name", p.Name)
	}
	for _, p := range r.UnroutedMeasurements {
		log.Info("instance measurement neither routed nor calculated", "instance", p.Instance, "measurement", p.Name)
	}
	for _, p := range r.UnroutedActions {
		log.Info("instance action not routed", "instance", p.Instance, "action", p.Name)
	}
	for _, w := range r.Warnings {
		log.Warn(w)
	}
}

var _ http.Handler = http.HandlerFunc(nil)
