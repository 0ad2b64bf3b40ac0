package config

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// ModbusLinkParams are the request and block-read parameters every Modbus channel
// shares, whatever carries its frames. The keys are those of modbus_tcp (see
// ModbusTCPParams for what each one means), so a point table and its planning move
// between a TCP device, a serial bus and a serial server unchanged.
type ModbusLinkParams struct {
	TimeoutMS        int  `yaml:"timeout_ms"`
	MaxGap           *int `yaml:"max_gap"`
	MaxRegisters     int  `yaml:"max_registers"`
	MaxBits          int  `yaml:"max_bits"`
	AddressBase      int  `yaml:"address_base"`
	RequestPauseMS   int  `yaml:"request_pause_ms"`
	PerPointRequests bool `yaml:"per_point_requests"`
	SlaveBackoffMS   int  `yaml:"slave_backoff_ms"`
}

// Link returns the shared Modbus parameters of a modbus_tcp channel (after Validate).
func (p *ModbusTCPParams) Link() ModbusLinkParams {
	return ModbusLinkParams{
		TimeoutMS: p.TimeoutMS, MaxGap: p.MaxGap, MaxRegisters: p.MaxRegisters, MaxBits: p.MaxBits,
		AddressBase: p.AddressBase, RequestPauseMS: p.RequestPauseMS,
		PerPointRequests: p.PerPointRequests, SlaveBackoffMS: p.SlaveBackoffMS,
	}
}

// Validate checks the shared parameters and fills in the modbus_tcp defaults.
func (p *ModbusLinkParams) Validate() error {
	tcp := ModbusTCPParams{
		Host: "-", TimeoutMS: p.TimeoutMS, MaxGap: p.MaxGap, MaxRegisters: p.MaxRegisters, MaxBits: p.MaxBits,
		AddressBase: p.AddressBase, RequestPauseMS: p.RequestPauseMS,
		PerPointRequests: p.PerPointRequests, SlaveBackoffMS: p.SlaveBackoffMS,
	}
	if err := tcp.Validate(); err != nil {
		return err
	}
	*p = tcp.Link()
	return nil
}

// Timeout is the per-request timeout.
func (p *ModbusLinkParams) Timeout() time.Duration {
	return time.Duration(p.TimeoutMS) * time.Millisecond
}

// ModbusRTUTiming are the bus timing parameters of an RTU line, on a local serial
// port or behind a serial server.
type ModbusRTUTiming struct {
	// FrameDelayMS is silence added before every request, on top of the 3.5
	// character times (t3.5) the driver always leaves between frames: for slow
	// devices and RS-485 converters that need longer to switch direction. Default 0.
	FrameDelayMS int `yaml:"frame_delay_ms"`
	// TurnaroundMS is how long the master waits after a broadcast (slave 0) write,
	// which no slave answers, before it sends the next request, so that every slave
	// has processed it (Modbus over serial line §2.4.1: typically 100 to 200 ms).
	// Default 100.
	TurnaroundMS int `yaml:"turnaround_ms"`
}

func (t *ModbusRTUTiming) validate() error {
	if t.FrameDelayMS < 0 || t.TurnaroundMS < 0 {
		return fmt.Errorf("frame_delay_ms and turnaround_ms must not be negative")
	}
	if t.TurnaroundMS == 0 {
		t.TurnaroundMS = 100
	}
	return nil
}

// FrameDelay is the extra silence before each request.
func (t ModbusRTUTiming) FrameDelay() time.Duration {
	return time.Duration(t.FrameDelayMS) * time.Millisecond
}

// Turnaround is the pause after a broadcast write.
func (t ModbusRTUTiming) Turnaround() time.Duration {
	return time.Duration(t.TurnaroundMS) * time.Millisecond
}

// ModbusRTUParams are the parameters of a modbus_rtu channel: one serial line (an
// RS-485 bus, usually) with one or more slaves, polled strictly one request at a time.
type ModbusRTUParams struct {
	Acquisition      `yaml:",inline"`
	ModbusLinkParams `yaml:",inline"`
	ModbusRTUTiming  `yaml:",inline"`

	// Device is the serial port, e.g. /dev/ttyUSB0 or /dev/ttyS1. Required.
	Device string `yaml:"device"`
	// BaudRate is the line speed in bit/s. Default 9600.
	BaudRate int `yaml:"baud_rate"`
	// DataBits is 8 (Modbus RTU) or 7. Default 8.
	DataBits int `yaml:"data_bits"`
	// Parity is none, even or odd. Default even (the Modbus default, 8E1).
	Parity string `yaml:"parity"`
	// StopBits is 1 or 2. Default 1 with parity, 2 without (as the standard asks).
	StopBits int `yaml:"stop_bits"`
	// RS485 switches the port's kernel RS-485 mode on (RTS drives the transceiver's
	// direction). Leave it off for USB converters that switch by themselves.
	RS485 RS485Params `yaml:"rs485"`
}

