package config

import (
	"errors"
	"testing"

	"github.com/voltageems/voltage/shared/point"
)

// The fuzz targets feed arbitrary bytes through the same parse functions Load uses.
// Whatever the input, they must not panic, and what they accept must hold the
// invariants the rest of the system relies on. Seed corpus: testdata/fuzz/<name>/.

func FuzzPointTable(f *testing.F) {
	for _, s := range []string{
		goodSite["comsrv/1/telemetry.csv"],
		goodSite["comsrv/1/control.csv"],
		goodSite["comsrv/1/adjustment.csv"],
		teleHeader + "1,\"a\"\"b\",1e309,NaN,V,yes,float\n",
		"point_id,signal_name\n4294967296,x\n-1,y\n",
		"\ufeff# only a comment\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		for _, typ := range point.Types {
			l := &errList{}
			pt := parsePointTable("p.csv", typ, src, l)
			seen := map[point.ID]bool{}
			for _, p := range pt.points {
				if seen[p.ID] {
					t.Fatalf("%s: point %d twice", typ, p.ID)
				}
				seen[p.ID] = true
				if p.Type != typ || p.Pos.Line < 1 || p.Name == "" {
					t.Fatalf("%s: bad point %+v", typ, p)
				}
				if p.Min != nil && p.Max != nil && *p.Min > *p.Max {
					t.Fatalf("%s: point %d has min > max", typ, p.ID)
				}
			}
			checkErrors(t, l, "p.csv")
		}
	})
}

func FuzzModbusMapping(f *testing.F) {
	for _, s := range []string{
		goodSite["comsrv/1/mapping/telemetry_mapping.csv"],
		goodSite["comsrv/1/mapping/signal_mapping.csv"],
		goodSite["comsrv/1/mapping/control_mapping.csv"],
		goodSite["comsrv/1/mapping/adjustment_mapping.csv"],
		teleMapHeader + "1,0,2,65535,float64,ABCD,15\n1,1,1,0,bool,,\n",
		teleMapHeader + "1,1,3,0,bool,AB,0\n2,1,16,65532,uint64,HGFEDCBA,\n",
	} {
		f.Add([]byte(s))
	}
	// A point table to join with, so the cross-checks run too.
	points := []byte("point_id,signal_name\n1,a\n2,b\n3,c\n")
	f.Fuzz(func(t *testing.T, src []byte) {
		for _, typ := range point.Types {
			l := &errList{}
			base := uint16(len(src) % 2) // both address bases
			mt := parseModbusMapping("m.csv", typ, src, base, l)
			for _, r := range mt.rows {
				m := r.m
				width := m.DataType.Registers()
				switch m.FunctionCode {
				case fcReadCoils, fcReadDiscreteInputs:
					width = 1
				case fcReadHolding, fcReadInput:
				default:
					t.Fatalf("%s: read function code %d", typ, m.FunctionCode)
				}
				if typ.Writable() && m.FunctionCode != fcReadCoils && m.FunctionCode != fcReadHolding {
					t.Fatalf("%s: writable point on read-only function code %d", typ, m.FunctionCode)
				}
				if m.SlaveID > 247 || m.SlaveID == 0 && !typ.Writable() {
					t.Fatalf("%s: slave %d", typ, m.SlaveID)
				}
				if m.Bit < -1 || m.Bit > 15 {
					t.Fatalf("%s: bit %d", typ, m.Bit)
				}
				if m.ByteOrder.Bytes() != 2*m.DataType.Registers() {
					t.Fatalf("%s: byte order %s for %s", typ, m.ByteOrder, m.DataType)
				}
				if int(m.Register) < int(base) || int(m.Register)-int(base)+width-1 > 65535 {
					t.Fatalf("%s: register %d + %d", typ, m.Register, width)
				}
			}
			pt := parsePointTable("p.csv", typ, points, l)
			joinModbus(&pt, &mt, l)
			checkErrors(t, l, "m.csv", "p.csv")
		}
	})
}

// checkErrors checks that every error names one of the files and a sane position.
func checkErrors(t *testing.T, l *errList, files ...string) {
	t.Helper()
	for _, e := range l.errs {
		if !contains(files, e.Pos.File) || e.Pos.Line < 0 || e.Pos.Column < 0 || e.Msg == "" {
			t.Fatalf("bad error %#v", e)
		}
	}
}

// FuzzConfigYAML feeds arbitrary bytes to the site.yaml and channels.yaml loaders
// (and to DecodeParameters): bad YAML must give errors, never a panic or a hang.
func FuzzConfigYAML(f *testing.F) {
	f.Add([]byte(goodSite["site.yaml"]))
	f.Add([]byte(goodSite["comsrv/channels.yaml"]))
	f.Add([]byte("channels:\n  - &a {id: 1, name: x, protocol: virtual, parameters: &p {host: h}}\n  - <<: [*a, *a]\n    id: 2\n    parameters: {<<: *p, port: 1}\n"))
	f.Add([]byte("site: {id: *nope}\nredis: [1, {url: 2}]\nlisten: {a: b}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		l := &errList{}
		loadSite("site.yaml", src, l)
		for _, e := range loadChannels("channels.yaml", src, l) {
			var params struct {
				Host string `yaml:"host"`
				Port int    `yaml:"port"`
			}
			if err := e.ch.DecodeParameters(&params); err != nil {
				var pe *PosError
				if !errors.As(err, &pe) {
					t.Fatalf("DecodeParameters error %T: %v", err, err)
				}
			}
		}
		checkErrors(t, l, "site.yaml", "channels.yaml")
	})
}
