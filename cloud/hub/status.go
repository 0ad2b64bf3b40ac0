package hub

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/voltageems/voltage/shared/obs"
	"github.com/voltageems/voltage/shared/service"
)

// leafPollInterval is how often the hub looks for sites that joined or left, to log
// them (nats-server's own notices about it go to debug).
const leafPollInterval = time.Second

// Endpoints are where a running hub listens.
type Endpoints struct {
	ClientURL string   // nats://host:port of the client listener (or nats.url)
	LeafURL   string   // nats-leaf://host:port (tls://… with leaf_tls) of the leaf-node listener; "" with nats.url
	HTTP      net.Addr // the HTTP server
}

func (h *hub) httpServer(api http.Handler) *obs.Server {
	srv := obs.NewServer(h.log)
	srv.AddReadyCheck("nats", func(context.Context) error {
		if h.ns != nil && (!h.ns.Running() || !h.ns.ReadyForConnections(50*time.Millisecond)) {
			return errors.New("nats server is not accepting connections")
		}
		if h.nc.Status() != nats.CONNECTED {
			return errors.New("hub is not connected to NATS: " + h.nc.Status().String())
		}
		return nil
	})
	srv.AddReadyCheck("jetstream", func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if _, err := h.js.AccountInfo(ctx); err != nil {
			return errors.New("JetStream is not available: " + err.Error())
		}
		return nil
	})
	srv.Registry.MustRegister(h.metrics.collectors...)
	srv.Handle("GET /status", http.HandlerFunc(h.status))
	srv.Handle("/", api)
	return srv
}

// Status is the JSON of GET /status.
type Status struct {
	Version string        `json:"version"`
	NATS    NATSStatus    `json:"nats"`
	Sites   []SiteSummary `json:"sites"` // the registry: configured and heartbeat-registered sites
}

// NATSStatus describes the hub's NATS server.
type NATSStatus struct {
	ClientURL string     `json:"client_url"`
	LeafURL   string     `json:"leaf_url,omitempty"`
	External  bool       `json:"external"`
	JetStream bool       `json:"jetstream"`
	Leafs     []LeafNode `json:"leaf_nodes"`
}

// LeafNode is one connected leaf node (an edge site's embedded server).
type LeafNode struct {
	Name string `json:"name"` // the edge server's name
	Addr string `json:"addr"` // the remote address it connected from
	User string `json:"user,omitempty"`
	RTT  string `json:"rtt,omitempty"`
}

func (h *hub) status(w http.ResponseWriter, r *http.Request) {
	// /status names every site without a token: it is for the operator on the
	// hub's host (the API's /sites is for everyone else).
	if !loopback(r.RemoteAddr) {
		http.NotFound(w, r)
		return
	}
	st := Status{
		Version: service.Version,
		NATS:    NATSStatus{ClientURL: h.nc.ConnectedUrlRedacted(), LeafURL: h.leafURL, External: h.ns == nil, Leafs: h.leafs()},
		Sites:   []SiteSummary{},
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	_, err := h.js.AccountInfo(ctx)
	st.NATS.JetStream = err == nil
	for _, s := range h.reg.list() {
		st.Sites = append(st.Sites, h.reg.summary(s))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(st)
}

// leafs lists the connected leaf nodes, sorted by name.
func (h *hub) leafs() []LeafNode {
	out := []LeafNode{}
	if h.ns == nil {
		return out
	}
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

func loopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
