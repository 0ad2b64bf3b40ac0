// Package hub is the cloud hub (DESIGN §1, §6, §7): the NATS server every edge site
// joins as a leaf node, the JetStream streams that source each site's UPLINK across
// the leaf link, the site registry and fleet state built from them, cloud history,
// downlink commands and the cloud API.
//
// Data path: a site's edge keeps its UPLINK stream in JetStream domain {site}. For
// every known site (cloud.yaml sites, or its first heartbeat on ems.{site}.up.status)
// the hub keeps a stream SITE_{site} that sources UPLINK through $JS.{site}.API. The
// source's cursor lives in the hub stream, so a cut link, an edge restart or a hub
// restart resumes where it stopped; Nats-Msg-Id de-duplicates re-publications. Each
// hub stream is then read twice: by an ordered consumer that folds it into the fleet
// state (latest values, status, active alarms), and by a durable consumer that
// writes it to history and acknowledges only after the write.
//
// Concurrency: Run owns every goroutine. Each site has one runner goroutine (its
// stream, its fleet follower, its history writer) started by addSite and stopped
// with Run's context; the registry and each site's state have their own locks.
package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/voltageems/voltage/shared/httpapi"
	"github.com/voltageems/voltage/shared/natsx"
	"github.com/voltageems/voltage/shared/service"
	"github.com/voltageems/voltage/shared/subjects"
)

// Run runs the hub until ctx is done, then shuts the HTTP server and nats-server
// down. Invalid settings come back as *service.ConfigError before anything starts;
// a port in use or a JetStream store that cannot be opened as an error naming it.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	cfg.applyDefaults()
	if errs := cfg.check(); len(errs) > 0 {
		return &service.ConfigError{Err: errors.Join(errs...)}
	}
	h := &hub{cfg: cfg, log: log, reg: newRegistry(cfg.Registry.HeartbeatInterval.Duration), running: map[string]bool{}}
	h.metrics = newMetrics(h)

	var natsURL string
	var connOpts []nats.Option
	if cfg.NATS.URL == "" {
		opts, err := serverOptions(&cfg)
		if err != nil {
			return &service.ConfigError{Err: err}
		}
		if len(opts.Users) == 0 {
			log.Warn("leaf-node port is open: no site has a leaf_password, so any leaf node can join and nothing limits it to its own subjects (lab setups only)")
		}
		if opts.LeafNode.TLSConfig == nil {
			log.Warn("leaf-node port is not encrypted: set nats.leaf_tls (lab setups only)")
		}
		ns, err := natsx.StartServer(opts, log)
		if err != nil {
			return fmt.Errorf("start hub nats server (clients %s, leaf nodes %s, store %s): %w",
				cfg.NATS.ClientAddr, cfg.NATS.LeafAddr, cfg.NATS.StoreDir, err)
		}
		defer func() {
			ns.Shutdown()
			ns.WaitForShutdown()
			log.Info("hub nats server stopped")
		}()
		h.ns, h.leafURL = ns, leafURL(opts)
		natsURL = ns.ClientURL()
		connOpts = append(connOpts, nats.InProcessServer(ns))
	} else {
		natsURL = cfg.NATS.URL
		if cfg.NATS.Credentials != "" {
			connOpts = append(connOpts, nats.UserCredentials(cfg.NATS.Credentials))
		}
	}
	nc, err := nats.Connect(natsURL, append(connOpts,
		nats.Name(ServerName),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("hub lost its NATS connection; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("hub NATS connection restored") }),
	)...)
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("JetStream on %s: %w", natsURL, err)
	}
	h.nc, h.js = nc, js

	if err := h.openHistory(); err != nil {
		return err
	}
	defer h.closeHistory() // after the site runners, which write to it, stopped

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h.ctx = ctx
	defer h.sites.Wait() // after cancel (deferred later, runs first)
	defer cancel()

	for _, s := range cfg.Sites {
		h.addSite(s.ID, s.Name, true)
	}
	hb, err := nc.Subscribe(subjects.StatusUpAll, h.onHeartbeat)
	if err != nil {
		return fmt.Errorf("subscribe to site heartbeats %s: %w", subjects.StatusUpAll, err)
	}
	defer func() { _ = hb.Unsubscribe() }()

	// HTTP first: /healthz and /readyz answer while JetStream (an external server)
	// is still away; the API answers 503 until its stores are open.
	srv := h.httpServer(http.HandlerFunc(h.serveAPI))
	bound := make(chan net.Addr, 1)
	httpErr := make(chan error, 1)
	setupDone := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		httpErr <- srv.Serve(ctx, cfg.HTTP.Addr, func(a net.Addr) { bound <- a })
	}()
	go func() { defer wg.Done(); setupDone <- h.setup(ctx) }()
	if h.ns != nil {
		wg.Add(1)
		go func() { defer wg.Done(); h.watchLeafs(ctx) }()
	}

	var runErr error
	var addr net.Addr
	setupPending := setupDone // nil once setup finished
	for addr == nil || setupPending != nil {
		select {
		case addr = <-bound:
		case runErr = <-setupPending:
			setupPending = nil
			if ctx.Err() != nil {
				runErr = nil // stopped while starting: not a failure
			}
		case runErr = <-httpErr:
		case <-ctx.Done():
		}
		if runErr != nil || ctx.Err() != nil {
			break
		}
	}
	if runErr == nil && ctx.Err() == nil {
		log.Info("cloud hub running", "nats", natsURL, "leaf", h.leafURL, "http", addr.String(), "store", cfg.NATS.StoreDir, "sites", len(cfg.Sites))
		if cfg.Started != nil {
			cfg.Started(Endpoints{ClientURL: natsURL, LeafURL: h.leafURL, HTTP: addr})
		}
		select {
		case <-ctx.Done():
		case runErr = <-httpErr:
		}
	}
	cancel()
	wg.Wait() // before nats-server shuts down: the watcher and handlers use it
	return runErr
}

