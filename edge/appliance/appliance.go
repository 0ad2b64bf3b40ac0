// Package appliance is the edge appliance (DESIGN §1, §6): every edge service of a
// site in one process, beside an embedded NATS server that runs under the site's own
// JetStream domain and joins the cloud hub as a leaf node.
//
// It runs the services listed in services.go (or those of Config.Services, the
// others then running as their own binaries: placement.go), the embedded server
// and the edge↔cloud bridge (edge/bridge): the uplink of the selected changes and
// alarm events into the JetStream stream UPLINK, the downlink commands on
// ems.{site}.down.cmd and the site heartbeat on ems.{site}.up.status.
package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/voltageems/voltage/edge/bridge"
	"github.com/voltageems/voltage/services/apigateway"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/natsx"
	"github.com/voltageems/voltage/shared/obs"
	"github.com/voltageems/voltage/shared/redisx"
	"github.com/voltageems/voltage/shared/service"
)

// DefaultHTTPAddr is the appliance's own HTTP address (/healthz, /readyz, /metrics,
// /status). Each embedded service keeps its own address of DESIGN §9 beside it.
const DefaultHTTPAddr = "127.0.0.1:6000"

// leafPollInterval is how often the appliance checks the hub link, to log when it
// goes up or down (nats-server's own notices about it go to debug).
const leafPollInterval = time.Second

// Config is what Run needs.
type Config struct {
	Site      *config.Config
	ConfigDir string // reloaded from on SIGHUP (by the services that reload)
	HTTPAddr  string // the appliance's own endpoints; default DefaultHTTPAddr
	Log       *slog.Logger
	Reload    <-chan struct{}

	// NATSStoreDir is where the embedded server's JetStream keeps its data, in
	// NATSStoreDir/jetstream. Default DefaultNATSStoreDir.
	NATSStoreDir string
	// DataDir, when set, is where the services keep their files, each in
	// DataDir/{service} (hissrv's history store, netsrv's spools); "" leaves each
	// service its own default (data_dir / spool_dir of its file, else ./data/{service}).
	DataDir string
	// HeartbeatInterval is how often the site heartbeat goes out. Default 5 s.
	HeartbeatInterval time.Duration
	// Services are the services run in this process (ParseServices reads them
	// from VOLTAGE_EDGE_SERVICES); nil runs all of them, an empty list none. Each
	// one left out runs as its own binary: the appliance expects it at its listen
	// address, probes it for /readyz, lists it in /status and the heartbeat, and
	// does not wait for it to start.
	Services []string
	// Started, when set, is called once every listener is bound, with the bound
	// addresses (so tests and the dev stack can use port 0); an external service
	// is given at the address it is expected at.
	Started func(Endpoints)
}

// Endpoints are where a running appliance listens.
type Endpoints struct {
	HTTP          net.Addr            // the appliance's own endpoints
	Services      map[string]net.Addr // each service's own HTTP, by name (external ones included)
	NATSClientURL string              // the embedded NATS server, for the site's clients
}

