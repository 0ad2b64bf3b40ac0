package config

import (
	"strings"
	"testing"
)

func TestModbusRTUParams(t *testing.T) {
	p := ModbusRTUParams{Device: "/dev/ttyUSB0"}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if p.BaudRate != 9600 || p.DataBits != 8 || p.Parity != "even" || p.StopBits != 1 || p.TimeoutMS != 1000 ||
		*p.MaxGap != 10 || p.MaxRegisters != 125 || p.TurnaroundMS != 100 || !*p.RS485.RTSOnSend {
		t.Fatalf("defaults: %+v", p)
	}
	p = ModbusRTUParams{Device: "/dev/ttyS1", Parity: "N"}
	if err := p.Validate(); err != nil || p.Parity != "none" || p.StopBits != 2 {
		t.Fatalf("no parity → 2 stop bits: %+v %v", p, err)
	}
	for _, tc := range []struct {
		p    ModbusRTUParams
		want string
	}{
		{ModbusRTUParams{}, "device is required"},
		{ModbusRTUParams{Device: "d", BaudRate: 12345}, "baud_rate"},
		{ModbusRTUParams{Device: "d", DataBits: 9}, "data_bits"},
		{ModbusRTUParams{Device: "d", Parity: "mark"}, "parity"},
		{ModbusRTUParams{Device: "d", StopBits: 3}, "stop_bits"},
		{ModbusRTUParams{Device: "d", ModbusRTUTiming: ModbusRTUTiming{FrameDelayMS: -1}}, "frame_delay_ms"},
		{ModbusRTUParams{Device: "d", ModbusLinkParams: ModbusLinkParams{MaxRegisters: 200}}, "max_registers"},
		{ModbusRTUParams{Device: "d", RS485: RS485Params{DelayRTSAfterSendMS: -2}}, "rs485"},
	} {
		if err := tc.p.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.p, err, tc.want)
		}
	}
}

func TestModbusRTUOverTCPParams(t *testing.T) {
	p := ModbusRTUOverTCPParams{Host: "gw"}
	if err := p.Validate(); err != nil || p.Port != 502 {
		t.Fatalf("%+v %v", p, err)
	}
	if err := (&ModbusRTUOverTCPParams{}).Validate(); err == nil {
		t.Fatal("missing host accepted")
	}
	if err := (&ModbusRTUOverTCPParams{Host: "gw", Port: 70000}).Validate(); err == nil {
		t.Fatal("port 70000 accepted")
	}
}

// TestRTUParametersDecodeFromChannels checks the inline keys decode from
// channels.yaml and an unknown key is rejected with its position.
func TestRTUParametersDecodeFromChannels(t *testing.T) {
	files := map[string]string{
		"site.yaml": "site: {id: s}\n",
		"comsrv/channels.yaml": "channels:\n" +
			"  - {id: 1, name: bus, protocol: modbus_rtu, parameters: {device: /dev/ttyUSB0, baud_rate: 19200, parity: odd, timeout_ms: 200, max_gap: 0, frame_delay_ms: 5, rs485: {enabled: true, delay_rts_before_send_ms: 1}}}\n" +
			"  - {id: 2, name: gw, protocol: modbus_rtu_over_tcp, parameters: {host: 10.0.0.9, port: 4001, baud: 9600}}\n",
	}
	cfg, err := Load(writeSite(t, files))
	if err != nil {
		t.Fatal(err)
	}
	var p ModbusRTUParams
	if err := cfg.Channel(1).DecodeParameters(&p); err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if p.BaudRate != 19200 || p.Parity != "odd" || p.TimeoutMS != 200 || *p.MaxGap != 0 || p.FrameDelayMS != 5 || !p.RS485.Enabled || p.RS485.DelayRTSBeforeSendMS != 1 {
		t.Fatalf("decoded %+v", p)
	}
	var q ModbusRTUOverTCPParams
	err = cfg.Channel(2).DecodeParameters(&q)
	if err == nil || !strings.Contains(err.Error(), `unknown key "baud"`) || !strings.Contains(err.Error(), "channels.yaml:3:") {
		t.Fatalf("unknown key: %v", err)
	}
}
