package config

import (
	"strings"
	"testing"

	"github.com/voltageems/voltage/shared/point"
)

const iecHeader = "point_id,common_address,ioa,type_id,cot,sbo\n"

// iecSite is goodSite plus an iec104 channel 3 with all four tables.
func iecSite(changes map[string]string) map[string]string {
	files := withFiles(map[string]string{
		"comsrv/channels.yaml": goodSite["comsrv/channels.yaml"] +
			"  - {id: 3, name: rtu, protocol: iec104, parameters: {host: 127.0.0.1, port: 2404}}\n",
		"comsrv/3/telemetry.csv":                  "point_id,signal_name\n1,u\n2,p\n3,e\n",
		"comsrv/3/mapping/telemetry_mapping.csv":  iecHeader + "1,1,100,M_ME_NC_1,,\n2,1,101,36,3,\n3,1,102,m_it_na_1,,\n",
		"comsrv/3/signal.csv":                     "point_id,signal_name\n1,cb\n",
		"comsrv/3/mapping/signal_mapping.csv":     "point_id,common_address,ioa,type_id\n1,1,200,M_DP_TB_1\n",
		"comsrv/3/control.csv":                    "point_id,signal_name\n1,cb_cmd\n",
		"comsrv/3/mapping/control_mapping.csv":    iecHeader + "1,1,300,46,6,yes\n",
		"comsrv/3/adjustment.csv":                 "point_id,signal_name\n1,sp\n",
		"comsrv/3/mapping/adjustment_mapping.csv": iecHeader + "1,2,400,C_SE_NC_1,,\n",
	})
	for k, v := range changes {
		files[k] = v
	}
	return files
}

func TestLoadIEC104Mapping(t *testing.T) {
	cfg, err := Load(writeSite(t, iecSite(nil)))
	if err != nil {
		t.Fatal(err)
	}
	ch := cfg.Channel(3)
	for _, tc := range []struct {
		typ  point.Type
		id   point.ID
		want IEC104Mapping
	}{
		{point.Telemetry, 1, IEC104Mapping{CommonAddress: 1, IOA: 100, TypeID: MMeNc1}},
		{point.Telemetry, 2, IEC104Mapping{CommonAddress: 1, IOA: 101, TypeID: MMeTf1, COT: 3}},
		{point.Telemetry, 3, IEC104Mapping{CommonAddress: 1, IOA: 102, TypeID: MItNa1}},
		{point.Signal, 1, IEC104Mapping{CommonAddress: 1, IOA: 200, TypeID: MDpTb1}},
		{point.Control, 1, IEC104Mapping{CommonAddress: 1, IOA: 300, TypeID: CDcNa1, COT: 6}},
		{point.Adjustment, 1, IEC104Mapping{CommonAddress: 2, IOA: 400, TypeID: CSeNc1}},
	} {
		p := ch.Point(tc.typ, tc.id)
		if p == nil || p.IEC104 == nil {
			t.Fatalf("%s%d has no mapping", tc.typ, tc.id)
		}
		got := *p.IEC104
		got.Pos, got.SBO = Position{}, nil
		if got != tc.want {
			t.Errorf("%s%d = %+v, want %+v", tc.typ, tc.id, got, tc.want)
		}
		if p.Modbus != nil {
			t.Errorf("%s%d has a Modbus mapping", tc.typ, tc.id)
		}
	}
	if sbo := ch.Point(point.Control, 1).IEC104.SBO; sbo == nil || !*sbo {
		t.Errorf("control sbo = %v, want true", sbo)
	}
	if sbo := ch.Point(point.Adjustment, 1).IEC104.SBO; sbo != nil {
		t.Errorf("adjustment sbo = %v, want nil (channel default)", *sbo)
	}
}

