package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/voltageems/voltage/edge/bridge"
	"github.com/voltageems/voltage/shared/obs"
	"github.com/voltageems/voltage/shared/service"
)

// Status is the JSON of GET /status.
type Status struct {
	Site     string                   `json:"site"`
	Version  string                   `json:"version"`
	NATS     NATSStatus               `json:"nats"`
	Services map[string]ServiceStatus `json:"services"`
	// Uplink counts the bridge's work per feed ("changes", "alarms") since start.
	Uplink map[string]FeedStatus `json:"uplink"`
}

// FeedStatus counts what the bridge did with one Redis stream.
type FeedStatus struct {
	Read      uint64 `json:"read"`      // entries read from Redis
	Published uint64 `json:"published"` // messages stored in UPLINK
	Dropped   uint64 `json:"dropped"`   // entries the selection dropped (acknowledged, not sent)
	Acked     uint64 `json:"acked"`     // entries acknowledged in Redis
	Failures  uint64 `json:"failures"`  // failed publishes or acknowledgements, each retried
}

func feedStatus(c *bridge.Counters) FeedStatus {
	return FeedStatus{Read: c.Read.Load(), Published: c.Published.Load(), Dropped: c.Dropped.Load(),
		Acked: c.Acked.Load(), Failures: c.Failures.Load()}
}

// NATSStatus describes the embedded server and its link to the hub.
type NATSStatus struct {
	ClientURL       string `json:"client_url"`
	JetStreamDomain string `json:"jetstream_domain"`
	LeafRemote      string `json:"leaf_remote,omitempty"` // the hub, without credentials; "" when none is configured
	LeafConnected   bool   `json:"leaf_connected"`
}

// ServiceStatus is one service of the site, inside the appliance or its own process.
type ServiceStatus struct {
	HTTP string `json:"http"` // its own /healthz, /readyz, /metrics and API
	// InProcess is false for a service left out of VOLTAGE_EDGE_SERVICES: it runs
	// as its own binary, and HTTP is where the appliance expects it.
	InProcess bool `json:"in_process"`
}

// endpoints serves the appliance's HTTP: readiness of the site (the embedded NATS
// and every service), /status and metrics. The link to the hub is reported but never
// makes the appliance unready: a site works without its cloud.
type endpoints struct {
	ns     *server.Server
	nats   *natsSettings
	probe  *http.Client
	bridge *bridge.Bridge

	// external are the services run as their own processes, at their listen
	// address; fixed at start, so read without the lock.
	external map[string]net.Addr

	mu       sync.Mutex
	services map[string]net.Addr // in-process service → its bound HTTP address, once known
}

func newEndpoints(ns *server.Server, n *natsSettings, br *bridge.Bridge, external map[string]net.Addr) *endpoints {
	return &endpoints{ns: ns, nats: n, bridge: br, probe: &http.Client{}, external: external, services: map[string]net.Addr{}}
}

func (e *endpoints) setService(name string, addr net.Addr) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.services[name] = addr
}

func (e *endpoints) service(name string) net.Addr {
	if addr, ok := e.external[name]; ok {
		return addr
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.services[name]
}

func (e *endpoints) leafConnected() bool { return e.ns.NumLeafNodes() > 0 }

func (e *endpoints) register(obsSrv *obs.Server, serviceNames []string) {
	obsSrv.AddReadyCheck("nats", func(context.Context) error {
		if !e.ns.Running() || !e.ns.ReadyForConnections(50*time.Millisecond) {
			return errors.New("embedded nats server is not accepting connections")
		}
		return nil
	})
	for _, name := range serviceNames {
		obsSrv.AddReadyCheck(name, func(ctx context.Context) error { return e.serviceReady(ctx, name) })
	}
	obsSrv.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "voltage_edge_leaf_connected", Help: "1 while the leaf-node link to the cloud hub is up.",
		}, func() float64 {
			if e.leafConnected() {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "voltage_edge_nats_clients", Help: "Client connections to the embedded NATS server.",
		}, func() float64 { return float64(e.ns.NumClients()) }),
	)
	for feed, c := range map[string]*bridge.Counters{"changes": &e.bridge.Changes, "alarms": &e.bridge.Alarms} {
		labels := prometheus.Labels{"feed": feed}
		for _, m := range []struct {
			name, help string
			v          func() uint64
		}{
			{"voltage_edge_uplink_published_total", "Messages the bridge stored in the UPLINK stream.", c.Published.Load},
			{"voltage_edge_uplink_dropped_total", "Redis entries the uplink selection dropped (acknowledged, not sent).", c.Dropped.Load},
			{"voltage_edge_uplink_failures_total", "Failed uplink publishes or acknowledgements (each retried).", c.Failures.Load},
		} {
			obsSrv.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: m.name, Help: m.help, ConstLabels: labels,
			}, func() float64 { return float64(m.v()) }))
		}
	}
	obsSrv.Handle("GET /status", http.HandlerFunc(e.status))
}

// serviceReady asks the service's own /readyz, exactly what a probe of a separately
// deployed service would see. An external service is asked the same way, at the
// address it is expected at, whether or not it ever answered before.
func (e *endpoints) serviceReady(ctx context.Context, name string) error {
	addr := e.service(name)
	if addr == nil {
		return fmt.Errorf("%s has not started", name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr.String()+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := e.probe.Do(req)
	if err != nil {
		if _, external := e.external[name]; external {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // the dial error says it all; the URL is in the message already
			}
			return fmt.Errorf("%s runs as its own process and does not answer at %s: %w", name, addr, err)
		}
		return fmt.Errorf("%s /readyz: %w", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var body struct {
			Errors map[string]string `json:"errors"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		if _, external := e.external[name]; external {
			return fmt.Errorf("%s (own process at %s) is not ready: %v", name, addr, body.Errors)
		}
		return fmt.Errorf("%s is not ready: %v", name, body.Errors)
	}
	return nil
}

func (e *endpoints) status(w http.ResponseWriter, _ *http.Request) {
	st := Status{
		Site:    e.nats.site,
		Version: service.Version,
		NATS: NATSStatus{
			ClientURL:       e.ns.ClientURL(),
			JetStreamDomain: e.nats.site,
			LeafRemote:      e.nats.leafRemote(),
			LeafConnected:   e.leafConnected(),
		},
		Services: map[string]ServiceStatus{},
		Uplink:   map[string]FeedStatus{"changes": feedStatus(&e.bridge.Changes), "alarms": feedStatus(&e.bridge.Alarms)},
	}
	e.mu.Lock()
	for name, addr := range e.services {
		st.Services[name] = ServiceStatus{HTTP: addr.String(), InProcess: true}
	}
	e.mu.Unlock()
	for name, addr := range e.external {
		st.Services[name] = ServiceStatus{HTTP: addr.String()}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(st)
}
