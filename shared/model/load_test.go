package model

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voltageems/voltage/shared/config"
)

// files is a site folder as relative path → content.
type files map[string]string

// baseSite has one virtual channel with a point of each type, two PV inverters
// under a station and a routing for pv1.
var baseSite = files{
	"site.yaml":            "site: {id: t, name: T}\n",
	"comsrv/channels.yaml": "channels:\n  - {id: 1, name: dev, protocol: virtual}\n",
	"comsrv/1/telemetry.csv": "point_id,signal_name,scale,offset,unit,reverse,data_type\n" +
		"1,power,1,0,kW,0,float\n2,voltage,1,0,V,0,float\n3,power2,1,0,kW,0,float\n",
	"comsrv/1/signal.csv":     "point_id,signal_name,scale,offset,unit,reverse,data_type\n1,running,1,0,,0,bool\n",
	"comsrv/1/control.csv":    "point_id,signal_name,scale,offset,unit,reverse,data_type\n1,enable,1,0,,0,bool\n",
	"comsrv/1/adjustment.csv": "point_id,signal_name,scale,offset,unit,reverse,data_type,min_value,max_value\n1,limit,1,0,%,0,float,0,100\n",
	"modsrv/instances.yaml": `instances:
  - {id: 1, name: station, product: station}
  - {id: 2, name: pv1, product: pv_inverter, parent: station, properties: {rated_power: 50}}
  - {id: 3, name: pv2, product: pv_inverter, parent: station}
`,
	"modsrv/instances/pv1/channel_routing.csv": "channel_id,channel_type,channel_point_id,instance_type,instance_point_id\n" +
		"1,T,1,M,1\n1,T,2,M,dc_voltage\n1,S,1,M,running\n1,A,1,A,power_limit\n1,C,1,A,2\n",
	"modsrv/instances/pv2/channel_routing.csv": "channel_id,channel_type,channel_point_id,instance_type,instance_point_id\n1,T,3,M,1\n",
	"modsrv/calculations.yaml": `calculations:
  - name: total
    instance: station
    measurement: pv_power
    expression: sum("product:pv_inverter", "active_power")
`,
}

