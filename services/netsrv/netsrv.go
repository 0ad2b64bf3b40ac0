// Package netsrv forwards selected points to clouds and other endpoints (AWS IoT
// Core, Aliyun IoT Platform, any MQTT broker, HTTP webhooks) and turns cloud
// writes into commands. Every link reads voltage:changes in its own consumer
// group and keeps what it could not deliver (the stream, then an on-disk spool),
// so an outage or a crash loses nothing. Run is the whole service; cmd/netsrv is
// a thin main around it and the edge appliance embeds it.
package netsrv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/service"
)

// Config is what Run needs.
type Config struct {
	Site      *config.Config
	ConfigDir string // netsrv/netsrv.yaml is read from here (default Site.Dir)
	HTTPAddr  string // health, metrics and the link status API
	Log       *slog.Logger
	Reload    <-chan struct{}
	// Bound, when set, receives the HTTP listener's address (tests use port 0).
	Bound func(net.Addr)
	// DataDir overrides the file's spool_dir (the folder of the links' spools).
	DataDir string
	// Now is the clock of sign-ins that carry a timestamp (Aliyun); default time.Now.
	Now func() time.Time
}

// Run runs netsrv until ctx is done. An invalid netsrv.yaml (or TLS material that
// does not load) is returned as *service.ConfigError before anything starts.
func Run(ctx context.Context, cfg Config) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	if cfg.ConfigDir == "" {
		cfg.ConfigDir = cfg.Site.Dir
	}
	fc, err := loadChecked(cfg.ConfigDir, cfg.DataDir)
	if err != nil {
		return &service.ConfigError{Err: err}
	}
	base, err := service.Open(ctx, "netsrv", cfg.Site, log)
	if err != nil {
		return err
	}
	defer base.Close()
	rdb, srv := base.Redis, base.HTTP
	s := &server{
		site: cfg.Site.Site.Site.ID, log: log, rdb: rdb,
		metrics:       newMetrics(srv.Registry),
		running:       map[string]*runningLink{},
		now:           cfg.Now,
		changesMaxLen: cfg.Site.Site.Redis.ChangesMaxLen,
	}
	if s.changesMaxLen <= 0 {
		s.changesMaxLen = config.DefaultChangesMaxLen
	}
	if s.now == nil {
		s.now = time.Now
	}
	srv.AddReadyCheck("links", s.readyLinks)
	srv.Handle("GET /links", http.HandlerFunc(s.listLinks))
	srv.Handle("GET /links/{name}", http.HandlerFunc(s.getLink))

	if err := s.apply(ctx, fc); err != nil {
		s.stopAll()
		return err
	}
	log.Info("netsrv running", "links", len(s.links()), "configured", len(fc.Links), "http", cfg.HTTPAddr)

	// A reload keeps unchanged links connected (apply compares fingerprints).
	err = base.Serve(ctx, cfg.HTTPAddr, cfg.Bound, cfg.Reload, func(ctx context.Context) error {
		nfc, err := loadChecked(cfg.ConfigDir, cfg.DataDir)
		if err != nil {
			return err
		}
		return s.apply(ctx, nfc)
	})
	cancel()
	s.stopAll()
	return err
}

// loadChecked loads netsrv.yaml and checks that every enabled link's TLS material
// loads (a disabled link's files need not exist yet). A dataDir overrides the
// file's spool_dir.
func loadChecked(dir, dataDir string) (*FileConfig, error) {
	path := ConfigPath(dir)
	fc, err := LoadFile(path)
	if err != nil {
		return nil, err
	}
	if dataDir != "" {
		fc.SpoolDir = dataDir
	}
	var errs []error
	for i := range fc.Links {
		l := &fc.Links[i]
		if !l.IsEnabled() {
			continue
		}
		if _, err := tlsConfig(l.TLS); err != nil {
			errs = append(errs, fmt.Errorf("%s: link %s: %w", path, l.Name, err))
		}
	}
	return fc, errors.Join(errs...)
}

type server struct {
	site    string
	log     *slog.Logger
	rdb     redis.UniversalClient
	metrics *metrics
	now     func() time.Time
	// changesMaxLen is voltage:changes' cap, for spool.after_entries' default.
	changesMaxLen int64

	mu      sync.Mutex
	running map[string]*runningLink
}

// apply starts, restarts and stops links so that exactly fc's enabled links run;
// a link whose configuration did not change keeps its connection.
func (s *server) apply(ctx context.Context, fc *FileConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[string]bool{}
	for i := range fc.Links {
		l := &fc.Links[i]
		if !l.IsEnabled() {
			continue
		}
		want[l.Name] = true
		fp := fingerprint(fc.SpoolDir, l)
		if old := s.running[l.Name]; old != nil {
			if old.fingerprint == fp {
				continue
			}
			s.log.Info("link changed; restarting it", "link", l.Name)
			old.stop()
			delete(s.running, l.Name)
		}
		rl, err := s.start(ctx, fc.SpoolDir, l)
		if err != nil {
			return fmt.Errorf("start link %s: %w", l.Name, err)
		}
		rl.fingerprint = fp
		s.running[l.Name] = rl
	}
	for name, rl := range s.running {
		if !want[name] {
			s.log.Info("link removed; stopping it", "link", name)
			rl.stop()
			delete(s.running, name)
		}
	}
	return nil
}

func fingerprint(spoolDir string, l *LinkConfig) string {
	b, _ := json.Marshal(struct {
		Dir  string
		Link *LinkConfig
	}{spoolDir, l})
	return string(b)
}

func (s *server) stopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, rl := range s.running {
		rl.stop()
		delete(s.running, name)
	}
}

func (s *server) links() []*runningLink {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*runningLink, 0, len(s.running))
	for _, rl := range s.running {
		out = append(out, rl)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].cfg.Name < out[j].cfg.Name })
	return out
}

func (s *server) readyLinks(context.Context) error {
	var errs []error
	for _, rl := range s.links() {
		if up, lastErr := rl.link.state(); !up {
			errs = append(errs, fmt.Errorf("link %s not connected: %s", rl.cfg.Name, lastErr))
		}
	}
	return errors.Join(errs...)
}