// Run runs the appliance until ctx is done or one of its parts fails, then stops
// every part and the embedded NATS server. Invalid configuration comes back as
// *service.ConfigError; a port in use as an error naming it. A hub that cannot be
// reached is not an error: the link is redialled for as long as the site runs.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	if cfg.Site == nil {
		return &service.ConfigError{Err: errors.New("appliance: no site configuration")}
	}
	nset, err := newNATSSettings(cfg.Site, cfg.NATSStoreDir)
	if err != nil {
		return &service.ConfigError{Err: err}
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = DefaultHTTPAddr
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	dir := cfg.ConfigDir
	if dir == "" {
		dir = cfg.Site.Dir
	}
	upCfg, err := bridge.LoadConfig(dir, cfg.Site)
	if err != nil {
		return &service.ConfigError{Err: err}
	}
	placed, err := place(cfg.Site, cfg.Services)
	if err != nil {
		return err
	}
	rdb, err := redisx.Connect(ctx, cfg.Site.Site.Redis.URL, redisx.WithClientName("voltage-edge"))
	if err != nil {
		return &service.ConfigError{Err: err}
	}
	defer rdb.Close()

	ns, err := natsx.StartServer(nset.options(), log)
	if err != nil {
		return fmt.Errorf("start embedded nats server (clients %s:%d, store %s): %w", nset.host, nset.port, nset.storeDir, err)
	}
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
		log.Info("embedded nats server stopped")
	}()
	// The appliance's own publisher connects in process: no socket, nothing to lose.
	nc, err := nats.Connect("", nats.InProcessServer(ns), nats.Name("voltage-edge"))
	if err != nil {
		return fmt.Errorf("connect to the embedded nats server: %w", err)
	}
	defer nc.Close()
	br, err := bridge.New(bridge.Options{Site: cfg.Site, Config: upCfg, Redis: rdb, NATS: nc, Log: log.With("component", "bridge")})
	if err != nil {
		return err
	}

	ep := newEndpoints(ns, nset, br, placed.external)
	defer ep.probe.CloseIdleConnections()
	srv := obs.NewServer(log)
	srv.HandleProfiles() // loopback by default, like the internal services
	names := serviceNames()
	ep.register(srv, names)

	type bound struct {
		name string
		addr net.Addr
	}
	log.Info("edge services placed", "in_process", placed.inProcessList(), "external", placed.externalList())
	if addr, ok := placed.external[apigateway.Name]; ok {
		br.SetGatewayAddr(addr.String())
	}
	g := newGroup(ctx)
	boundc := make(chan bound, len(placed.inProcess)+1)
	reloads := make([]chan struct{}, len(placed.inProcess))
	for i, svc := range placed.inProcess {
		reloads[i] = make(chan struct{}, 1)
		env := serviceEnv{
			Site:      cfg.Site,
			ConfigDir: cfg.ConfigDir,
			// Not service.HTTPAddr: VOLTAGE_HTTP_ADDR is the appliance's own address.
			HTTPAddr: cfg.Site.Site.ListenAddr(svc.name, service.DefaultAddrs[svc.name]),
			Log:      log.With("component", svc.name),
			Reload:   reloads[i],
			Bound:    func(a net.Addr) { boundc <- bound{svc.name, a} },
		}
		if cfg.DataDir != "" {
			env.DataDir = filepath.Join(cfg.DataDir, svc.name)
		}
		g.Go(svc.name, func(ctx context.Context) error { return svc.run(ctx, env) })
	}
	if cfg.Reload != nil {
		bridgeReload := make(chan struct{}, 1)
		g.Go("reload", func(ctx context.Context) error {
			fanOutReloads(ctx, cfg.Reload, append(reloads, bridgeReload))
			<-ctx.Done()
			return nil
		})
		g.Go("bridge reload", func(ctx context.Context) error {
			reloadBridge(ctx, br, bridgeReload, dir, cfg.Site, log)
			return nil
		})
	}
	g.Go("http", func(ctx context.Context) error {
		return srv.Serve(ctx, cfg.HTTPAddr, func(a net.Addr) { boundc <- bound{"", a} })
	})
	g.Go("heartbeat", func(ctx context.Context) error {
		return br.RunStatus(ctx, cfg.HeartbeatInterval, names)
	})
	g.Go("uplink", br.RunUplink)
	g.Go("downlink", br.RunDownlink)
	g.Go("api proxy", br.RunAPIProxy)
	if nset.leaf != nil {
		g.Go("hub link", func(ctx context.Context) error { watchLeaf(ctx, ep, nset.leafRemote(), log); return nil })
	}

	// External services are not waited for: each starts and stops on its own.
	started := Endpoints{NATSClientURL: ns.ClientURL(), Services: maps.Clone(placed.external)}
	for started.HTTP == nil || len(started.Services) < len(names) {
		select {
		case b := <-boundc:
			if b.name == "" {
				started.HTTP = b.addr
			} else {
				started.Services[b.name] = b.addr
				ep.setService(b.name, b.addr)
				if b.name == apigateway.Name {
					br.SetGatewayAddr(b.addr.String())
				}
			}
		case <-g.ctx.Done():
			return g.Wait()
		}
	}
	attrs := []any{"site", nset.site, "http", started.HTTP.String()}
	for _, name := range names {
		attrs = append(attrs, name, started.Services[name].String())
	}
	log.Info("edge appliance running", append(attrs, "nats", started.NATSClientURL, "jetstream_domain", nset.site, "store", nset.storeDir, "hub", nset.leafRemote())...)
	if cfg.Started != nil {
		cfg.Started(started)
	}
	return g.Wait()
}

// reloadBridge re-reads edge/uplink.yaml on every reload signal until ctx is
// done. An invalid file is refused with its errors logged, and the running
// configuration stays.
func reloadBridge(ctx context.Context, br *bridge.Bridge, signals <-chan struct{}, dir string, site *config.Config, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-signals:
		}
		c, err := bridge.LoadConfig(dir, site)
		if err != nil {
			log.Error("edge/uplink.yaml not reloaded; the running configuration stays", "err", err)
			continue
		}
		if err := br.Reload(ctx, c); err != nil {
			log.Warn("edge/uplink.yaml reloaded; the UPLINK stream limits not updated yet", "err", err)
			continue
		}
		log.Info("edge/uplink.yaml reloaded", "path", bridge.ConfigPath(dir))
	}
}

// watchLeaf logs when the link to the hub comes up and goes down, until ctx is done.
func watchLeaf(ctx context.Context, ep *endpoints, hub string, log *slog.Logger) {
	up := false
	tick := time.NewTicker(leafPollInterval)
	defer tick.Stop()
	for {
		now := ep.leafConnected()
		switch {
		case now && !up:
			log.Info("cloud hub link up", "hub", hub)
		case !now && up:
			log.Warn("cloud hub link down; the site keeps running and the link is redialled", "hub", hub)
		}
		up = now
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
