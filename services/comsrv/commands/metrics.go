package commands

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voltageems/voltage/shared/command"
)

// Metrics count command outcomes.
type Metrics struct {
	outcomes *prometheus.CounterVec
}

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "comsrv_commands_total", Help: "Commands by channel and outcome."}, []string{"channel", "status"})}
	reg.MustRegister(m.outcomes)
	return m
}

func (m *Metrics) observe(ch uint32, st command.Status) {
	if m != nil {
		m.outcomes.WithLabelValues(strconv.FormatUint(uint64(ch), 10), string(st)).Inc()
	}
}
