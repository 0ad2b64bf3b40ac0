package config

import (
	"fmt"
	"time"
)

// The structs below are the `parameters` of a channel, one per protocol. Drivers
// (comsrv) and the simulator (voltsim) decode a channel's parameters into them with
// DecodeParameters, so both read the same keys and unknown keys are rejected.

// Acquisition holds the parameters every polled protocol shares.
type Acquisition struct {
	// PollIntervalMS is how often the channel's points are read. Default 1000.
	PollIntervalMS int `yaml:"poll_interval_ms"`
	// IntegrityIntervalMS is how often every point is written to Redis even when it
	// did not change, so its timestamp shows it is still being read. Default 60000;
	// 0 keeps the default, a negative value writes every poll.
	IntegrityIntervalMS int `yaml:"integrity_interval_ms"`
	// Deadband is an absolute change below which a telemetry value is not reported
	// (it is still written by the integrity write). Default 0: every change.
	Deadband float64 `yaml:"deadband"`
}

// PollInterval returns the poll interval with its default applied.
func (a Acquisition) PollInterval() time.Duration {
	if a.PollIntervalMS <= 0 {
		return time.Second
	}
	return time.Duration(a.PollIntervalMS) * time.Millisecond
}

// IntegrityInterval returns the integrity interval; 0 means every poll.
func (a Acquisition) IntegrityInterval() time.Duration {
	switch {
	case a.IntegrityIntervalMS == 0:
		return time.Minute
	case a.IntegrityIntervalMS < 0:
		return 0
	}
	return time.Duration(a.IntegrityIntervalMS) * time.Millisecond
}

// Validate checks the shared acquisition parameters.
func (a Acquisition) Validate() error {
	if a.PollIntervalMS < 0 {
		return fmt.Errorf("poll_interval_ms must not be negative")
	}
	if a.Deadband < 0 {
		return fmt.Errorf("deadband must not be negative")
	}
	return nil
}

// ModbusTCPParams are the parameters of a modbus_tcp channel.
type ModbusTCPParams struct {
	Acquisition `yaml:",inline"`

	Host string `yaml:"host"` // required
	Port int    `yaml:"port"` // default 502

	// TimeoutMS bounds one request (and the connect). Default 1000.
	TimeoutMS int `yaml:"timeout_ms"`
	// MaxGap is how many unused registers (or bits) a block read may span to merge
	// two neighbouring points into one request. Default 10; -1 never merges.
	MaxGap *int `yaml:"max_gap"`
	// MaxRegisters and MaxBits cap one read request. Defaults 125 and 2000 (the
	// protocol maxima); lower them for devices with small buffers.
	MaxRegisters int `yaml:"max_registers"`
	MaxBits      int `yaml:"max_bits"`
	// AddressBase is 0 when register_address in the mapping is the protocol address,
	// 1 when the mapping uses 1-based register numbers.
	AddressBase int `yaml:"address_base"`
	// RequestPauseMS is a pause between two requests on the link, for devices or
	// gateways that need one.
	RequestPauseMS int `yaml:"request_pause_ms"`
	// PerPointRequests reads every point with its own request: the escape hatch for
	// devices that reject block reads across unmapped registers.
	PerPointRequests bool `yaml:"per_point_requests"`
	// SlaveBackoffMS is the first pause before a slave that timed out or answered
	// with an exception is asked again; it doubles up to 30 s. Default: the poll interval.
	SlaveBackoffMS int `yaml:"slave_backoff_ms"`
}

// Validate checks the parameters and fills in defaults.
func (p *ModbusTCPParams) Validate() error {
	if err := p.Acquisition.Validate(); err != nil {
		return err
	}
	if p.Host == "" {
		return fmt.Errorf("host is required")
	}
	if p.Port == 0 {
		p.Port = 502
	}
	if p.Port < 1 || p.Port > 65535 {
		return fmt.Errorf("port %d is out of range 1..65535", p.Port)
	}
	if p.TimeoutMS == 0 {
		p.TimeoutMS = 1000
	}
	if p.TimeoutMS < 0 {
		return fmt.Errorf("timeout_ms must be positive")
	}
	if p.MaxGap == nil {
		def := 10
		p.MaxGap = &def
	}
	if p.MaxRegisters == 0 {
		p.MaxRegisters = 125
	}
	if p.MaxRegisters < 1 || p.MaxRegisters > 125 {
		return fmt.Errorf("max_registers %d is out of range 1..125", p.MaxRegisters)
	}
	if p.MaxBits == 0 {
		p.MaxBits = 2000
	}
	if p.MaxBits < 1 || p.MaxBits > 2000 {
		return fmt.Errorf("max_bits %d is out of range 1..2000", p.MaxBits)
	}
	if p.AddressBase != 0 && p.AddressBase != 1 {
		return fmt.Errorf("address_base must be 0 or 1, not %d", p.AddressBase)
	}
	if p.RequestPauseMS < 0 || p.SlaveBackoffMS < 0 {
		return fmt.Errorf("request_pause_ms and slave_backoff_ms must not be negative")
	}
	return nil
}

// Timeout is the per-request timeout.
func (p *ModbusTCPParams) Timeout() time.Duration {
	return time.Duration(p.TimeoutMS) * time.Millisecond
}

// VirtualParams are the parameters of a virtual channel: its points hold what
// commands write, and generators produce telemetry and signals.
type VirtualParams struct {
	Acquisition `yaml:",inline"`
	Generators  []Generator `yaml:"generators"`
}

// Generator produces the value of one T or S point of a virtual channel.
type Generator struct {
	Type  string  `yaml:"type"`  // T or S (any spelling point.ParseType accepts)
	Point uint32  `yaml:"point"` // point id
	Kind  string  `yaml:"kind"`  // constant | sine | ramp | square | random
	Value float64 `yaml:"value"` // constant value; base value of the others
	// Amplitude and PeriodMS shape sine, ramp (a sawtooth from Value to
	// Value+Amplitude), square and random (uniform in Value ± Amplitude).
	Amplitude float64 `yaml:"amplitude"`
	PeriodMS  int     `yaml:"period_ms"`
}
