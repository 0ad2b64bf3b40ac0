package modsrv

import "github.com/prometheus/client_golang/prometheus"

// metrics are modsrv's Prometheus series (documented in docs/modsrv.md).
type metrics struct {
	routedPoints *prometheus.CounterVec // modsrv_routed_points_total{source}
	batches      prometheus.Counter
	batchSeconds prometheus.Histogram
	writeErrors  prometheus.Counter
	resyncs      prometheus.Counter
	evaluations  prometheus.Counter
	calcErrors   *prometheus.CounterVec // {calculation}
	actions      *prometheus.CounterVec // {status}
	reloads      *prometheus.CounterVec // {result}
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		routedPoints: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "modsrv_routed_points_total",
			Help: "Instance measurement samples written: routed from channels (source=route) or calculated (source=calculation)."}, []string{"source"}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{Name: "modsrv_write_batches_total",
			Help: "Batch writes to Redis (each one MULTI/EXEC round trip)."}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "modsrv_batch_duration_seconds",
			Help:    "Time from taking a batch of channel changes to its instance values being in Redis.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25}}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "modsrv_write_errors_total",
			Help: "Batch writes that failed (Redis away); each is followed by a resync."}),
		resyncs: prometheus.NewCounter(prometheus.CounterOpts{Name: "modsrv_resyncs_total",
			Help: "Full reloads of the routed channel hashes (after every (re)subscribe and failed write)."}),
		evaluations: prometheus.NewCounter(prometheus.CounterOpts{Name: "modsrv_calculation_evaluations_total",
			Help: "Calculations evaluated."}),
		calcErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "modsrv_calculation_errors_total",
			Help: "Evaluations that failed (division by zero, not finite, bad argument); the output is written invalid."}, []string{"calculation"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "modsrv_actions_total",
			Help: "Instance actions handled, by outcome (submitted, rejected, expired)."}, []string{"status"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "modsrv_reloads_total",
			Help: "Configuration reloads by result (ok, refused)."}, []string{"result"}),
	}
	reg.MustRegister(m.routedPoints, m.batches, m.batchSeconds, m.writeErrors, m.resyncs, m.evaluations, m.calcErrors, m.actions, m.reloads)
	return m
}
