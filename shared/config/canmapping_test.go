package config

import (
	"strings"
	"testing"

	"github.com/voltageems/voltage/shared/point"
)

func canSiteFiles(mapping string) map[string]string {
	return map[string]string{
		"site.yaml":                              "site: {id: s}\n",
		"comsrv/channels.yaml":                   "channels:\n  - {id: 6, name: bms, protocol: can, parameters: {interface: can0}}\n",
		"comsrv/6/telemetry.csv":                 "point_id,signal_name\n1,soc\n2,current\n3,temp\n",
		"comsrv/6/mapping/telemetry_mapping.csv": mapping,
	}
}

func TestCANMappingLoads(t *testing.T) {
	dir := writeSite(t, canSiteFiles("point_id,can_id,start_bit,bit_length,byte_order,signed,scale,offset\n"+
		"1,0x123,0,8,intel,0,0.5,0\n"+
		"2,0x18FF50E5,23,16,motorola,yes,0.1,-10\n"+
		",,,,,,,\n"))
	// The last row is blank (a spreadsheet's empty line); point 3 stays unmapped, for a DBC.
	cfg, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ch := cfg.Channel(6)
	m1 := ch.Point(point.Telemetry, 1).CAN
	if m1 == nil || m1.ID != 0x123 || m1.Extended || m1.Length != 8 || m1.Order != CANLittleEndian || m1.Scale != 0.5 {
		t.Fatalf("point 1: %+v", m1)
	}
	m2 := ch.Point(point.Telemetry, 2).CAN
	if m2 == nil || !m2.Extended || m2.Order != CANBigEndian || !m2.Signed || m2.Offset != -10 || m2.StartBit != 23 {
		t.Fatalf("point 2: %+v", m2)
	}
	if ch.Point(point.Telemetry, 3).CAN != nil {
		t.Fatal("point 3 got a mapping from a blank row")
	}
}

func TestCANMappingErrorsArePositioned(t *testing.T) {
	const file = "config/comsrv/6/mapping/telemetry_mapping.csv"
	header := "point_id,can_id,start_bit,bit_length,byte_order,signed,scale,offset\n"
	for name, tc := range map[string]struct{ row, want string }{
		"id too big":       {"1,0x20000000,0,8,le,0,1,0", file + ":2:3: column \"can_id\": want an identifier"},
		"bad order":        {"1,0x10,0,8,sideways,0,1,0", file + ":2:12: column \"byte_order\""},
		"length 0":         {"1,0x10,0,0,le,0,1,0", file + ":2:10: column \"bit_length\": want 1..64"},
		"runs off frame":   {"1,0x10,60,8,le,0,1,0", "runs past bit 63"},
		"big-endian off":   {"1,0x10,56,16,be,0,1,0", "runs past the last byte"},
		"zero scale":       {"1,0x10,0,8,le,0,0,0", "scale must not be 0"},
		"bad signed":       {"1,0x10,0,8,le,maybe,1,0", "column \"signed\""},
		"no id, no signal": {"1,,0,8,le,0,1,0", "name a DBC signal"},
		"unknown point":    {"9,0x10,0,8,le,0,1,0", "point_id 9 is not in"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := writeSite(t, canSiteFiles(header+tc.row+"\n"))
			errs := strings.Join(loadErrors(t, dir), "\n")
			if !strings.Contains(errs, tc.want) {
				t.Fatalf("errors:\n%s\nwant one containing %q", errs, tc.want)
			}
		})
	}
	dir := writeSite(t, canSiteFiles("point_id,can_id,colour\n1,0x10,red\n"))
	if errs := strings.Join(loadErrors(t, dir), "\n"); !strings.Contains(errs, `unknown column "colour"`) {
		t.Fatalf("unknown column: %s", errs)
	}
}

func TestCANMappingSignalRow(t *testing.T) {
	dir := writeSite(t, canSiteFiles("point_id,signal\n1,BMS.SOC\n"))
	cfg, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m := cfg.Channel(6).Point(point.Telemetry, 1).CAN; m == nil || m.Signal != "BMS.SOC" {
		t.Fatalf("signal row: %+v", m)
	}
}

func TestCANParams(t *testing.T) {
	for _, tc := range []struct {
		p    CANParams
		want string
	}{
		{CANParams{}, "interface is required"},
		{CANParams{Interface: "can0", Bitrate: 300000}, "bitrate"},
		{CANParams{Transport: "udp"}, "address is required"},
		{CANParams{Transport: "udp", Address: "127.0.0.1:1"}, "multicast"},
		{CANParams{Transport: "tcp"}, "transport"},
		{CANParams{Interface: "a-very-long-interface-name"}, "15 characters"},
	} {
		if err := tc.p.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.p, err, tc.want)
		}
	}
	p := CANParams{Interface: "can0"}
	if err := p.Validate(); err != nil || p.Bitrate != 500000 || p.Transport != CANTransportSocketCAN || p.Timeout() != 3e9 {
		t.Fatalf("defaults: %+v, %v", p, err)
	}
}

// FuzzCANMapping feeds arbitrary tables to the CAN mapping parser: no panic, every
// accepted layout is valid, and every rejected row is reported with a position.
func FuzzCANMapping(f *testing.F) {
	f.Add([]byte("point_id,can_id,start_bit,bit_length,byte_order,signed,scale,offset\n1,0x123,0,8,le,0,0.5,0\n2,291,7,16,be,1,1,0\n"))
	f.Add([]byte("point_id,signal\n1,BMS.SOC\n"))
	f.Add([]byte("point_id,can_id,start_bit,bit_length\n1,0x1FFFFFFF,63,64\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		l := &errList{}
		for id, m := range parseCANMapping("m.csv", src, l) {
			if m.Signal != "" && m.Length == 0 {
				continue
			}
			if err := m.Validate(); err != nil {
				t.Fatalf("point %d: accepted an invalid layout %+v: %v", id, m, err)
			}
			var data [8]byte
			if _, err := m.Decode(data[:]); err != nil {
				t.Fatalf("point %d: %+v does not decode an 8-byte frame: %v", id, m, err)
			}
		}
		for _, e := range l.errs {
			if e.Pos.File != "m.csv" {
				t.Fatalf("error without the file: %v", e)
			}
		}
	})
}
