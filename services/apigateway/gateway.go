// Package apigateway is the single public door of an edge site: the OpenAPI REST
// API (Huma on chi) and the WebSocket push, behind JWT authentication and
// role-based access on every operation. Internal services listen on loopback; the
// gateway reads realtime state straight from Redis and forwards the rest to them
// with the caller's name in httpapi.HeaderUser. Run is the whole service;
// cmd/apigateway is a thin main around it.
package apigateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/service"
)

// Name is the service name (heartbeat, listen address).
const Name = "apigateway"

// Config is what Run needs.
type Config struct {
	Site      *config.Config
	ConfigDir string // the site folder: settings, config validation
	HTTPAddr  string
	Log       *slog.Logger
	// Settings, when set, are used (validated) instead of ConfigDir's
	// apigateway/apigateway.yaml.
	Settings *Settings
	// BcryptCost overrides the settings' cost of new password hashes. Tests only:
	// they log in hundreds of times on a loaded machine.
	BcryptCost int
	// AdminPassword is the first admin's password on the first start; "" takes
	// VOLTAGE_ADMIN_PASSWORD, else one is generated and written to Out.
	AdminPassword string
	// Out receives the generated admin password (default os.Stderr).
	Out io.Writer
	// Services overrides the internal services' base URLs by name (tests); by
	// default they come from site.yaml listen: and service.DefaultAddrs.
	Services map[string]string
	// Bound, when set, receives the listener's address (tests use port 0).
	Bound func(net.Addr)
	// Now is the clock of token issuing and checking (tests); default time.Now.
	Now func() time.Time
}

// Run runs the gateway until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	var set Settings
	if cfg.Settings != nil {
		set = *cfg.Settings
		if err := set.validate("Config.Settings"); err != nil {
			return &service.ConfigError{Err: err}
		}
	} else {
		s, err := LoadSettings(cfg.ConfigDir)
		if err != nil {
			return &service.ConfigError{Err: err}
		}
		set = s
	}
	if cfg.BcryptCost != 0 {
		set.BcryptCost = cfg.BcryptCost
	}
	base, err := service.Open(ctx, Name, cfg.Site, log)
	if err != nil {
		return err
	}
	defer base.Close()
	s := newServer(cfg, set, base.Redis, log)
	s.metrics = newMetrics(base.HTTP.Registry)
	s.runCtx = ctx
	s.hub = newHub(s)
	s.hub.ps = base.Redis.Subscribe(ctx)
	channels := make([]uint32, len(cfg.Site.Channels))
	for i := range cfg.Site.Channels {
		channels[i] = cfg.Site.Channels[i].ID
	}
	s.mirror = newMirror(base.Redis, channels, s.metrics, log)
	pw := cfg.AdminPassword
	if pw == "" {
		pw = os.Getenv(EnvAdminPassword)
	}
	out := cfg.Out
	if out == nil {
		out = os.Stderr
	}
	// The first admin must exist before anyone can log in; Redis may still be on
	// its way, so this retries until it answers.
	for {
		created, err := s.users.bootstrap(ctx, pw, set.MinPasswordLength, out)
		if err == nil {
			if created {
				log.Info("first start: admin user created")
			}
			break
		}
		log.Warn("cannot bootstrap users yet", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
	h := s.handler(base.HTTP)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	tlsOn := set.TLS.CertFile != ""
	if tlsOn {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
	}
	if cfg.Bound != nil {
		cfg.Bound(ln.Addr())
	}
	log.Info("apigateway running", "http", ln.Addr().String(), "tls", tlsOn)

	var wg sync.WaitGroup
	wg.Go(func() { service.Heartbeat(ctx, base.Redis, Name, log) })
	wg.Go(func() { s.hub.run(ctx) })
	wg.Go(func() { s.mirror.run(ctx) })
	serveErr := make(chan error, 1)
	wg.Go(func() {
		if tlsOn {
			serveErr <- srv.ServeTLS(ln, set.TLS.CertFile, set.TLS.KeyFile)
		} else {
			serveErr <- srv.Serve(ln)
		}
	})
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	wg.Wait()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// server holds what the operations share.
type server struct {
	cfg    Config
	set    Settings
	log    *slog.Logger
	rdb    *redis.Client
	users  *users
	tokens *tokens
	svc    *internalServices
	api    huma.API

	metrics *metrics
	hub     *hub
	mirror  *mirror         // nil: every realtime read goes to Redis
	runCtx  context.Context // the service's life: WebSocket clients end with it
}

func newServer(cfg Config, set Settings, rdb *redis.Client, log *slog.Logger) *server {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	u := newUsers(rdb, set.BcryptCost)
	return &server{
		cfg: cfg, set: set, log: log, rdb: rdb, users: u,
		tokens:  newTokens(u, set.accessTTL, set.refreshTTL, now),
		svc:     newInternalServices(cfg.Site, cfg.Services),
		metrics: newMetrics(nil),
		runCtx:  context.Background(),
	}
}
