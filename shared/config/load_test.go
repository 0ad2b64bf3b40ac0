package config

import (
	"testing"

	"github.com/voltageems/voltage/shared/modbusmap"
	"github.com/voltageems/voltage/shared/point"
)

func TestLoadGoodSite(t *testing.T) {
	dir := writeSite(t, goodSite)
	cfg, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	s := cfg.Site
	if s.Site.ID != "demo-site" || s.Site.Name != "Demo site" {
		t.Errorf("site = %+v", s.Site)
	}
	if s.Redis.URL != "redis://127.0.0.1:6380/1" || s.Redis.ChangesMaxLen != DefaultChangesMaxLen {
		t.Errorf("redis = %+v, want the written URL and the default maxlen", s.Redis)
	}
	if s.Logging != (Logging{Level: "info", Format: "text"}) {
		t.Errorf("logging = %+v, want the defaults", s.Logging)
	}
	for _, c := range []struct{ service, def, want string }{
		{"comsrv", ":1", "127.0.0.1:6001"},
		{"apigateway", ":1", ":6005"},
		{"hissrv", "127.0.0.1:6004", "127.0.0.1:6004"},
	} {
		if got := s.ListenAddr(c.service, c.def); got != c.want {
			t.Errorf("ListenAddr(%q) = %q, want %q", c.service, got, c.want)
		}
	}

	if len(cfg.Channels) != 2 {
		t.Fatalf("%d channels, want 2", len(cfg.Channels))
	}
	ch := cfg.Channel(1)
	if ch == nil || ch.Name != "pcs1" || ch.Protocol != ProtocolModbusTCP || !ch.Enabled || ch.Description != "变流器 #1" {
		t.Fatalf("channel 1 = %+v", ch)
	}
	if !ch.IsModbus() {
		t.Error("channel 1 is not Modbus")
	}
	if ch.Parameters["host"] != "127.0.0.1" {
		t.Errorf("parameters = %v", ch.Parameters)
	}
	if cfg.Channel(3) != nil {
		t.Error("Channel(3) found a channel that does not exist")
	}
	if virt := cfg.Channel(2); virt == nil || virt.Enabled || virt.IsModbus() {
		t.Errorf("channel 2 = %+v, want a disabled virtual channel", virt)
	} else if p := virt.Point(point.Telemetry, 7); p == nil || p.Name != "total_power" || p.Modbus != nil {
		t.Errorf("channel 2 T7 = %+v", p)
	}

	counts := map[point.Type]int{point.Telemetry: 3, point.Signal: 2, point.Control: 2, point.Adjustment: 2}
	for typ, n := range counts {
		if got := len(ch.Points[typ]); got != n {
			t.Errorf("%d %s points, want %d", got, typ.Name(), n)
		}
		for _, p := range ch.Points[typ] {
			if p.Modbus == nil {
				t.Errorf("%s%d has no Modbus mapping", typ, p.ID)
			}
		}
	}

	v := ch.Point(point.Telemetry, 1)
	if v == nil || v.Name != "voltage" || v.Scale != 0.1 || v.Unit != "V" || v.Description != "DC bus, main" || v.DataType != "float" {
		t.Fatalf("T1 = %+v", v)
	}
	if v.Pos != (Position{File: "config/comsrv/1/telemetry.csv", Line: 3, Column: 1}) {
		t.Errorf("T1 position = %v", v.Pos)
	}
	wantT1 := ModbusMapping{SlaveID: 1, FunctionCode: 3, Register: 100, DataType: modbusmap.Uint16,
		ByteOrder: modbusmap.AB, Bit: -1, Pos: Position{File: "config/comsrv/1/mapping/telemetry_mapping.csv", Line: 2, Column: 1}}
	if *v.Modbus != wantT1 {
		t.Errorf("T1 mapping = %+v, want %+v", *v.Modbus, wantT1)
	}
	if c := ch.Point(point.Telemetry, 2); c.Scale != 1 || c.Offset != 0 || c.Reverse {
		t.Errorf("T2 (empty scale/offset/reverse) = %+v, want defaults 1, 0, false", c)
	}
	if p := ch.Point(point.Telemetry, 3); p.Offset != -5 || p.Description != "有功功率" ||
		p.Modbus.DataType != modbusmap.Float64 || p.Modbus.ByteOrder != modbusmap.GHEFCDAB {
		t.Errorf("T3 = %+v %+v, want offset -5 and CDAB widened to GHEFCDAB", p, p.Modbus)
	}

	if s := ch.Point(point.Signal, 2); !s.Reverse || s.Modbus.FunctionCode != 3 || s.Modbus.Bit != 15 {
		t.Errorf("S2 = %+v %+v", s, s.Modbus)
	}
	if s := ch.Point(point.Signal, 1); s.Modbus.FunctionCode != 2 || s.Modbus.Bit != -1 {
		t.Errorf("S1 mapping = %+v", s.Modbus)
	}

	start := ch.Point(point.Control, 1)
	if start.ControlType != ControlPulse || start.PulseDurationMS != 500 || *start.OnValue != 1 || *start.OffValue != 0 {
		t.Errorf("C1 = %+v", start)
	}
	if m := start.Modbus; m.FunctionCode != 1 || m.WriteFunctionCode != 5 {
		t.Errorf("C1 mapping = %+v, want read code 1 for write code 5", m)
	}
	if m := ch.Point(point.Control, 2).Modbus; m.SlaveID != 0 || m.FunctionCode != 3 || m.WriteFunctionCode != 16 {
		t.Errorf("C2 mapping = %+v, want broadcast slave 0, read code 3 for write code 16", m)
	}
	if c := ch.Point(point.Control, 2); c.OnValue != nil || c.OffValue != nil {
		t.Errorf("C2 on/off = %v/%v, want nil", c.OnValue, c.OffValue)
	}

	sp := ch.Point(point.Adjustment, 1)
	if sp.Min == nil || *sp.Min != -100 || *sp.Max != 100 || *sp.Step != 0.5 {
		t.Errorf("A1 limits = %v %v %v", sp.Min, sp.Max, sp.Step)
	}
	if m := sp.Modbus; m.FunctionCode != 3 || m.WriteFunctionCode != 16 || m.ByteOrder != modbusmap.DCBA || m.Register != 400 {
		t.Errorf("A1 mapping = %+v", m)
	}
	if a := ch.Point(point.Adjustment, 2); a.Min != nil || a.Max != nil || a.Step != nil || a.Modbus.WriteFunctionCode != 6 {
		t.Errorf("A2 = %+v %+v", a, a.Modbus)
	}

	if ch.Point(point.Telemetry, 99) != nil || ch.Point(point.Signal, 3) != nil {
		t.Error("Point found points that do not exist")
	}
}

