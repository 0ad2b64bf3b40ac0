package netsrv

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are netsrv's Prometheus series, labelled by link.
type metrics struct {
	connected *prometheus.GaugeVec
	queued    *prometheus.GaugeVec // link, where=stream|spool
	sentMsgs  *prometheus.CounterVec
	sentPts   *prometheus.CounterVec
	dropped   *prometheus.CounterVec // link, reason
	errors    *prometheus.CounterVec
	spooled   *prometheus.CounterVec
	downlink  *prometheus.CounterVec // link, status
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "netsrv_link_connected", Help: "1 while the link's endpoint is reachable."}, []string{"link"}),
		queued:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "netsrv_link_queued", Help: "Entries waiting: where=stream (voltage:changes lag + pending), where=spool (messages on disk)."}, []string{"link", "where"}),
		sentMsgs:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netsrv_link_sent_messages_total", Help: "Messages the endpoint acknowledged."}, []string{"link"}),
		sentPts:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netsrv_link_sent_points_total", Help: "Point values in acknowledged messages."}, []string{"link"}),
		dropped:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netsrv_link_dropped_total", Help: "Data given up: reason=spool_full|spool_age (oldest spooled messages), too_large, bad_entry."}, []string{"link", "reason"}),
		errors:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netsrv_link_errors_total", Help: "Failed delivery attempts."}, []string{"link"}),
		spooled:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netsrv_link_spooled_messages_total", Help: "Messages moved to the on-disk spool during an outage."}, []string{"link"}),
		downlink:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netsrv_downlink_total", Help: "Cloud writes by outcome (ok, failed, rejected, expired, pending)."}, []string{"link", "status"}),
	}
	reg.MustRegister(m.connected, m.queued, m.sentMsgs, m.sentPts, m.dropped, m.errors, m.spooled, m.downlink)
	return m
}
