package hub

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the hub's own Prometheus series.
type metrics struct {
	uplink         *prometheus.CounterVec
	badMessages    *prometheus.CounterVec
	historySamples *prometheus.CounterVec
	historyErrors  *prometheus.CounterVec
	commands       *prometheus.CounterVec
	collectors     []prometheus.Collector
}

func newMetrics(h *hub) *metrics {
	m := &metrics{
		uplink: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voltage_cloud_uplink_messages_total", Help: "Uplink messages applied to the fleet state, per site.",
		}, []string{"site"}),
		badMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voltage_cloud_uplink_bad_messages_total", Help: "Uplink messages that could not be read, per site.",
		}, []string{"site"}),
		historySamples: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voltage_cloud_history_samples_total", Help: "Samples written to the cloud history, per site.",
		}, []string{"site"}),
		historyErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voltage_cloud_history_write_errors_total", Help: "Failed history writes (retried), per site.",
		}, []string{"site"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voltage_cloud_commands_total", Help: "Commands sent to sites, by outcome.",
		}, []string{"site", "outcome"}),
	}
	m.collectors = []prometheus.Collector{m.uplink, m.badMessages, m.historySamples, m.historyErrors, m.commands,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "voltage_cloud_sites", Help: "Sites the hub knows (configured or registered by heartbeat).",
		}, func() float64 { return float64(len(h.reg.list())) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "voltage_cloud_sites_online", Help: "Sites with a heartbeat within 3 heartbeat intervals.",
		}, func() float64 {
			n, now := 0, time.Now()
			for _, s := range h.reg.list() {
				s.mu.Lock()
				if h.reg.online(s.lastSeen, now) {
					n++
				}
				s.mu.Unlock()
			}
			return float64(n)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "voltage_cloud_leaf_nodes", Help: "Leaf-node connections (edge sites) to the hub.",
		}, func() float64 {
			if h.ns == nil {
				return 0
			}
			return float64(h.ns.NumLeafNodes())
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "voltage_cloud_nats_clients", Help: "Client connections to the hub's NATS server.",
		}, func() float64 {
			if h.ns == nil {
				return 0
			}
			return float64(h.ns.NumClients())
		}),
	}
	return m
}