func writeSite(t testing.TB, fs files, changes files) string {
	t.Helper()
	dir := t.TempDir()
	all := files{}
	for k, v := range fs {
		all[k] = v
	}
	for k, v := range changes {
		if v == "" {
			delete(all, k)
			continue
		}
		all[k] = v
	}
	for name, content := range all {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func load(t testing.TB, changes files) (*Model, error) {
	t.Helper()
	dir := writeSite(t, baseSite, changes)
	chans, err := config.Load(dir)
	if err != nil {
		t.Fatalf("channels: %v", err)
	}
	return Load(dir, chans)
}

func TestBaseSiteLoads(t *testing.T) {
	m, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := m.CalculationOf(1, 1)
	if c == nil || len(c.Inputs) != 2 {
		t.Fatalf("station pv_power calculation: %+v", c)
	}
	if len(m.RoutedChannels()) != 2 {
		t.Fatalf("routed channels %v, want 1/T and 1/S", m.RoutedChannels())
	}
}

func TestLoadErrors(t *testing.T) {
	calc := func(expr string) files {
		return files{"modsrv/calculations.yaml": "calculations:\n  - name: c1\n    instance: station\n    measurement: pv_power\n    expression: " + expr + "\n"}
	}
	cases := []struct {
		name    string
		changes files
		want    string // "file:line:col: message" fragment, file relative to modsrv/
	}{
		{"unknown product", files{"modsrv/instances.yaml": "instances:\n  - {id: 1, name: station, product: station}\n  - {id: 2, name: pv1, product: solar_panel}\n  - {id: 3, name: pv2, product: pv_inverter}\n"},
			`instances.yaml:3:33: instance pv1: unknown product "solar_panel"`},
		{"route to a missing channel point", files{"modsrv/instances/pv2/channel_routing.csv": "channel_id,channel_type,channel_point_id,instance_type,instance_point_id\n1,T,99,M,1\n"},
			"instances/pv2/channel_routing.csv:2:5: channel 1 (dev) has no telemetry point 99"},
		{"route to a missing channel", files{"modsrv/instances/pv2/channel_routing.csv": "channel_id,channel_type,channel_point_id,instance_type,instance_point_id\n7,T,1,M,1\n"},
			"channel_routing.csv:2:1: channel 7 does not exist"},
		{"route to a missing product point", files{"modsrv/instances/pv2/channel_routing.csv": "channel_id,channel_type,channel_point_id,instance_type,instance_point_id\n1,T,3,M,power_out\n"},
			`channel_routing.csv:2:9: product pv_inverter has no measurement "power_out"`},
		{"incompatible types", files{"modsrv/instances/pv2/channel_routing.csv": "channel_id,channel_type,channel_point_id,instance_type,instance_point_id\n1,S,1,M,1\n"},
			"measurement active_power is float but channel 1 signal point 1 (running) is digital"},
		{"measurement from a command point", files{"modsrv/instances/pv2/channel_routing.csv": "channel_id,channel_type,channel_point_id,instance_type,instance_point_id\n1,A,1,M,1\n"},
			"measurements come from telemetry (T) or signal (S) points"},
		{"routed twice", files{"modsrv/instances/pv2/channel_routing.csv": "channel_id,channel_type,channel_point_id,instance_type,instance_point_id\n1,T,3,M,1\n1,T,1,M,1\n"},
			"channel_routing.csv:3:1: measurement 1 of instance pv2 is already routed at line 2"},
		{"unknown column", files{"modsrv/instances/pv2/channel_routing.csv": "channel_id,channel_kind\n"},
			`channel_routing.csv:1:12: unknown column "channel_kind"`},
		{"folder of no instance", files{"modsrv/instances/pv9/channel_routing.csv": "channel_id,channel_type,channel_point_id,instance_type,instance_point_id\n"},
			`instances/pv9: folder of instance "pv9"`},
		{"unknown function", calc("sum2(pv1.active_power)"), "calculations.yaml:5:17: calculation c1: unknown function sum2"},
		{"syntax error", calc("pv1.active_power + * 2"), "calculations.yaml:5:36: calculation c1: unexpected token Operator"},
		{"syntax error in a quoted expression", calc(`"pv1.active_power +"`), "calculations.yaml:5:35: calculation c1: unexpected token EOF"},
		{"syntax error in a block", calc("|\n      pv1.active_power +\n        (2"), "calculations.yaml:7:11: calculation c1: unexpected token EOF"},
		{"unknown reference", calc("pv1.power_out * 2"), `calculations.yaml:5:17: calculation c1: pv1.power_out: product pv_inverter has no measurement or property "power_out"`},
		{"output routed", files{"modsrv/calculations.yaml": "calculations:\n  - {name: c1, instance: pv1, measurement: active_power, expression: '1'}\n"},
			"calculation c1: pv1.active_power is already routed from channel 1"},
		{"cycle", files{"modsrv/calculations.yaml": `calculations:
  - {name: load, instance: station, measurement: load_power, expression: station.grid_power + 1}
  - {name: grid, instance: station, measurement: grid_power, expression: station.soc * 2}
  - {name: soc, instance: station, measurement: soc, expression: station.load_power / 3}
  - {name: fine, instance: station, measurement: pv_power, expression: pv1.active_power}
`}, "calculations.yaml:2:5: calculations form a cycle: load → grid → soc → load"},
		{"self reference", calc("station.pv_power + 1"), "calculations form a cycle: c1 → c1"},
		{"unknown key", files{"modsrv/instances.yaml": "instances:\n  - {id: 1, name: station, product: station, colour: red}\n"},
			`instances.yaml:2:46: unknown key "colour"`},
		{"bad property", files{"modsrv/instances.yaml": "instances:\n  - {id: 1, name: station, product: station, properties: {rated_power: lots}}\n"},
			"instance station: property rated_power: lots is not a float"},
		{"wrong parent", files{"modsrv/instances.yaml": "instances:\n  - {id: 1, name: station, product: station}\n  - {id: 2, name: pv1, product: pv_inverter, parent: pv2}\n  - {id: 3, name: pv2, product: pv_inverter}\n"},
			"instance pv1: a pv_inverter hangs under a station, and pv2 is a pv_inverter"},
		{"bad product", files{"modsrv/products/x.yaml": "id: x\nmeasurements:\n  - {id: 1, name: a}\n  - {id: 1, name: b}\nactions:\n  - {id: 1, name: go, type: bool, max: 3}\n"},
			"products/x.yaml:4:10: measurement id 1 is used twice in product x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(t, c.changes)
			var le *config.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error %v, want a *config.LoadError", err)
			}
			for _, e := range le.Errors {
				rel := strings.ReplaceAll(e.Error(), filepath.Join(le.Dir, "modsrv")+string(filepath.Separator), "")
				if strings.Contains(rel, c.want) {
					return
				}
			}
			t.Fatalf("errors:\n%v\nwant one containing %q", err, c.want)
		})
	}
}

