package comsrv_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/tools/voltsim"
)

// netnsEnv marks the copy of the test binary that runs inside the namespace.
const netnsEnv = "VOLTAGE_TEST_IN_NETNS"

// inPrivateNetwork runs the calling test in a private network namespace, where the
// UDP multicast emulation of a CAN bus cannot leak to (or hear) the machine's
// network and needs no multicast route on the host: the test re-executes its own
// binary under `unshare -n` with only this test selected, and reports its outcome.
// It returns true in the copy that should run the test body.
func inPrivateNetwork(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsEnv) == "1" {
		for _, args := range [][]string{
			{"link", "set", "lo", "up", "multicast", "on"}, // einride picks an up, multicast interface
			{"route", "add", "224.0.0.0/4", "dev", "lo"},
		} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				t.Fatalf("ip %s in the test namespace: %v: %s", strings.Join(args, " "), err, out)
			}
		}
		return true
	}
	unshare := testharness.Binary(t, "unshare", "util-linux")
	testharness.Binary(t, "ip", "iproute2")
	args := []string{"-n", os.Args[0], "-test.run", "^" + t.Name() + "$", "-test.count=1"}
	if testing.Verbose() {
		args = append(args, "-test.v")
	}
	cmd := exec.Command(unshare, args...)
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the test in a private network namespace failed (it needs root or CAP_SYS_ADMIN for unshare -n): %v\n%s", err, out)
	}
	if testing.Verbose() {
		t.Logf("inside the namespace:\n%s", out)
	}
	if !strings.Contains(string(out), "PASS") {
		t.Fatalf("the namespaced test did not report PASS:\n%s", out)
	}
	return false
}

const bmsDBC = `VERSION ""

BO_ 291 BMS_Status: 8 BMS
 SG_ SOC : 0|8@1+ (0.5,0) [0|100] "%" Vector__XXX
 SG_ PackCurrent : 8|16@1- (0.1,0) [-3276.8|3276.7] "A" Vector__XXX
 SG_ PackVoltage : 31|16@0+ (0.01,0) [0|655.35] "V" Vector__XXX
 SG_ Temperature : 47|12@0- (0.1,-40) [-244.8|164.7] "degC" Vector__XXX
 SG_ Contactor : 60|1@1+ (1,0) [0|1] "" Vector__XXX

BO_ 2566844926 PCS_Command: 8 EMS
 SG_ PowerSetpoint : 7|24@0- (0.001,0) [-8388.608|8388.607] "kW" Vector__XXX
 SG_ Enable : 32|1@1+ (1,0) [0|1] "" Vector__XXX
`

// canSite is a battery on an emulated CAN bus: a mapping CSV lays out some points
// (the same layouts as the DBC), the DBC the others, by row or by signal_name.
func canSite(address string) files {
	return files{
		"comsrv/channels.yaml": `channels:
  - {id: 6, name: bms, protocol: can, enabled: true,
     parameters: {transport: udp, address: "` + address + `", bitrate: 500000, dbc_file: bms.dbc,
                  poll_interval_ms: 100, timeout_ms: 600}}
`,
		"comsrv/6/bms.dbc": bmsDBC,
		"comsrv/6/telemetry.csv": pointHeader +
			"1,soc,1,0,%,0,float,\n2,pack_current,1,0,A,0,float,\n3,pack_voltage,1,0,V,0,float,\n4,Temperature,1,0,degC,0,float,\n",
		"comsrv/6/mapping/telemetry_mapping.csv": "point_id,can_id,start_bit,bit_length,byte_order,signed,scale,offset\n" +
			"1,0x123,0,8,little_endian,0,0.5,0\n" +
			"2,291,8,16,intel,1,0.1,0\n" +
			"3,0x123,31,16,motorola,0,0.01,0\n",
		"comsrv/6/signal.csv":                 pointHeader + "1,contactor_open,1,0,,1,bool,\n",
		"comsrv/6/mapping/signal_mapping.csv": "point_id,signal\n1,BMS_Status.Contactor\n",
		"comsrv/6/adjustment.csv":             pointHeader + "1,PowerSetpoint,1,0,kW,0,float,\n",
		"comsrv/6/control.csv":                pointHeader + "1,Enable,1,0,,0,bool,\n",
	}
}

// TestCANOverEmulatedBus runs voltsim's CAN devices and comsrv's CAN driver on
// einride's UDP emulation of a bus in a private network namespace: frames carry
// little- and big-endian, signed and unsigned signals into Redis; commands go out
// as frames (one with an extended identifier) and reach the device; a device that
// falls silent turns its points stale, and they recover when it talks again.
func TestCANOverEmulatedBus(t *testing.T) {
	if !inPrivateNetwork(t) {
		return
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	_ = pc.Close()
	s := startStack(t, canSite(fmt.Sprintf("239.64.142.206:%d", port)))
	s.waitField(keyspace.ChannelStatus(6), "state", "up")

	values := map[point.ID]float64{1: 87.5, 2: -123.4, 3: 401.25, 4: -12.5}
	for id, v := range values {
		if err := s.sim.SetValue(6, point.Telemetry, id, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.sim.SetValue(6, point.Signal, 1, 1); err != nil {
		t.Fatal(err)
	}
	for id, v := range values {
		s.waitField(keyspace.ChannelPoints(6, point.Telemetry), itoa(id), point.FormatValue(v))
	}
	s.waitField(keyspace.ChannelPoints(6, point.Signal), "1", "1")
	if raw := s.hget(keyspace.ChannelRaw(6, point.Signal), "1"); raw != "0" {
		t.Errorf("reversed contactor raw = %q, want the bit, 0", raw)
	}

	for _, c := range []command.Command{
		{Channel: 6, Type: point.Adjustment, Point: 1, Value: -1234.567},
		{Channel: 6, Type: point.Control, Point: 1, Value: 1},
	} {
		if r := submit(t, s, c); r.Status != command.OK {
			t.Fatalf("command %s%d: %s (%s)", c.Type, c.Point, r.Status, r.Error)
		}
		testharness.Eventually(t, 10*time.Second, func() error {
			if v, err := s.sim.Value(6, c.Type, c.Point); err != nil || v != c.Value {
				return fmt.Errorf("device %s%d = %v (%v), want %v", c.Type, c.Point, v, err, c.Value)
			}
			return nil
		})
	}

	if err := s.sim.SetFault(6, voltsim.Fault{Mode: voltsim.FaultTimeout}); err != nil {
		t.Fatal(err)
	}
	for id := range values {
		s.waitField(keyspace.ChannelQuality(6, point.Telemetry), itoa(id), point.Stale.String())
	}
	if st := s.hget(keyspace.ChannelStatus(6), "state"); st != "up" {
		t.Errorf("a silent device is not a broken bus: state %q, want up", st)
	}
	if err := s.sim.SetFault(6, voltsim.Fault{Mode: voltsim.FaultNone}); err != nil {
		t.Fatal(err)
	}
	_ = s.sim.SetValue(6, point.Telemetry, 1, 50)
	s.waitField(keyspace.ChannelPoints(6, point.Telemetry), "1", "50")
	testharness.Eventually(t, 10*time.Second, func() error {
		if q := s.hget(keyspace.ChannelQuality(6, point.Telemetry), "4"); q != "" {
			return fmt.Errorf("quality %q after the device spoke again", q)
		}
		return nil
	})
}
