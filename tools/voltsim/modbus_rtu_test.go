package voltsim_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/tools/voltsim"
)

// rtuBusSite is one serial bus (modbus_rtu, a pseudo-terminal voltsim links at
// device) with two slaves, and one serial server (modbus_rtu_over_tcp).
func rtuBusSite(device string) map[string]string {
	return map[string]string{
		"site.yaml": "site: {id: rtu-test}\n",
		"comsrv/channels.yaml": `channels:
  - {id: 1, name: bus, protocol: modbus_rtu, parameters: {device: "` + device + `", baud_rate: 19200, parity: even}}
  - {id: 2, name: gateway, protocol: modbus_rtu_over_tcp, parameters: {host: 127.0.0.1, port: 4001}}
`,
		"comsrv/1/telemetry.csv":                  "point_id,signal_name\n1,s1_a\n2,s1_b\n3,s2_a\n",
		"comsrv/1/mapping/telemetry_mapping.csv":  mappingHeader + "1,1,3,0,uint16,,\n2,1,3,1,int16,,\n3,2,4,5,uint16,,\n",
		"comsrv/1/adjustment.csv":                 "point_id,signal_name\n1,s2_setpoint\n",
		"comsrv/1/mapping/adjustment_mapping.csv": mappingHeader + "1,2,6,10,uint16,,\n",
		"comsrv/2/telemetry.csv":                  "point_id,signal_name\n1,x\n",
		"comsrv/2/mapping/telemetry_mapping.csv":  mappingHeader + "1,1,3,0,uint16,,\n",
	}
}

// TestModbusRTUAgainstMbpoll reads and writes voltsim's simulated serial bus with
// mbpoll (libmodbus), a Modbus RTU master we did not write, through the device
// path voltsim links to its pseudo-terminal.
func TestModbusRTUAgainstMbpoll(t *testing.T) {
	mbpoll := testharness.Binary(t, "mbpoll", "mbpoll")
	device := filepath.Join(t.TempDir(), "ttyRS485")
	sim := startSim(t, writeSite(t, rtuBusSite(device)), voltsim.Options{})
	if target, err := os.Readlink(device); err != nil || !strings.HasPrefix(target, "/dev/pts/") {
		t.Fatalf("%s links to %q (%v), want a pseudo-terminal", device, target, err)
	}
	must(t, sim.SetValue(1, point.Telemetry, 1, 4321))
	must(t, sim.SetValue(1, point.Telemetry, 2, -5))
	must(t, sim.SetValue(1, point.Telemetry, 3, 777))

	run := func(args ...string) []string {
		t.Helper()
		base := []string{"-m", "rtu", "-b", "19200", "-P", "even", "-0", "-1", "-o", "1"}
		out, err := exec.Command(mbpoll, append(base, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("mbpoll %v: %v\n%s", args, err, out)
		}
		var vals []string
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && strings.HasPrefix(f[0], "[") && strings.HasSuffix(f[0], "]:") {
				vals = append(vals, f[1])
			}
		}
		return vals
	}
	if got := run("-a", "1", "-t", "4", "-r", "0", "-c", "2", device); strings.Join(got, " ") != "4321 65531" {
		t.Errorf("slave 1 holding 0..1: %q, want 4321 65531 (-5 as mbpoll shows a register)", got)
	}
	if got := run("-a", "2", "-t", "3", "-r", "5", "-c", "1", device); strings.Join(got, " ") != "777" {
		t.Errorf("slave 2 input 5: %q, want 777", got)
	}
	run("-a", "2", "-t", "4", "-r", "10", device, "99")
	if v, err := sim.Value(1, point.Adjustment, 1); err != nil || v != 99 {
		t.Errorf("slave 2 setpoint after mbpoll's write: %v, %v", v, err)
	}
	st, err := sim.ModbusBus(1)
	if err != nil || st.Requests < 3 || st.Violations != 0 || st.BadFrames != 0 {
		t.Errorf("bus stats %+v (%v)", st, err)
	}
	if _, err := sim.ModbusBus(99); err == nil {
		t.Error("bus stats of a channel that does not exist")
	}
}

// TestModbusRTUDeviceNotReplaced refuses a device path that is a real file.
func TestModbusRTUDeviceNotReplaced(t *testing.T) {
	device := filepath.Join(t.TempDir(), "ttyS0")
	must(t, os.WriteFile(device, nil, 0o644))
	_, err := voltsim.New(writeSite(t, rtuBusSite(device)), voltsim.Options{ListenOverride: "127.0.0.1"})
	if err == nil || !strings.Contains(err.Error(), "not a symbolic link") {
		t.Fatalf("error %v, want a refusal to replace %s", err, device)
	}
}
