package hissrv

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/voltageems/voltage/shared/keyspace"
)

// metrics are hissrv's own series on /metrics, every one labelled by backend.
type metrics struct {
	up           *prometheus.GaugeVec
	written      *prometheus.CounterVec
	repeated     *prometheus.CounterVec
	acked        *prometheus.CounterVec
	bad          *prometheus.CounterVec
	spilled      *prometheus.CounterVec
	lag          *prometheus.GaugeVec
	lastSample   *prometheus.GaugeVec
	spoolRecords *prometheus.GaugeVec
	spoolBytes   *prometheus.GaugeVec
	spoolDropped *prometheus.GaugeVec
	writeSeconds *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	b := []string{"backend"}
	m := &metrics{
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hissrv_backend_up",
			Help: "1 while the backend accepts writes, 0 while hissrv holds its acknowledgements."}, b),
		written: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hissrv_samples_written_total",
			Help: "Samples stored in the backend."}, b),
		repeated: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hissrv_samples_repeated_total",
			Help: "Samples the backend already held (re-delivered after a restart) or refused as older than the newest of their point."}, b),
		acked: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hissrv_entries_acked_total",
			Help: keyspace.Changes + " entries acknowledged in the backend's consumer group."}, b),
		bad: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hissrv_bad_entries_total",
			Help: "Change entries or spool records that could not be decoded, skipped."}, b),
		spilled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hissrv_spilled_entries_total",
			Help: "Entries moved from the stream to the spool while the backend was down."}, b),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hissrv_backlog_entries",
			Help: "Entries of voltage:changes the backend's group has not acknowledged (lag + pending)."}, b),
		lastSample: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hissrv_last_sample_timestamp_seconds",
			Help: "Sample time of the newest sample written; now minus this is the history's delay."}, b),
		spoolRecords: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hissrv_spool_records",
			Help: "Entries waiting in the backend's on-disk spool."}, b),
		spoolBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hissrv_spool_bytes",
			Help: "Bytes of the backend's spool on disk."}, b),
		spoolDropped: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hissrv_spool_dropped_records",
			Help: "Spool records dropped since start because the spool hit max_bytes or max_age (data lost)."}, b),
		writeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hissrv_write_duration_seconds",
			Help: "Time to make one batch durable in the backend.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9)}, b),
	}
	reg.MustRegister(m.up, m.written, m.repeated, m.acked, m.bad, m.spilled, m.lag, m.lastSample,
		m.spoolRecords, m.spoolBytes, m.spoolDropped, m.writeSeconds)
	return m
}