func TestSiteDefaults(t *testing.T) {
	dir := writeSite(t, map[string]string{"site.yaml": "site:\n  id: s1\n"})
	cfg, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Site{
		Site:    SiteInfo{ID: "s1"},
		Redis:   Redis{URL: "redis://127.0.0.1:6379/0", ChangesMaxLen: 1_000_000},
		Logging: Logging{Level: "info", Format: "text"},
	}
	if cfg.Site.Site != want.Site || cfg.Site.Redis != want.Redis || cfg.Site.Logging != want.Logging || cfg.Site.Listen != nil {
		t.Errorf("site = %+v, want %+v", cfg.Site, want)
	}
	if len(cfg.Channels) != 0 {
		t.Errorf("%d channels without a channels.yaml, want 0", len(cfg.Channels))
	}
	if got := cfg.Site.ListenAddr("comsrv", "127.0.0.1:6001"); got != "127.0.0.1:6001" {
		t.Errorf("ListenAddr = %q, want the default", got)
	}
}

// TestYAMLAnchors checks that aliases and merge keys, which the key-by-key walk hands
// to the library, still decode, also through DecodeParameters.
func TestYAMLAnchors(t *testing.T) {
	dir := writeSite(t, map[string]string{
		"site.yaml": "site: {id: s1}\n",
		"comsrv/channels.yaml": `channels:
  - &first
    id: 1
    name: a
    protocol: virtual
    parameters: &tcp {host: 10.0.0.1, port: 502}
  - id: 2
    name: b
    protocol: virtual
    parameters:
      <<: *tcp
      port: 503
  - id: 3
    name: c
    protocol: virtual
    parameters: *tcp
  - <<: *first
    id: 4
    name: d
`,
	})
	cfg, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	type tcp struct {
		Host string `yaml:"host"`
		Port int    `yaml:"port"`
	}
	for id, want := range map[uint32]tcp{1: {"10.0.0.1", 502}, 2: {"10.0.0.1", 503}, 3: {"10.0.0.1", 502}, 4: {"10.0.0.1", 502}} {
		var got tcp
		if err := cfg.Channel(id).DecodeParameters(&got); err != nil {
			t.Fatalf("channel %d: DecodeParameters: %v", id, err)
		}
		if got != want {
			t.Errorf("channel %d parameters = %+v, want %+v", id, got, want)
		}
	}
	if p := cfg.Channel(2).Parameters; p["host"] != "10.0.0.1" || p["port"] != uint64(503) {
		t.Errorf("channel 2 Parameters = %#v", p)
	}
	// Channel 4 merges channel 1 and overrides its id and name.
	if c := cfg.Channel(4); c.Name != "d" || c.Protocol != ProtocolVirtual || !c.Enabled {
		t.Errorf("channel 4 = %+v", c)
	}
}

func TestLookupsWithoutIndex(t *testing.T) {
	// A Config built by hand (as other packages' tests do) has no index.
	cfg := &Config{Channels: []Channel{{ID: 4, Points: map[point.Type][]Point{point.Signal: {{ID: 9, Name: "x"}}}}}}
	ch := cfg.Channel(4)
	if ch == nil {
		t.Fatal("Channel(4) = nil")
	}
	if p := ch.Point(point.Signal, 9); p == nil || p.Name != "x" {
		t.Errorf("Point(S, 9) = %+v", p)
	}
	if cfg.Channel(5) != nil || ch.Point(point.Signal, 1) != nil {
		t.Error("found what does not exist")
	}
	var nilCfg *Config
	var nilSite *Site
	if nilCfg.Channel(1) != nil || nilSite.ListenAddr("x", "d") != "d" {
		t.Error("nil receivers")
	}
}