func TestSiteProductOverridesBuiltIn(t *testing.T) {
	m, err := load(t, files{
		"modsrv/products/meter.yaml":               "id: meter\nname: My meter\nmeasurements:\n  - {id: 1, name: power}\n",
		"modsrv/instances.yaml":                    "instances:\n  - {id: 1, name: m1, product: meter}\n",
		"modsrv/calculations.yaml":                 "",
		"modsrv/instances/pv1/channel_routing.csv": "",
		"modsrv/instances/pv2/channel_routing.csv": "",
	})
	if err != nil {
		t.Fatal(err)
	}
	if p := m.Products["meter"]; p.BuiltIn || p.Name != "My meter" || len(p.Measurements) != 1 {
		t.Fatalf("meter: %+v", p)
	}
	if !m.Products["station"].BuiltIn {
		t.Fatal("station is not the built-in product")
	}
}

func TestDisabledChannelIsReported(t *testing.T) {
	m, err := load(t, files{"comsrv/channels.yaml": "channels:\n  - {id: 1, name: dev, protocol: virtual, enabled: false}\n"})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range m.Report.Warnings {
		found = found || strings.Contains(w, "pv1/channel_routing.csv:2:1: channel 1 (dev) is disabled: measurement active_power of pv1")
	}
	if !found || len(m.Report.UnroutedChannelPoints) != 0 {
		t.Fatalf("report: %+v", m.Report)
	}
}

func TestSiteWithoutModsrvFolder(t *testing.T) {
	dir := writeSite(t, files{"site.yaml": "site: {id: t, name: T}\n"}, nil)
	m, err := Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Products) != 10 || len(m.Instances) != 0 {
		t.Fatal(m.Summary())
	}
}

func TestSelectors(t *testing.T) {
	cases := []struct{ sel, want string }{
		{`sum("parent:station product:pv_inverter", "active_power")`, ""},
		{`sum("name:pv1,pv2", "active_power")`, ""},
		{`sum("*", "active_power")`, ""},
		{`sum("product:nope", "active_power")`, `unknown product "nope"`},
		{`sum("parent:pv1", "active_power")`, `no instance matching "parent:pv1"`},
		{`sum("colour:red", "active_power")`, `selector term "colour:red"`},
	}
	for _, c := range cases {
		_, err := load(t, files{"modsrv/calculations.yaml": "calculations:\n  - name: c1\n    instance: station\n    measurement: pv_power\n    expression: '" + c.sel + "'\n"})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.sel, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want %q", c.sel, err, c.want)
		}
	}
}
