package comsrv_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/testharness"
)

func TestVirtualChannelGeneratesAndHoldsCommandedValues(t *testing.T) {
	s := startStack(t, files{
		"comsrv/channels.yaml": `channels:
  - id: 5
    name: virt
    protocol: virtual
    enabled: true
    parameters:
      poll_interval_ms: 50
      generators:
        - {type: T, point: 1, kind: constant, value: 42.5}
        - {type: YC, point: 2, kind: ramp, value: 0, amplitude: 100, period_ms: 2000}
        - {type: S, point: 1, kind: square, value: 0, amplitude: 1, period_ms: 400}
`,
		"comsrv/5/telemetry.csv":  pointHeader + "1,const,1,0,,0,float,\n2,ramp,1,0,,0,float,\n",
		"comsrv/5/signal.csv":     pointHeader + "1,blink,1,0,,0,bool,\n",
		"comsrv/5/adjustment.csv": "point_id,signal_name,scale,offset,unit,reverse,data_type,min_value,max_value\n1,limit,1,0,kW,0,float,0,500\n",
		"comsrv/5/control.csv":    "point_id,signal_name,scale,offset,unit,reverse,data_type\n1,island,1,0,,0,bool\n",
	})
	s.waitField(keyspace.ChannelPoints(5, point.Telemetry), "1", "42.5")

	// The ramp rises and the square wave toggles.
	ramp := func() float64 {
		v, _ := strconv.ParseFloat(s.hget(keyspace.ChannelPoints(5, point.Telemetry), "2"), 64)
		return v
	}
	first := ramp()
	testharness.WaitFor(t, 5*time.Second, "the ramp to move", func() bool { return ramp() != first })
	seen := map[string]bool{}
	testharness.WaitFor(t, 5*time.Second, "the square wave to take both values", func() bool {
		seen[s.hget(keyspace.ChannelPoints(5, point.Signal), "1")] = true
		return seen["0"] && seen["1"]
	})

	// Commands set the C and A points, limits still apply.
	if r := submit(t, s, command.Command{Channel: 5, Type: point.Adjustment, Point: 1, Value: 120}); r.Status != command.OK {
		t.Fatalf("setpoint: %s %s", r.Status, r.Error)
	}
	s.waitField(keyspace.ChannelPoints(5, point.Adjustment), "1", "120")
	if r := submit(t, s, command.Command{Channel: 5, Type: point.Control, Point: 1, Value: 1}); r.Status != command.OK {
		t.Fatalf("control: %s %s", r.Status, r.Error)
	}
	s.waitField(keyspace.ChannelPoints(5, point.Control), "1", "1")
	if r := submit(t, s, command.Command{Channel: 5, Type: point.Adjustment, Point: 1, Value: 501}); r.Status != command.Rejected {
		t.Fatalf("out of range setpoint: %s, want rejected", r.Status)
	}
}

func TestModbusAddressBaseAndRequestPause(t *testing.T) {
	s := startStack(t, files{
		"comsrv/channels.yaml": `channels:
  - {id: 1, name: onebased, protocol: modbus_tcp, enabled: true, parameters: {host: 127.0.0.1, port: {{PORT1}}, poll_interval_ms: 500, address_base: 1, max_gap: 0, request_pause_ms: 100}}
`,
		"comsrv/1/telemetry.csv":                 pointHeader + "1,a,1,0,,0,float,\n2,b,1,0,,0,float,\n3,c,1,0,,0,float,\n",
		"comsrv/1/mapping/telemetry_mapping.csv": mappingHeader + "1,1,3,1,uint16,,\n2,1,3,10,uint16,,\n3,1,3,20,uint16,,\n",
	})
	_ = s.sim.SetValue(1, point.Telemetry, 3, 33)
	s.waitField(keyspace.ChannelPoints(1, point.Telemetry), "3", "33")
	// Register numbers 1, 10 and 20 are protocol addresses 0, 9 and 19.
	for _, r := range s.sim.Requests(1)[:3] {
		if r.Address != 0 && r.Address != 9 && r.Address != 19 {
			t.Fatalf("request at address %d: address_base 1 not applied (%v)", r.Address, s.sim.Requests(1)[:3])
		}
	}
	// Three requests with a 100 ms pause between them: a poll takes at least 200 ms.
	testharness.Eventually(t, 5*time.Second, func() error {
		rtt, _ := strconv.ParseInt(s.hget(keyspace.ChannelStatus(1), "rtt_us"), 10, 64)
		if rtt < 200_000 {
			return fmt.Errorf("poll took %d µs, want ≥ 200 ms with two 100 ms pauses", rtt)
		}
		return nil
	})
}

// TestPolledSamplesCarryTheirPollCycleTime checks DESIGN §2's timestamps for polled
// channels: every value of one poll shares the poll cycle's scheduled time, and
// polls are exactly one interval apart (no jitter from when replies arrived).
func TestPolledSamplesCarryTheirPollCycleTime(t *testing.T) {
	s := startStack(t, files{
		"comsrv/channels.yaml": `channels:
  - id: 5
    name: virt
    protocol: virtual
    enabled: true
    parameters:
      poll_interval_ms: 40
      generators:
        - {type: T, point: 1, kind: ramp, value: 0, amplitude: 1000, period_ms: 100000}
        - {type: T, point: 2, kind: ramp, value: 0, amplitude: 500, period_ms: 100000}
`,
		"comsrv/5/telemetry.csv": pointHeader + "1,a,1,0,,0,float,\n2,b,1,0,,0,float,\n",
	})
	tsKey := keyspace.ChannelTimestamps(5, point.Telemetry)
	var stamps []int64
	testharness.Eventually(t, 10*time.Second, func() error {
		ts := s.rdb.HMGet(context.Background(), tsKey, "1", "2").Val()
		if ts[0] == nil || ts[1] == nil {
			return fmt.Errorf("no timestamps yet")
		}
		if ts[0] != ts[1] {
			return fmt.Errorf("the points of one poll have timestamps %v and %v", ts[0], ts[1])
		}
		v, _ := strconv.ParseInt(ts[0].(string), 10, 64)
		if len(stamps) == 0 || stamps[len(stamps)-1] != v {
			stamps = append(stamps, v)
		}
		if len(stamps) < 5 {
			return fmt.Errorf("%d poll times seen", len(stamps))
		}
		return nil
	})
	for i := 1; i < len(stamps); i++ {
		if d := stamps[i] - stamps[i-1]; d <= 0 || d%40 != 0 {
			t.Fatalf("poll times %v: %d ms apart, want a multiple of the 40 ms interval", stamps, d)
		}
	}
}
