package config

import (
	"errors"
	"strings"
	"sync"
	"testing"
)

// tcpParams is a driver's parameter struct, as a Modbus TCP driver would declare it.
type tcpParams struct {
	Host           string `yaml:"host"`
	Port           int    `yaml:"port"`
	PollIntervalMS int    `yaml:"poll_interval_ms"`
	Serial         struct {
		Baud   int    `yaml:"baud"`
		Parity string `yaml:"parity"`
	} `yaml:"serial"`
}

func TestDecodeParameters(t *testing.T) {
	dir := writeSite(t, goodSite)
	cfg, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	var p tcpParams
	if err := cfg.Channel(1).DecodeParameters(&p); err != nil {
		t.Fatalf("DecodeParameters: %v", err)
	}
	if p.Host != "127.0.0.1" || p.Port != 502 || p.PollIntervalMS != 1000 {
		t.Errorf("parameters = %+v", p)
	}

	// Shared keys embedded inline, as drivers do for their common acquisition keys.
	type Common struct {
		PollIntervalMS int `yaml:"poll_interval_ms"`
	}
	var inline struct {
		Common `yaml:",inline"`
		Host   string `yaml:"host"`
		Port   int    `yaml:"port"`
	}
	if err := cfg.Channel(1).DecodeParameters(&inline); err != nil {
		t.Fatalf("DecodeParameters into an inline struct: %v", err)
	}
	if inline.PollIntervalMS != 1000 || inline.Port != 502 {
		t.Errorf("inline parameters = %+v", inline)
	}

	// Channel 2 has no parameters: the driver's defaults stay.
	empty := tcpParams{Port: 1502}
	if err := cfg.Channel(2).DecodeParameters(&empty); err != nil {
		t.Fatalf("DecodeParameters without parameters: %v", err)
	}
	if empty.Port != 1502 || empty.Host != "" {
		t.Errorf("parameters = %+v, want the defaults kept", empty)
	}

	// Several drivers may start at once (run with -race).
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var p tcpParams
			if err := cfg.Channel(1).DecodeParameters(&p); err != nil || p.Port != 502 {
				t.Errorf("concurrent DecodeParameters = %+v, %v", p, err)
			}
		})
	}
	wg.Wait()
}

func TestDecodeParametersErrors(t *testing.T) {
	tests := []struct {
		name   string
		params string // the parameters line of channel 1 (line 6 of channels.yaml)
		want   Position
		msg    string
	}{
		{"unknown key", "parameters: {host: 127.0.0.1, prot: 502}", Position{chans, 6, 35}, `parameters: unknown key "prot"`},
		{"unknown nested key", "parameters: {serial: {baud: 9600, bogus: 1}}", Position{chans, 6, 39}, `parameters: unknown key "bogus"`},
		{"wrong type", "parameters: {port: abc}", Position{chans, 6, 24}, "parameters: cannot unmarshal string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			channels := "channels:\n  - id: 1\n    name: pcs1\n    protocol: virtual\n    enabled: true\n    " + tt.params + "\n"
			dir := writeSite(t, map[string]string{"site.yaml": "site: {id: s1}\n", "comsrv/channels.yaml": channels})
			cfg, err := Load(dir)
			if err != nil {
				t.Fatalf("Load: %v (parameters are free at load time)", err)
			}
			err = cfg.Channel(1).DecodeParameters(&tcpParams{})
			var pe *PosError
			if !errors.As(err, &pe) {
				t.Fatalf("DecodeParameters = %v (%T), want a *PosError", err, err)
			}
			if pe.Pos != tt.want || !strings.HasPrefix(pe.Msg, tt.msg) {
				t.Errorf("error = %v, want %v: %s…", pe, tt.want, tt.msg)
			}
		})
	}
}
