package config

import (
	"fmt"
	"time"
)

// IEC104Params are the parameters of an iec104 channel: comsrv is the controlling
// station (client) and connects to the controlled station (server) at host:port.
// The ASDU sizes are those IEC 60870-5-104 fixes: two-octet cause of
// transmission, two-octet common address, three-octet information object address.
type IEC104Params struct {
	// PollIntervalMS is how often the driver runs its schedules and re-confirms
	// every value the station reported (a point the station keeps quiet about is
	// current while the link is up); stale is 3 × this without a report.
	Acquisition `yaml:",inline"`

	Host string `yaml:"host"` // required
	Port int    `yaml:"port"` // default 2404

	// OriginatorAddress is sent in the second octet of the cause of transmission.
	OriginatorAddress int `yaml:"originator_address"`

	// K is the number of unacknowledged I-frames the client sends before it waits
	// (default 12); W the number it receives before it acknowledges (default 8,
	// at most K).
	K int `yaml:"k"`
	W int `yaml:"w"`
	// T0MS bounds the TCP connect (default 30000), T1MS the wait for an
	// acknowledgement of a sent frame or a test/start frame (default 15000), T2MS
	// the delay before the client acknowledges received I-frames (default 10000,
	// less than t1), T3MS the idle time after which a TESTFR keeps the link alive
	// (default 20000). t0, t1 and t2 are 1000..255000 ms, t3 1000 ms..48 h.
	T0MS int `yaml:"t0_ms"`
	T1MS int `yaml:"t1_ms"`
	T2MS int `yaml:"t2_ms"`
	T3MS int `yaml:"t3_ms"`

	// InterrogationAtConnect sends a general (station) interrogation to every
	// common address of the mapping after STARTDT. Default true.
	InterrogationAtConnect *bool `yaml:"interrogation_at_connect"`
	// InterrogationIntervalMS repeats the general interrogation; 0 (default) never.
	InterrogationIntervalMS int `yaml:"interrogation_interval_ms"`
	// CounterInterrogationAtConnect sends a counter interrogation after STARTDT
	// when the channel has integrated-totals points. Default true.
	CounterInterrogationAtConnect *bool `yaml:"counter_interrogation_at_connect"`
	// CounterInterrogationIntervalMS repeats it; 0 (default) never.
	CounterInterrogationIntervalMS int `yaml:"counter_interrogation_interval_ms"`
	// ClockSyncAtConnect sends a clock synchronisation command after STARTDT.
	// Default true.
	ClockSyncAtConnect *bool `yaml:"clock_sync_at_connect"`
	// ClockSyncIntervalMS repeats it; 0 (default) never.
	ClockSyncIntervalMS int `yaml:"clock_sync_interval_ms"`

	// CommandTimeoutMS bounds each step of a command: the activation
	// confirmation, and the activation termination when awaited. Default 10000.
	CommandTimeoutMS int `yaml:"command_timeout_ms"`
	// AwaitTermination waits for the activation termination (ActTerm) after a
	// positive confirmation before a command counts as done. Default true.
	AwaitTermination *bool `yaml:"await_termination"`
	// SelectBeforeOperate sends every command as select, then execute, unless the
	// point's mapping row says otherwise in its sbo column. Default false.
	SelectBeforeOperate bool `yaml:"select_before_operate"`
}

// Validate checks the parameters and fills in defaults.
func (p *IEC104Params) Validate() error {
	if err := p.Acquisition.Validate(); err != nil {
		return err
	}
	if p.Host == "" {
		return fmt.Errorf("host is required")
	}
	if p.Port == 0 {
		p.Port = 2404
	}
	if p.Port < 1 || p.Port > 65535 {
		return fmt.Errorf("port %d is out of range 1..65535", p.Port)
	}
	if p.OriginatorAddress < 0 || p.OriginatorAddress > 255 {
		return fmt.Errorf("originator_address %d is out of range 0..255", p.OriginatorAddress)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&p.K, 12)
	def(&p.W, 8)
	def(&p.T0MS, 30000)
	def(&p.T1MS, 15000)
	def(&p.T2MS, 10000)
	def(&p.T3MS, 20000)
	def(&p.CommandTimeoutMS, 10000)
	if p.K < 1 || p.K > 32767 {
		return fmt.Errorf("k %d is out of range 1..32767", p.K)
	}
	if p.W < 1 || p.W > p.K {
		return fmt.Errorf("w %d is out of range 1..k (%d); IEC 60870-5-104 recommends at most two thirds of k", p.W, p.K)
	}
	for _, t := range []struct {
		name string
		v    int
	}{{"t0_ms", p.T0MS}, {"t1_ms", p.T1MS}, {"t2_ms", p.T2MS}} {
		if t.v < 1000 || t.v > 255000 {
			return fmt.Errorf("%s %d is out of range 1000..255000", t.name, t.v)
		}
	}
	if p.T3MS < 1000 || p.T3MS > 48*3600*1000 {
		return fmt.Errorf("t3_ms %d is out of range 1000..172800000 (48 h)", p.T3MS)
	}
	if p.T2MS >= p.T1MS {
		return fmt.Errorf("t2_ms (%d) must be less than t1_ms (%d)", p.T2MS, p.T1MS)
	}
	if p.CommandTimeoutMS < 0 {
		return fmt.Errorf("command_timeout_ms must be positive")
	}
	if p.InterrogationIntervalMS < 0 || p.CounterInterrogationIntervalMS < 0 || p.ClockSyncIntervalMS < 0 {
		return fmt.Errorf("interrogation_interval_ms, counter_interrogation_interval_ms and clock_sync_interval_ms must not be negative (0 is off)")
	}
	yes := func(b **bool) {
		if *b == nil {
			t := true
			*b = &t
		}
	}
	yes(&p.InterrogationAtConnect)
	yes(&p.CounterInterrogationAtConnect)
	yes(&p.ClockSyncAtConnect)
	yes(&p.AwaitTermination)
	return nil
}

// ms converts one of the _ms parameters.
func ms(v int) time.Duration { return time.Duration(v) * time.Millisecond }

// T0 is the connect timeout.
func (p *IEC104Params) T0() time.Duration { return ms(p.T0MS) }

// T1 is the acknowledgement timeout.
func (p *IEC104Params) T1() time.Duration { return ms(p.T1MS) }

// T2 is the acknowledgement delay.
func (p *IEC104Params) T2() time.Duration { return ms(p.T2MS) }

// T3 is the idle time before a TESTFR.
func (p *IEC104Params) T3() time.Duration { return ms(p.T3MS) }

// CommandTimeout bounds each step of a command.
func (p *IEC104Params) CommandTimeout() time.Duration { return ms(p.CommandTimeoutMS) }
