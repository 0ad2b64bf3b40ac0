package config

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goodSite is a complete, valid site folder: a Modbus channel with all four tables
// and their mappings, and a virtual channel whose mapping folder must be ignored.
// Keys are paths under the site folder.
var goodSite = map[string]string{
	"site.yaml": `# demo
site: {id: demo-site, name: Demo site}
redis:
  url: redis://127.0.0.1:6380/1
listen:
  comsrv: "127.0.0.1:6001"
  apigateway: ":6005"
`,
	"comsrv/channels.yaml": `channels:
  - id: 1
    name: pcs1
    description: "变流器 #1"
    protocol: modbus_tcp
    parameters: {host: 127.0.0.1, port: 502, poll_interval_ms: 1000}
  - id: 2
    name: calc
    protocol: virtual
    enabled: false
`,
	// BOM, shuffled and upper-case header, comments, blank and empty-field lines.
	"comsrv/1/telemetry.csv": "\ufeff Signal_Name , point_id,scale,offset,unit,reverse,data_type,description\n" +
		"# measurements\n" +
		"voltage,1,0.1,0,V,0,float,\"DC bus, main\"\n" +
		"\n" +
		",,,,,,,\n" +
		"current,2,,,A,,int16,\n" +
		"power,3,1,-5,kW,no,float32,有功功率\n",
	"comsrv/1/signal.csv": "point_id,signal_name,reverse,data_type\n" +
		"1,running,0,bool\n" +
		"2,fault,yes,bool\n",
	"comsrv/1/control.csv": "point_id,signal_name,control_type,on_value,off_value,pulse_duration_ms\n" +
		"1,start,pulse,1,0,500\n" +
		"2,enable,latching,,,\n",
	"comsrv/1/adjustment.csv": "point_id,signal_name,scale,unit,data_type,min_value,max_value,step\n" +
		"1,power_setpoint,0.1,kW,float,-100,100,0.5\n" +
		"2,mode,1,,uint16,,,\n",
	"comsrv/1/mapping/telemetry_mapping.csv": "point_id,slave_id,function_code,register_address,data_type,byte_order,bit_position\n" +
		"1,1,3,100,uint16,,\n" +
		"2,1,4,101,int16,BA,\n" +
		"3,1,3,102,float64,CDAB,\n",
	"comsrv/1/mapping/signal_mapping.csv": "point_id,slave_id,function_code,register_address,data_type,bit_position\n" +
		"1,1,2,0,bool,\n" +
		"2,1,3,200,bool,15\n",
	"comsrv/1/mapping/control_mapping.csv": "point_id,slave_id,function_code,register_address,data_type\n" +
		"1,1,5,10,bool\n" +
		"2,0,16,300,uint16\n",
	"comsrv/1/mapping/adjustment_mapping.csv": "point_id,slave_id,function_code,register_address,data_type,byte_order\n" +
		"1,1,16,400,float32,DCBA\n" +
		"2,1,6,402,uint16,\n",
	// Not Modbus: not parsed (later work adds IEC 104 / CAN mappings).
	"comsrv/2/mapping/telemetry_mapping.csv": "not,a,modbus,table\n\"broken",
	"comsrv/2/telemetry.csv":                 "point_id,signal_name\n7,total_power\n",
}

// writeSite writes files into <tmp>/config and makes <tmp> the working directory,
// so errors name files as "config/comsrv/1/telemetry.csv", as an operator sees them.
// A value of "" deletes the file from the set.
func writeSite(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		if content == "" {
			continue
		}
		path := filepath.Join(root, "config", filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(root)
	return "config"
}

// withFiles is goodSite with some files replaced ("" removes one).
func withFiles(changes map[string]string) map[string]string {
	files := maps.Clone(goodSite)
	maps.Copy(files, changes)
	return files
}

// loadErrors loads dir and returns the error lines; it fails the test when Load
// succeeds or returns something other than a *LoadError.
func loadErrors(t *testing.T, dir string) []string {
	t.Helper()
	cfg, err := Load(dir)
	if err == nil {
		t.Fatalf("Load succeeded (%d channels); want errors", len(cfg.Channels))
	}
	if cfg != nil {
		t.Errorf("Load returned a Config along with the error")
	}
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("error is %T, want *LoadError: %v", err, err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(le.Errors) {
		t.Errorf("Error() has %d lines for %d errors", len(lines), len(le.Errors))
	}
	return lines
}