func TestIEC104MappingErrors(t *testing.T) {
	const tm = "config/comsrv/3/mapping/telemetry_mapping.csv"
	cases := []struct {
		name    string
		changes map[string]string
		want    []string
	}{
		{"unknown type name", map[string]string{"comsrv/3/mapping/telemetry_mapping.csv": iecHeader + "1,1,100,M_ME_XX_1,,\n2,1,101,13,,\n3,1,102,15,,\n"},
			[]string{tm + `:2:9: column "type_id": unknown type id "M_ME_XX_1"`}},
		{"CP24 type", map[string]string{"comsrv/3/mapping/telemetry_mapping.csv": iecHeader + "1,1,100,14,,\n2,1,101,13,,\n3,1,102,M_IT_TA_1,,\n"},
			[]string{tm + `:2:9: column "type_id": type 14 (M_ME_TC_1) carries a CP24Time2a`, tm + `:4:9: column "type_id": type M_IT_TA_1 carries a CP24Time2a`}},
		{"command type on telemetry", map[string]string{"comsrv/3/mapping/telemetry_mapping.csv": iecHeader + "1,1,100,C_SE_NC_1,,\n2,1,101,13,,\n3,1,102,15,,\n"},
			[]string{tm + `:2:9: column "type_id": C_SE_NC_1 cannot carry a telemetry point`}},
		{"reserved addresses", map[string]string{"comsrv/3/mapping/telemetry_mapping.csv": iecHeader + "1,0,100,13,,\n2,65535,101,13,,\n3,1,0,15,,\n"},
			[]string{tm + `:2:3: column "common_address": common address 0 is reserved`, tm + `:3:3: column "common_address": common address 65535 is reserved`,
				tm + `:4:5: column "ioa": information object address 0`}},
		{"ioa too large", map[string]string{"comsrv/3/mapping/telemetry_mapping.csv": iecHeader + "1,1,16777216,13,,\n2,1,101,13,,\n3,1,102,15,,\n"},
			[]string{tm + `:2:5: column "ioa": want a whole number 0..16777215, got "16777216"`}},
		{"same object twice", map[string]string{"comsrv/3/mapping/telemetry_mapping.csv": iecHeader + "1,1,100,13,,\n2,1,100,13,,\n3,1,102,15,,\n"},
			[]string{tm + `:3:5: common_address 1 ioa 100 is already mapped on line 2`}},
		{"duplicate point", map[string]string{"comsrv/3/mapping/telemetry_mapping.csv": iecHeader + "1,1,100,13,,\n1,1,101,13,,\n2,1,102,13,,\n3,1,103,15,,\n"},
			[]string{tm + `:3:1: second mapping row for point_id 1`}},
		{"bad cot", map[string]string{"comsrv/3/mapping/telemetry_mapping.csv": iecHeader + "1,1,100,13,0,\n2,1,101,13,64,\n3,1,102,15,,\n",
			"comsrv/3/mapping/control_mapping.csv": iecHeader + "1,1,300,46,3,\n"},
			[]string{tm + `:2:12: column "cot": cause of transmission 0 is not used`, tm + `:3:12: column "cot": want a whole number 0..63`,
				`config/comsrv/3/mapping/control_mapping.csv:2:12: column "cot": control points are sent as activation (6)`}},
		{"sbo on a monitored point and on C_BO_NA_1", map[string]string{"comsrv/3/mapping/telemetry_mapping.csv": iecHeader + "1,1,100,13,,1\n2,1,101,13,,\n3,1,102,15,,\n",
			"comsrv/3/mapping/adjustment_mapping.csv": iecHeader + "1,1,400,C_BO_NA_1,,maybe\n"},
			[]string{tm + `:2:13: column "sbo": select-before-operate applies to commands`,
				`config/comsrv/3/mapping/adjustment_mapping.csv:2:20: column "sbo": want 1/0, true/false or yes/no, got "maybe"`}},
		{"unknown column and missing required", map[string]string{"comsrv/3/mapping/signal_mapping.csv": "point_id,ioa,type_id,slave_id\n1,200,3,1\n"},
			[]string{`config/comsrv/3/mapping/signal_mapping.csv:1:22: unknown column "slave_id"`, `config/comsrv/3/mapping/signal_mapping.csv:1:1: missing required column "common_address"`}},
		{"point without row and row without point", map[string]string{"comsrv/3/mapping/telemetry_mapping.csv": iecHeader + "1,1,100,13,,\n2,1,101,13,,\n9,1,102,15,,\n"},
			[]string{tm + `:4:1: point_id 9 is not in config/comsrv/3/telemetry.csv`, tm + `: no mapping row for 1 point(s) of config/comsrv/3/telemetry.csv: point_id 3`}},
		{"mapping file missing", map[string]string{"comsrv/3/mapping/signal_mapping.csv": ""},
			[]string{`config/comsrv/3/mapping/signal_mapping.csv: file missing: this is an IEC 104 channel`}},
		{"malformed CSV", map[string]string{"comsrv/3/mapping/telemetry_mapping.csv": iecHeader + "1,1,100,\"13,,\n"},
			[]string{tm + `:2:`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lines := loadErrors(t, writeSite(t, iecSite(tc.changes)))
			all := strings.Join(lines, "\n")
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("missing error %q in:\n%s", w, all)
				}
			}
		})
	}
}

