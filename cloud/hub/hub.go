// Package hub is the cloud hub (DESIGN §1, §6): an embedded nats-server that every
// edge site joins as a leaf node, with JetStream for the data the sites send up,
// and the hub's HTTP endpoints (/healthz, /readyz, /metrics, /status).
//
// Today the hub accepts leaf connections and stores nothing on its own; sourcing
// each site's UPLINK stream, downlink commands, the site registry and the fleet API
// build on it.
package hub

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/voltageems/voltage/shared/natsx"
	"github.com/voltageems/voltage/shared/obs"
	"github.com/voltageems/voltage/shared/service"
)

// ServerName is the hub's nats-server name, as leaf nodes see it.
const ServerName = "voltage-cloud"

// leafPollInterval is how often the hub looks for sites that joined or left, to log
// them (nats-server's own notices about it go to debug).
const leafPollInterval = time.Second

// Run runs the hub until ctx is done, then shuts the HTTP server and nats-server
// down. Invalid settings come back as *service.ConfigError before anything starts;
// a port in use or a JetStream store that cannot be opened as an error naming it.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	cfg.applyDefaults()
	opts, err := serverOptions(&cfg)
	if err != nil {
		return &service.ConfigError{Err: err}
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
	h := &hub{cfg: cfg, ns: ns, log: log, leafURL: leafURL(opts)}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := h.httpServer()
	bound := make(chan net.Addr, 1)
	httpErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		httpErr <- srv.Serve(ctx, cfg.HTTP.Addr, func(a net.Addr) { bound <- a })
	}()
	go func() { defer wg.Done(); h.watchLeafs(ctx) }()

	var runErr error
	select {
	case a := <-bound:
		log.Info("cloud hub running", "nats", ns.ClientURL(), "leaf", h.leafURL, "http", a.String(), "store", cfg.NATS.StoreDir, "sites", len(cfg.Sites))
		if cfg.Started != nil {
			cfg.Started(Endpoints{ClientURL: ns.ClientURL(), LeafURL: h.leafURL, HTTP: a})
		}
		select {
		case <-ctx.Done():
		case runErr = <-httpErr:
		}
	case runErr = <-httpErr:
	}
	cancel()
	wg.Wait() // before nats-server shuts down: the watcher and handlers use it
	return runErr
}

// serverOptions turns the settings into nats-server options.
func serverOptions(cfg *Config) (*server.Options, error) {
	client, err := splitAddr(cfg.NATS.ClientAddr)
	if err != nil {
		return nil, fmt.Errorf("nats.client_addr: %w", err)
	}
	leaf, err := splitAddr(cfg.NATS.LeafAddr)
	if err != nil {
		return nil, fmt.Errorf("nats.leaf_addr: %w", err)
	}
	if cfg.NATS.StoreDir == "" {
		return nil, errors.New("nats.store_dir: must not be empty")
	}
	return &server.Options{
		ServerName: ServerName,
		Host:       client.host,
		Port:       client.port,
		LeafNode:   server.LeafNodeOpts{Host: leaf.host, Port: leaf.port},
		JetStream:  true,
		StoreDir:   cfg.NATS.StoreDir,
	}, nil
}

// leafURL is where sites reach the leaf-node listener. nats-server wrote the bound
// port back into opts during Start.
func leafURL(opts *server.Options) string {
	u := url.URL{Scheme: "nats-leaf", Host: net.JoinHostPort(opts.LeafNode.Host, strconv.Itoa(opts.LeafNode.Port))}
	return u.String()
}

type hub struct {
	cfg     Config
	ns      *server.Server
	log     *slog.Logger
	leafURL string
}

func (h *hub) httpServer() *obs.Server {
	srv := obs.NewServer(h.log)
	srv.AddReadyCheck("nats", func(context.Context) error {
		if !h.ns.Running() || !h.ns.ReadyForConnections(50*time.Millisecond) {
			return errors.New("nats server is not accepting connections")
		}
		return nil
	})
	srv.AddReadyCheck("jetstream", func(context.Context) error {
		if !h.ns.JetStreamEnabled() {
			return errors.New("JetStream is not enabled")
		}
		return nil
	})
	srv.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "voltage_cloud_leaf_nodes", Help: "Leaf-node connections (edge sites) to the hub.",
		}, func() float64 { return float64(h.ns.NumLeafNodes()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "voltage_cloud_nats_clients", Help: "Client connections to the hub's NATS server.",
		}, func() float64 { return float64(h.ns.NumClients()) }),
	)
	srv.Handle("GET /status", http.HandlerFunc(h.status))
	return srv
}

// Status is the JSON of GET /status.
type Status struct {
	Version string     `json:"version"`
	NATS    NATSStatus `json:"nats"`
	Sites   []Site     `json:"sites"` // as configured in cloud.yaml
}

// NATSStatus describes the hub's nats-server.
type NATSStatus struct {
	ClientURL string     `json:"client_url"`
	LeafURL   string     `json:"leaf_url"`
	JetStream bool       `json:"jetstream"`
	Leafs     []LeafNode `json:"leaf_nodes"`
}

// LeafNode is one connected leaf node (an edge site's embedded server).
type LeafNode struct {
	Name string `json:"name"` // the edge server's name
	Addr string `json:"addr"` // the remote address it connected from
	RTT  string `json:"rtt,omitempty"`
}

func (h *hub) status(w http.ResponseWriter, _ *http.Request) {
	st := Status{
		Version: service.Version,
		NATS:    NATSStatus{ClientURL: h.ns.ClientURL(), LeafURL: h.leafURL, JetStream: h.ns.JetStreamEnabled(), Leafs: h.leafs()},
		Sites:   h.cfg.Sites,
	}
	if st.Sites == nil {
		st.Sites = []Site{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(st)
}

// leafs lists the connected leaf nodes, sorted by name.
func (h *hub) leafs() []LeafNode {
	out := []LeafNode{}
	lz, err := h.ns.Leafz(nil)
	if err != nil {
		return out
	}
	for _, l := range lz.Leafs {
		out = append(out, LeafNode{Name: l.Name, Addr: net.JoinHostPort(l.IP, strconv.Itoa(l.Port)), RTT: l.RTT})
	}
	slices.SortFunc(out, func(a, b LeafNode) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Addr, b.Addr)) })
	return out
}

// watchLeafs logs every leaf node that connects or disconnects, until ctx is done.
func (h *hub) watchLeafs(ctx context.Context) {
	known := map[string]LeafNode{}
	tick := time.NewTicker(leafPollInterval)
	defer tick.Stop()
	for {
		now := map[string]LeafNode{}
		for _, l := range h.leafs() {
			now[l.Addr] = l
			if _, ok := known[l.Addr]; !ok {
				h.log.Info("leaf node connected", "name", l.Name, "addr", l.Addr)
			}
		}
		for addr, l := range known {
			if _, ok := now[addr]; !ok {
				h.log.Info("leaf node disconnected", "name", l.Name, "addr", l.Addr)
			}
		}
		known = now
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
