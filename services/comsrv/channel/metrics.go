package channel

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the per-channel Prometheus series of comsrv.
type Metrics struct {
	polls         *prometheus.CounterVec
	pollSeconds   *prometheus.HistogramVec
	linkErrors    *prometheus.CounterVec
	requestErrors *prometheus.CounterVec
	pointsWritten *prometheus.CounterVec
	up            *prometheus.GaugeVec
}

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "comsrv_polls_total", Help: "Polls run, per channel."}, []string{"channel"}),
		pollSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "comsrv_poll_duration_seconds", Help: "Duration of one poll of all points of a channel.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"channel"}),
		linkErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "comsrv_link_errors_total", Help: "Times a channel's link failed or could not connect."}, []string{"channel"}),
		requestErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "comsrv_request_errors_total", Help: "Requests that failed while the link stayed up (timeouts, CRC errors, exceptions)."}, []string{"channel"}),
		pointsWritten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "comsrv_points_written_total", Help: "Point updates written to Redis."}, []string{"channel"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "comsrv_channel_up", Help: "1 while the channel's link is up."}, []string{"channel"}),
	}
	reg.MustRegister(m.polls, m.pollSeconds, m.linkErrors, m.requestErrors, m.pointsWritten, m.up)
	return m
}
