package alarmsrv

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	rules         prometheus.Gauge
	active        prometheus.Gauge
	changes       prometheus.Counter
	badMessages   prometheus.Counter
	resyncs       prometheus.Counter
	writeErrors   prometheus.Counter
	events        *prometheus.CounterVec
	notifications *prometheus.CounterVec
	latency       prometheus.Histogram
	writeTime     prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		rules: prometheus.NewGauge(prometheus.GaugeOpts{Name: "alarmsrv_conditions",
			Help: "Alarm conditions evaluated (one per rule, one per level of a limit rule)."}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "alarmsrv_alarms",
			Help: "Entries of alarm:active (active, or cleared but unacknowledged or shelved)."}),
		changes: prometheus.NewCounter(prometheus.CounterOpts{Name: "alarmsrv_changes_total",
			Help: "Point values received from change messages."}),
		badMessages: prometheus.NewCounter(prometheus.CounterOpts{Name: "alarmsrv_bad_messages_total",
			Help: "Change messages that could not be decoded."}),
		resyncs: prometheus.NewCounter(prometheus.CounterOpts{Name: "alarmsrv_resyncs_total",
			Help: "Full reads of the watched hashes (after every (re)subscribe)."}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "alarmsrv_write_errors_total",
			Help: "Failed writes of alarm transitions (kept and retried)."}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alarmsrv_events_total",
			Help: "Alarm transitions written to alarm:events, by type."}, []string{"type"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alarmsrv_notifications_total",
			Help: "Notification outcomes by channel: sent, retry, refused, rate_limited, dropped_unknown_channel."}, []string{"channel", "outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "alarmsrv_change_to_event_seconds",
			Help:    "From receiving a change message to its alarm transitions being written.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .5}}),
		writeTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "alarmsrv_write_seconds",
			Help:    "Duration of one transaction writing alarm transitions.",
			Buckets: []float64{.0002, .0005, .001, .002, .005, .01, .05, .5}}),
	}
	reg.MustRegister(m.rules, m.active, m.changes, m.badMessages, m.resyncs, m.writeErrors, m.events, m.notifications, m.latency, m.writeTime)
	return m
}
