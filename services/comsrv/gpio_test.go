package comsrv_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/testharness"
)

// TestGPIOThroughSysfsTree runs comsrv's gpio driver (sysfs backend) against the
// sysfs look-alike voltsim builds: inputs reach Redis (one active-low), commands
// drive the outputs (one active-low) and the simulated board sees them.
func TestGPIOThroughSysfsTree(t *testing.T) {
	root := filepath.Join(t.TempDir(), "sys-class-gpio")
	s := startStack(t, files{
		"comsrv/channels.yaml": `channels:
  - {id: 7, name: cabinet_io, protocol: gpio, enabled: true,
     parameters: {backend: sysfs, sysfs_root: "` + root + `", poll_interval_ms: 50}}
`,
		"comsrv/7/signal.csv":                  pointHeader + "1,door_closed,1,0,,0,bool,\n2,estop_released,1,0,,1,bool,\n",
		"comsrv/7/mapping/signal_mapping.csv":  "point_id,gpio\n1,17\n2,18\n",
		"comsrv/7/control.csv":                 pointHeader + "1,fan,1,0,,0,bool,\n2,alarm_lamp,1,0,,1,bool,\n",
		"comsrv/7/mapping/control_mapping.csv": "point_id,gpio\n1,20\n2,21\n",
	})
	s.waitField(keyspace.ChannelStatus(7), "state", "up")
	for id, v := range map[point.ID]float64{1: 1, 2: 1} {
		if err := s.sim.SetValue(7, point.Signal, id, v); err != nil {
			t.Fatal(err)
		}
		s.waitField(keyspace.ChannelPoints(7, point.Signal), itoa(id), "1")
	}
	if raw := s.hget(keyspace.ChannelRaw(7, point.Signal), "2"); raw != "0" {
		t.Errorf("active-low input raw %q, want the line level 0", raw)
	}
	level := func(gpio int) string {
		b, _ := os.ReadFile(filepath.Join(root, fmt.Sprintf("gpio%d", gpio), "value"))
		return strings.TrimSpace(string(b))
	}
	for _, c := range []struct {
		id    point.ID
		v     float64
		gpio  int
		level string
	}{{1, 1, 20, "1"}, {2, 1, 21, "0"}, {2, 0, 21, "1"}} {
		if r := submit(t, s, command.Command{Channel: 7, Type: point.Control, Point: c.id, Value: c.v}); r.Status != command.OK {
			t.Fatalf("command C%d=%v: %s (%s)", c.id, c.v, r.Status, r.Error)
		}
		if got := level(c.gpio); got != c.level {
			t.Errorf("C%d=%v: gpio%d level %s, want %s", c.id, c.v, c.gpio, got, c.level)
		}
		testharness.Eventually(t, 10*time.Second, func() error {
			if v, err := s.sim.Value(7, point.Control, c.id); err != nil || v != c.v {
				return fmt.Errorf("board sees C%d = %v (%v), want %v", c.id, v, err, c.v)
			}
			return nil
		})
		s.waitField(keyspace.ChannelPoints(7, point.Control), itoa(c.id), point.FormatValue(c.v))
	}
}