func TestParseIEC104TypeID(t *testing.T) {
	for in, want := range map[string]IEC104TypeID{"13": MMeNc1, "M_ME_NC_1": MMeNc1, " c_se_nc_1 ": CSeNc1, "30": MSpTb1, "51": CBoNa1} {
		if got, err := ParseIEC104TypeID(in); err != nil || got != want {
			t.Errorf("%q = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "2", "100", "256", "-1", "M_EI_NA_1", "13.0"} {
		if got, err := ParseIEC104TypeID(in); err == nil {
			t.Errorf("%q = %v, want an error", in, got)
		}
	}
}

func TestIEC104ParamsValidate(t *testing.T) {
	p := IEC104Params{Host: "h"}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if p.Port != 2404 || p.K != 12 || p.W != 8 || p.T1MS != 15000 || !*p.InterrogationAtConnect || !*p.AwaitTermination || p.SelectBeforeOperate {
		t.Errorf("defaults %+v", p)
	}
	for name, bad := range map[string]IEC104Params{
		"no host":    {},
		"port":       {Host: "h", Port: 70000},
		"w > k":      {Host: "h", K: 4, W: 5},
		"t1 small":   {Host: "h", T1MS: 500},
		"t2 >= t1":   {Host: "h", T1MS: 5000, T2MS: 5000},
		"t3 huge":    {Host: "h", T3MS: 48*3600*1000 + 1},
		"originator": {Host: "h", OriginatorAddress: 256},
		"negative":   {Host: "h", InterrogationIntervalMS: -1},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzIEC104Mapping(f *testing.F) {
	for _, k := range []string{"comsrv/3/mapping/telemetry_mapping.csv", "comsrv/3/mapping/control_mapping.csv", "comsrv/3/mapping/adjustment_mapping.csv"} {
		f.Add([]byte(iecSite(nil)[k]))
	}
	f.Add([]byte(iecHeader + "1,65534,16777215,M_IT_TB_1,63,\n2,1,1,c_rc_na_1,6,no\n"))
	f.Add([]byte("point_id,common_address,ioa,type_id\n1,1,1,\"7\"\"\n"))
	points := []byte("point_id,signal_name\n1,a\n2,b\n3,c\n")
	f.Fuzz(func(t *testing.T, src []byte) {
		for _, typ := range point.Types {
			l := &errList{}
			mt := parseIEC104Mapping("m.csv", typ, src, l)
			seen := map[[2]uint32]bool{}
			for _, r := range mt.rows {
				m := r.m
				if m.CommonAddress == 0 || m.CommonAddress == 0xFFFF || m.IOA == 0 || m.IOA >= 1<<24 {
					t.Fatalf("%s: address %d/%d", typ, m.CommonAddress, m.IOA)
				}
				if !containsType(iec104Allowed[typ], m.TypeID) {
					t.Fatalf("%s: type %s", typ, m.TypeID)
				}
				if m.COT > 63 || typ.Writable() && m.COT != 0 && m.COT != 6 || !typ.Writable() && m.SBO != nil {
					t.Fatalf("%s: cot %d sbo %v", typ, m.COT, m.SBO)
				}
				a := [2]uint32{uint32(m.CommonAddress), m.IOA}
				if seen[a] {
					t.Fatalf("%s: object %v twice", typ, a)
				}
				seen[a] = true
			}
			pt := parsePointTable("p.csv", typ, points, l)
			joinIEC104(&pt, &mt, l)
			checkErrors(t, l, "m.csv", "p.csv")
		}
	})
}
