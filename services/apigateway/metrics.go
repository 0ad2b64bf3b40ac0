package apigateway

import "github.com/prometheus/client_golang/prometheus"

// metrics are the gateway's own series on /metrics (docs/apigateway.md).
type metrics struct {
	requests  *prometheus.CounterVec // by status class
	logins    *prometheus.CounterVec // by outcome
	wsClients prometheus.Gauge
	wsDropped *prometheus.CounterVec // by reason
	wsFrames  prometheus.Counter

	mirrorSynced  prometheus.Gauge   // 1 while realtime reads are served from the mirror
	mirrorReloads prometheus.Counter // full reloads of the mirror from Redis
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "apigateway_http_requests_total",
			Help: "API requests answered, by status class (2xx, 4xx, …)."}, []string{"class"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "apigateway_logins_total",
			Help: "Login attempts by outcome: ok, failed, locked, throttled."}, []string{"outcome"}),
		wsClients: prometheus.NewGauge(prometheus.GaugeOpts{Name: "apigateway_ws_clients",
			Help: "Connected WebSocket clients."}),
		wsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "apigateway_ws_dropped_total",
			Help: "WebSocket clients the gateway closed, by reason: slow, token, protocol, shutdown."}, []string{"reason"}),
		wsFrames: prometheus.NewCounter(prometheus.CounterOpts{Name: "apigateway_ws_frames_total",
			Help: "WebSocket frames sent."}),
		mirrorSynced: prometheus.NewGauge(prometheus.GaugeOpts{Name: "apigateway_realtime_mirror_synced",
			Help: "1 while realtime reads are served from the in-memory mirror, 0 while they go to Redis."}),
		mirrorReloads: prometheus.NewCounter(prometheus.CounterOpts{Name: "apigateway_realtime_mirror_reloads_total",
			Help: "Full reloads of the realtime mirror from Redis (after each resubscription and every minute)."}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.logins, m.wsClients, m.wsDropped, m.wsFrames, m.mirrorSynced, m.mirrorReloads)
	}
	return m
}
