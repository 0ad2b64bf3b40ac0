package rulesrv

import (
	"encoding/json"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	evaluations    prometheus.Counter
	firings        *prometheus.CounterVec
	blocked        *prometheus.CounterVec
	actions        *prometheus.CounterVec
	actionDuration prometheus.Histogram
	evalLatency    prometheus.Histogram
	conflicts      prometheus.Counter
	recordsDropped prometheus.Counter
	resyncs        prometheus.Counter
	reloads        *prometheus.CounterVec
	restores       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		evaluations: prometheus.NewCounter(prometheus.CounterOpts{Name: "rulesrv_evaluations_total", Help: "Rule evaluations."}),
		firings:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rulesrv_firings_total", Help: "Rules that fired or re-armed, by result."}, []string{"result"}),
		blocked:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rulesrv_blocked_total", Help: "Evaluations that could not decide: an input missing, stale or not good (blocked) or an expression error (error)."}, []string{"result"}),
		actions:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rulesrv_actions_total", Help: "Actions run, by kind and outcome."}, []string{"kind", "status"}),
		actionDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rulesrv_action_duration_seconds", Help: "From the start of an action to its outcome.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}),
		evalLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rulesrv_change_to_evaluation_seconds", Help: "From receiving a change message to the rules it triggers being evaluated (actions started).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		conflicts:      prometheus.NewCounter(prometheus.CounterOpts{Name: "rulesrv_conflicts_total", Help: "Writes skipped because a rule of higher priority wrote the same point at the same moment."}),
		recordsDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "rulesrv_records_dropped_total", Help: "Execution records not written because the record queue was full or Redis was away."}),
		resyncs:        prometheus.NewCounter(prometheus.CounterOpts{Name: "rulesrv_resyncs_total", Help: "Full reads of the input hashes (after every (re)subscribe)."}),
		reloads:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rulesrv_reloads_total", Help: "Reloads of the rules, ok or refused."}, []string{"result"}),
		restores:       prometheus.NewCounter(prometheus.CounterOpts{Name: "rulesrv_watchdog_restores_total", Help: "Rule values written again after a remote setpoint expired."}),
	}
	if reg != nil {
		reg.MustRegister(m.evaluations, m.firings, m.blocked, m.actions, m.actionDuration, m.evalLatency, m.conflicts, m.recordsDropped, m.resyncs, m.reloads, m.restores)
	}
	return m
}

func parseFloat(s string) (float64, error) { return strconv.ParseFloat(s, 64) }

func parseInt(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
