package config

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

const (
	tele    = "config/comsrv/1/telemetry.csv"
	teleMap = "config/comsrv/1/mapping/telemetry_mapping.csv"
	ctrlMap = "config/comsrv/1/mapping/control_mapping.csv"
	sigMap  = "config/comsrv/1/mapping/signal_mapping.csv"
	chans   = "config/comsrv/channels.yaml"
	site    = "config/site.yaml"

	teleHeader    = "point_id,signal_name,scale,offset,unit,reverse,data_type\n"
	teleMapHeader = "point_id,slave_id,function_code,register_address,data_type,byte_order,bit_position\n"
)

// TestLoadErrors changes the good site one way per case and checks that Load reports
// exactly the expected errors, in order: each line starts with the wanted
// "file:line:col: " prefix and contains the wanted message. Exact counts make sure an
// error does not drag a cascade of follow-up errors behind it.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		changes map[string]string
		want    []string // "prefix|message part"
	}{
		{
			name: "CSV bad quote",
			changes: map[string]string{"comsrv/1/telemetry.csv": teleHeader +
				"1,voltage,1,0,V,0,float\n" +
				"2,cur\"rent,1,0,A,0,float\n" +
				"3,power,1,0,kW,0,float\n"},
			want: []string{tele + ":3:6: |malformed CSV: bare \" in non-quoted-field"},
		},
		{
			name: "CSV unterminated quote reports where the row started",
			changes: map[string]string{"comsrv/1/telemetry.csv": teleHeader +
				"1,\"voltage,1,0,V,0,float\n" +
				"2,current,1,0,A,0,float\n"},
			want: []string{tele + ":3:25: |in the row starting on line 2"},
		},
		{
			name: "wrong field count",
			changes: map[string]string{"comsrv/1/telemetry.csv": teleHeader +
				"1,voltage,1,0,V,0,float\n" +
				"2,current,1,0,A,0\n" +
				"3,power,1,0,kW,0,float\n"},
			want: []string{tele + ":3:1: |row has 6 fields, the header has 7"},
		},
		{
			name: "non-numeric scale, column counted in characters",
			changes: map[string]string{"comsrv/1/telemetry.csv": teleHeader +
				"1,voltage,1,0,V,0,float\n" +
				"2,电流,abc,0,A,0,float\n" +
				"3,power,1,0,kW,0,float\n"},
			want: []string{tele + `:3:6: |column "scale": invalid number "abc"`},
		},
		{
			name: "zero scale",
			changes: map[string]string{"comsrv/1/telemetry.csv": teleHeader +
				"1,voltage,1,0,V,0,float\n" +
				"2,current,0,0,A,0,float\n" +
				"3,power,1,0,kW,0,float\n"},
			want: []string{tele + `:3:11: |column "scale": scale must be a non-zero finite number, got 0`},
		},
		{
			name: "bad reverse and empty signal name in one row",
			changes: map[string]string{"comsrv/1/telemetry.csv": teleHeader +
				"1,,1,0,V,maybe,float\n2,current,1,0,A,0,float\n3,power,1,0,kW,0,float\n"},
			want: []string{
				tele + `:2:3: |column "signal_name": value required`,
				tele + `:2:10: |column "reverse": want 1/0, true/false or yes/no, got "maybe"`,
			},
		},
		{
			name: "duplicate point id",
			changes: map[string]string{"comsrv/1/telemetry.csv": teleHeader +
				"1,voltage,1,0,V,0,float\n2,current,1,0,A,0,float\n3,power,1,0,kW,0,float\n2,again,1,0,A,0,float\n"},
			want: []string{tele + ":5:1: |duplicate point_id 2 (first defined on line 3)"},
		},
		{
			name: "unknown CSV column",
			changes: map[string]string{"comsrv/1/telemetry.csv": "point_id,signal_name,scale,units\n" +
				"1,voltage,1,V\n2,current,1,A\n3,power,1,kW\n"},
			want: []string{tele + `:1:28: |unknown column "units" (known columns: point_id, signal_name, scale, offset, unit, reverse, data_type, description)`},
		},
		{
			name:    "missing required column",
			changes: map[string]string{"comsrv/1/telemetry.csv": "point_id,scale\n1,1\n"},
			want:    []string{tele + `:1:1: |missing required column "signal_name"`},
		},
		{
			name:    "not UTF-8",
			changes: map[string]string{"comsrv/1/telemetry.csv": teleHeader + "1,\xb5\xe7\xc1\xf7,1,0,A,0,float\n"},
			want:    []string{tele + ":2:3: |not UTF-8 text"},
		},
		{
			name: "min above max",
			changes: map[string]string{"comsrv/1/adjustment.csv": "point_id,signal_name,min_value,max_value\n" +
				"1,power_setpoint,100,-100\n2,mode,,\n"},
			want: []string{"config/comsrv/1/adjustment.csv:2:22: |max_value -100 is below min_value 100"},
		},
		{
			name: "unknown mapping data type",
			changes: map[string]string{"comsrv/1/mapping/telemetry_mapping.csv": teleMapHeader +
				"1,1,3,100,int17,,\n2,1,4,101,int16,BA,\n3,1,3,102,float64,CDAB,\n"},
			want: []string{teleMap + `:2:11: |column "data_type": unknown data type "int17"`},
		},
		{
			name: "unknown byte order",
			changes: map[string]string{"comsrv/1/mapping/telemetry_mapping.csv": teleMapHeader +
				"1,1,3,100,uint16,,\n2,1,4,101,int16,XY,\n3,1,3,102,float64,CDAB,\n"},
			want: []string{teleMap + `:3:17: |column "byte_order": unknown byte order "XY"`},
		},
		{
			name: "byte order of the wrong width",
			changes: map[string]string{"comsrv/1/mapping/telemetry_mapping.csv": teleMapHeader +
				"1,1,3,100,uint16,,\n2,1,4,101,int16,ABCD,\n3,1,3,102,float64,CDAB,\n"},
			want: []string{teleMap + `:3:17: |byte order ABCD does not fit data type int16 (2 bytes)`},
		},
		{
			name: "missing mapping row",
			changes: map[string]string{"comsrv/1/mapping/telemetry_mapping.csv": teleMapHeader +
				"2,1,4,101,int16,BA,\n"},
			want: []string{teleMap + ": |no mapping row for 2 point(s) of " + tele + ": point_id 1, 3"},
		},
		{
			name:    "missing mapping file",
			changes: map[string]string{"comsrv/1/mapping/telemetry_mapping.csv": ""},
			want:    []string{teleMap + ": |file missing: this is a Modbus channel, so each point of " + tele + " needs a mapping row here (point_id 1-3)"},
		},
		{
			name: "mapping row for a missing point",
			changes: map[string]string{"comsrv/1/mapping/telemetry_mapping.csv": teleMapHeader +
				"1,1,3,100,uint16,,\n2,1,4,101,int16,BA,\n3,1,3,102,float64,CDAB,\n9,1,3,110,uint16,,\n"},
			want: []string{teleMap + ":5:1: |point_id 9 is not in " + tele},
		},
		{
			name: "second mapping row for a point",
			changes: map[string]string{"comsrv/1/mapping/telemetry_mapping.csv": teleMapHeader +
				"1,1,3,100,uint16,,\n2,1,4,101,int16,BA,\n3,1,3,102,float64,CDAB,\n1,1,3,110,uint16,,\n"},
			want: []string{teleMap + ":5:1: |second mapping row for point_id 1 (first on line 2)"},
		},
		{
			name: "FC 2 on a control point",
			changes: map[string]string{"comsrv/1/mapping/control_mapping.csv": "point_id,slave_id,function_code,register_address,data_type\n" +
				"1,1,2,10,bool\n2,0,16,300,uint16\n"},
			want: []string{ctrlMap + `:2:5: |column "function_code": function code 2 reads a read-only area, which cannot be written`},
		},
		{
			name: "FC 1 for a register type",
			changes: map[string]string{"comsrv/1/mapping/telemetry_mapping.csv": teleMapHeader +
				"1,1,1,100,uint16,,\n2,1,4,101,int16,BA,\n3,1,3,102,float64,CDAB,\n"},
			want: []string{teleMap + `:2:5: |function code 1 reads single bits, and data_type uint16 needs registers (function code 3 or 4)`},
		},
		{
			name: "FC 6 for a two-register value",
			changes: map[string]string{"comsrv/1/mapping/adjustment_mapping.csv": "point_id,slave_id,function_code,register_address,data_type\n" +
				"1,1,6,400,float32\n2,1,6,402,uint16\n"},
			want: []string{"config/comsrv/1/mapping/adjustment_mapping.csv:2:5: |function code 6 writes one register, and float32 takes 2 (use 16)"},
		},
		{
			name: "write code for a telemetry point",
			changes: map[string]string{"comsrv/1/mapping/telemetry_mapping.csv": teleMapHeader +
				"1,1,6,100,uint16,,\n2,1,4,101,int16,BA,\n3,1,3,102,float64,CDAB,\n"},
			want: []string{teleMap + `:2:5: |function code 6 is not a read`},
		},
		{
			name: "bit_position on a non-bool",
			changes: map[string]string{"comsrv/1/mapping/telemetry_mapping.csv": teleMapHeader +
				"1,1,3,100,uint16,,3\n2,1,4,101,int16,BA,\n3,1,3,102,float64,CDAB,\n"},
			want: []string{teleMap + `:2:19: |column "bit_position": bit_position is only for bool points, and data_type is uint16`},
		},
		{
			name: "bit_position on a coil, and out of range",
			changes: map[string]string{"comsrv/1/mapping/signal_mapping.csv": "point_id,slave_id,function_code,register_address,data_type,bit_position\n" +
				"1,1,2,0,bool,0\n2,1,3,200,bool,16\n"},
			want: []string{
				sigMap + `:2:14: |function code 2 reads single bits`,
				sigMap + `:3:16: |column "bit_position": want a whole number 0..15, got "16"`,
			},
		},
		{
			name: "slave 0 for telemetry, slave 248, register overflow",
			changes: map[string]string{"comsrv/1/mapping/telemetry_mapping.csv": teleMapHeader +
				"1,0,3,100,uint16,,\n2,248,4,101,int16,BA,\n3,1,3,65534,float64,CDAB,\n"},
			want: []string{
				teleMap + `:2:3: |slave_id 0 is the broadcast address, which answers no reads; a telemetry point needs 1..247`,
				teleMap + `:3:3: |slave_id 248 is reserved`,
				teleMap + `:4:7: |float64 at register 65534 needs 4 registers and runs past the last address, 65535`,
			},
		},
		{
			name: "address_base 1: register 0 does not exist, and register n is address n-1",
			changes: map[string]string{
				"comsrv/channels.yaml": strings.Replace(goodSite["comsrv/channels.yaml"], "poll_interval_ms: 1000", "poll_interval_ms: 1000, address_base: 1", 1),
				"comsrv/1/mapping/telemetry_mapping.csv": teleMapHeader +
					"1,1,3,0,uint16,,\n2,1,4,65533,float64,,\n3,1,3,65534,float64,CDAB,\n",
				"comsrv/1/mapping/signal_mapping.csv": strings.Replace(goodSite["comsrv/1/mapping/signal_mapping.csv"], "1,1,2,0,bool", "1,1,2,1,bool", 1),
			},
			want: []string{
				teleMap + `:2:7: |register 0 does not exist: the channel sets address_base 1`,
				teleMap + `:4:7: |float64 at register 65534 needs 4 registers and runs past the last address, 65535`,
			},
		},
		{
			name:    "missing site.yaml",
			changes: map[string]string{"site.yaml": ""},
			want:    []string{site + ": |missing; every site folder needs a site.yaml"},
		},
		{
			name:    "unknown key in site.yaml",
			changes: map[string]string{"site.yaml": "site: {id: s1}\nredis:\n  url: redis://r:6379/0\n  maxlen: 5\n"},
			want:    []string{site + `:4:3: |unknown key "maxlen" in redis (known keys: url, changes_maxlen)`},
		},
		{
			name:    "duplicate key in site.yaml",
			changes: map[string]string{"site.yaml": "site: {id: s1}\nredis:\n  url: redis://a\n  url: redis://b\n"},
			want:    []string{site + `:4:3: |mapping key "url" already defined at [3:3]`},
		},
		{
			name: "bad site values, all reported",
			changes: map[string]string{"site.yaml": "site: {id: \"my site.1\"}\n" +
				"redis: {url: \"http://x\", changes_maxlen: 1.5}\n" +
				"logging: {level: verbose, format: xml}\n" +
				"listen: {comsrv: \"6001\", modsrv: \"127.0.0.1:http\"}\n"},
			want: []string{
				site + `:1:12: |site.id: "my site.1" may hold only letters, digits, - and _`,
				site + `:2:14: |redis.url: URL "http://x" has scheme "http"`,
				site + `:2:42: |redis.changes_maxlen: want an integer, got "1.5"`,
				site + `:3:18: |logging.level: unknown level "verbose"`,
				site + `:3:35: |logging.format: unknown format "xml"`,
				site + `:4:18: |listen.comsrv: want host:port, got "6001"`,
				site + `:4:34: |listen.modsrv: port "http" is not a number`,
			},
		},
		{
			name:    "site.id missing",
			changes: map[string]string{"site.yaml": "site: {name: x}\n"},
			want:    []string{site + ": |site.id is required"},
		},
		{
			name:    "unknown key in channels.yaml",
			changes: map[string]string{"comsrv/channels.yaml": strings.Replace(goodSite["comsrv/channels.yaml"], "    protocol: virtual\n", "    protocol: virtual\n    poll_ms: 5\n", 1)},
			want:    []string{chans + `:10:5: |unknown key "poll_ms" (known keys: id, name, description, protocol, enabled, parameters)`},
		},
		{
			name: "duplicate channel id and name, bad id type, unknown protocol",
			changes: map[string]string{"comsrv/channels.yaml": `channels:
  - {id: 1, name: pcs1, protocol: modbus_tcp}
  - {id: 1, name: pcs1, protocol: virtual}
  - {id: abc, name: x, protocol: modbus_tcp}
  - {id: 0, name: y, protocol: di_do, enabled: "yes"}
`},
			want: []string{
				chans + `:3:10: |duplicate channel id 1 (first used on line 2)`,
				chans + `:3:19: |duplicate channel name "pcs1" (first used on line 2)`,
				chans + `:4:10: |id: want an integer, got "abc"`,
				chans + `:5:10: |id: must be > 0`,
				chans + `:5:32: |protocol: unknown protocol "di_do"`,
				chans + `:5:48: |enabled: want true or false, got "yes"`,
			},
		},
		{
			name: "merge keys: unknown keys in the anchor (reported once) and beside the merge",
			changes: map[string]string{"comsrv/channels.yaml": `channels:
  - &one
    id: 1
    name: pcs1
    protocol: modbus_tcp
    pol: 5
  - <<: *one
    id: 2
    name: calc
    protocol: virtual
    bogus: 1
`},
			want: []string{
				chans + `:6:5: |unknown key "pol"`,
				chans + `:11:5: |unknown key "bogus"`,
			},
		},
		{
			name: "merge of a scalar",
			changes: map[string]string{"comsrv/channels.yaml": `channels:
  - &one {id: 1, name: pcs1, protocol: modbus_tcp}
  - <<: [*one, 5]
    id: 2
`},
			want: []string{chans + `:3:16: |`},
		},
		{
			name:    "unknown alias",
			changes: map[string]string{"site.yaml": "site: {id: *nope}\n"},
			want:    []string{site + `:1:13: |could not find alias "nope"`},
		},
		{
			name:    "channel without id, name and protocol",
			changes: map[string]string{"comsrv/channels.yaml": "channels:\n  - description: nothing else\n"},
			want: []string{
				chans + `:2:5: |channel without id`,
				chans + `:2:5: |channel (no id): name is required`,
				chans + `:2:5: |channel (no id): protocol is required`,
			},
		},
		{
			name:    "channels not a list",
			changes: map[string]string{"comsrv/channels.yaml": "channels: {id: 1}\n"},
			want:    []string{chans + `:1:11: |channels: want a list of channels, got a mapping`},
		},
		{
			name:    "parameters not a mapping",
			changes: map[string]string{"comsrv/channels.yaml": strings.Replace(goodSite["comsrv/channels.yaml"], "enabled: false", "parameters: [1, 2]", 1)},
			want:    []string{chans + `:10:17: |parameters: sequence was used where mapping is expected`},
		},
		{
			name: "several files, every error reported",
			changes: map[string]string{
				"site.yaml":            "site: {id: s1, nmae: x}\n",
				"comsrv/channels.yaml": strings.Replace(goodSite["comsrv/channels.yaml"], "name: calc", "name: calc\n    logging: {}", 1),
				"comsrv/1/telemetry.csv": teleHeader +
					"1,voltage,x,0,V,0,float\n2,current,1,0,A,0,float\n3,power,1,0,kW,0,float\n",
				"comsrv/1/mapping/control_mapping.csv": "point_id,slave_id,function_code,register_address,data_type\n1,1,4,10,bool\n",
			},
			want: []string{
				site + `:1:16: |unknown key "nmae" in site`,
				chans + `:9:5: |unknown key "logging"`,
				tele + `:2:11: |column "scale": invalid number "x"`,
				ctrlMap + `: |no mapping row for 1 point(s) of config/comsrv/1/control.csv: point_id 2`,
				ctrlMap + `:2:5: |function code 4 reads a read-only area`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := loadErrors(t, writeSite(t, withFiles(tt.changes)))
			if len(lines) != len(tt.want) {
				t.Errorf("got %d errors, want %d:\n%s", len(lines), len(tt.want), strings.Join(lines, "\n"))
			}
			for i := range min(len(lines), len(tt.want)) {
				prefix, msg, _ := strings.Cut(tt.want[i], "|")
				if !strings.HasPrefix(lines[i], prefix) || !strings.Contains(lines[i], msg) {
					t.Errorf("error %d:\n got  %s\n want %s…%s", i, lines[i], prefix, msg)
				}
			}
		})
	}
}

func TestLoadErrorTypes(t *testing.T) {
	dir := writeSite(t, withFiles(map[string]string{"comsrv/1/telemetry.csv": teleHeader + "1,voltage,abc,0,V,0,float\n"}))
	_, err := Load(dir)
	var pe *PosError
	if !errors.As(err, &pe) {
		t.Fatalf("errors.As(*PosError) failed on %v", err)
	}
	want := Position{File: tele, Line: 2, Column: 11}
	if pe.Pos != want || pe.Msg != `column "scale": invalid number "abc"` {
		t.Errorf("first error = %+v, want %v and the message", pe, want)
	}

	_, err = Load("does-not-exist")
	var le *LoadError
	if !errors.As(err, &le) || len(le.Errors) != 1 || err.Error() != "does-not-exist: site folder does not exist" || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing folder: %v", err)
	}
}