// RS485Params are the kernel RS-485 settings of a serial port (struct serial_rs485).
type RS485Params struct {
	Enabled bool `yaml:"enabled"`
	// DelayRTSBeforeSendMS and DelayRTSAfterSendMS hold RTS before and after a frame.
	DelayRTSBeforeSendMS int `yaml:"delay_rts_before_send_ms"`
	DelayRTSAfterSendMS  int `yaml:"delay_rts_after_send_ms"`
	// RTSOnSend sets RTS high while sending (the usual wiring). Default true.
	RTSOnSend *bool `yaml:"rts_on_send"`
	// RTSAfterSend sets RTS high after sending.
	RTSAfterSend bool `yaml:"rts_after_send"`
	// RxDuringTx keeps the receiver on while sending (the master then hears its own frames).
	RxDuringTx bool `yaml:"rx_during_tx"`
}

// BaudRates are the line speeds a modbus_rtu channel accepts.
var BaudRates = []int{1200, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 115200, 230400, 460800, 921600}

// Validate checks the parameters and fills in defaults.
func (p *ModbusRTUParams) Validate() error {
	if err := p.Acquisition.Validate(); err != nil {
		return err
	}
	if err := p.ModbusLinkParams.Validate(); err != nil {
		return err
	}
	if err := p.ModbusRTUTiming.validate(); err != nil {
		return err
	}
	if p.Device == "" {
		return fmt.Errorf("device is required (the serial port, e.g. /dev/ttyUSB0)")
	}
	if p.BaudRate == 0 {
		p.BaudRate = 9600
	}
	if !slices.Contains(BaudRates, p.BaudRate) {
		return fmt.Errorf("baud_rate %d is not a standard rate (want one of %v)", p.BaudRate, BaudRates)
	}
	if p.DataBits == 0 {
		p.DataBits = 8
	}
	if p.DataBits != 7 && p.DataBits != 8 {
		return fmt.Errorf("data_bits %d: want 8 (or 7)", p.DataBits)
	}
	p.Parity = strings.ToLower(p.Parity)
	switch p.Parity {
	case "":
		p.Parity = "even"
	case "none", "even", "odd":
	case "n", "e", "o":
		p.Parity = map[string]string{"n": "none", "e": "even", "o": "odd"}[p.Parity]
	default:
		return fmt.Errorf("parity %q: want none, even or odd", p.Parity)
	}
	if p.StopBits == 0 {
		p.StopBits = 1
		if p.Parity == "none" {
			p.StopBits = 2
		}
	}
	if p.StopBits != 1 && p.StopBits != 2 {
		return fmt.Errorf("stop_bits %d: want 1 or 2", p.StopBits)
	}
	if p.RS485.DelayRTSBeforeSendMS < 0 || p.RS485.DelayRTSAfterSendMS < 0 {
		return fmt.Errorf("rs485 delays must not be negative")
	}
	if p.RS485.RTSOnSend == nil {
		on := true
		p.RS485.RTSOnSend = &on
	}
	return nil
}

// ModbusRTUOverTCPParams are the parameters of a modbus_rtu_over_tcp channel: RTU
// frames (with CRC, without MBAP header) through a TCP connection to a serial
// server, whose serial side is one bus: requests go strictly one at a time.
type ModbusRTUOverTCPParams struct {
	Acquisition      `yaml:",inline"`
	ModbusLinkParams `yaml:",inline"`
	ModbusRTUTiming  `yaml:",inline"`

	Host string `yaml:"host"` // required
	Port int    `yaml:"port"` // default 502
}

// Validate checks the parameters and fills in defaults.
func (p *ModbusRTUOverTCPParams) Validate() error {
	if err := p.Acquisition.Validate(); err != nil {
		return err
	}
	if err := p.ModbusLinkParams.Validate(); err != nil {
		return err
	}
	if err := p.ModbusRTUTiming.validate(); err != nil {
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
	return nil
}