// setup opens what lives in JetStream — the audit stream, the site registry
// bucket, the users store — restores the registry and enables the API. Each step
// retries until JetStream answers or ctx is done.
func (h *hub) setup(ctx context.Context) error {
	if err := h.openAudit(ctx); err != nil {
		return err
	}
	if err := h.openSiteStore(ctx); err != nil {
		return err
	}
	if err := h.restoreSites(ctx); err != nil {
		h.log.Warn("cannot restore the site registry; sites reappear with their next heartbeat", "err", err)
	}
	api, err := h.newAPI(ctx)
	if err != nil {
		return err
	}
	h.api.Store(&api)
	return nil
}

// serveAPI serves the API once setup enabled it.
func (h *hub) serveAPI(w http.ResponseWriter, r *http.Request) {
	if api := h.api.Load(); api != nil {
		(*api).ServeHTTP(w, r)
		return
	}
	w.Header().Set("Retry-After", "5")
	httpapi.Problem(w, http.StatusServiceUnavailable, "Service Unavailable", "the hub is starting: JetStream does not answer yet")
}

// check validates a Config that did not come from Load (tests, embedders).
func (c *Config) check() []error {
	v := validator{path: FileName}
	v.validate(c)
	errs := make([]error, len(v.errs))
	for i, e := range v.errs {
		errs[i] = errors.New(e.Msg)
	}
	return errs
}

type hub struct {
	cfg     Config
	log     *slog.Logger
	ns      *server.Server // nil with an external NATS server
	leafURL string
	nc      *nats.Conn
	js      jetstream.JetStream
	reg     *registry
	metrics *metrics
	hist    *history
	siteKV  atomic.Pointer[jetstream.KeyValue] // the registry's durable part (registry_store.go), set by setup
	api     atomic.Pointer[http.Handler]       // the API, set by setup
	ctx     context.Context                    // Run's; site runners live as long as it

	mu      sync.Mutex
	running map[string]bool // sites whose runner was started
	sites   sync.WaitGroup  // the site runners
}

// addSite registers a site (configured, or from its first heartbeat) and starts its
// runner once.
func (h *hub) addSite(id, name string, configured bool) *siteState {
	s, isNew := h.reg.add(id, name, configured)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running[id] || h.ctx.Err() != nil {
		return s
	}
	h.running[id] = true
	if isNew && !configured {
		h.log.Info("new site registered from its heartbeat", "site", id, "name", name)
	}
	h.sites.Add(1)
	go func() {
		defer h.sites.Done()
		h.runSite(h.ctx, s)
	}()
	return s
}
