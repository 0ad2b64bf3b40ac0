package rulesrv_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/services/modsrv"
	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/tools/sitetest"
	"github.com/voltageems/voltage/tools/voltsim"
)

// The simulated site: the demo site's PV inverter (channel 1), battery (2),
// grid meter (3) and virtual site controls (10) with their model and the
// shipped rule templates, all read from the repository's config folder, with
// the devices on free ports and a 200 ms poll.
func demoSite(t testing.TB) files {
	t.Helper()
	root := filepath.Join("..", "..", "config")
	fs := files{
		"site.yaml": "site: {id: test-site, name: Test}\nredis: {url: \"{{REDIS}}\"}\n",
		"comsrv/channels.yaml": `channels:
  - {id: 1, name: pv1, description: PV inverter, protocol: modbus_tcp, parameters: {host: 127.0.0.1, port: {{PORT1}}, poll_interval_ms: 200, timeout_ms: 1000}}
  - {id: 2, name: ess1, protocol: modbus_tcp, parameters: {host: 127.0.0.1, port: {{PORT2}}, poll_interval_ms: 200, timeout_ms: 1000, max_gap: 10}}
  - {id: 3, name: grid_meter, protocol: modbus_tcp, parameters: {host: 127.0.0.1, port: {{PORT3}}, poll_interval_ms: 200, timeout_ms: 1000}}
  - id: 10
    name: site_controls
    protocol: virtual
    parameters: {poll_interval_ms: 1000}
`,
	}
	for _, sub := range []string{"comsrv/1", "comsrv/2", "comsrv/3", "comsrv/10", "modsrv", "rulesrv"} {
		err := filepath.WalkDir(filepath.Join(root, sub), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			fs[rel] = string(b)
			return nil
		})
		if err != nil {
			t.Fatalf("demo site: %v", err)
		}
	}
	return fs
}

// Instance ids of the demo site.
const (
	demoPV   = 2
	demoPCS  = 4
	demoBat  = 5
	demoGrid = 6
)

// startPlant runs voltsim (its clock at noon, running), comsrv and modsrv.
func (s *stack) startPlant(profiles ...voltsim.ProfileOverride) *voltsim.Sim {
	s.T.Helper()
	noon := time.Now()
	noon = time.Date(noon.Year(), noon.Month(), noon.Day(), 12, 0, 0, 0, time.Local)
	s.StartDevicesWith(voltsim.Options{Seed: 1, Start: noon, Profiles: profiles})
	sitetest.Run(s.T, "modsrv", "/readyz", func(ctx context.Context, bound func(net.Addr)) error {
		return modsrv.Run(ctx, modsrv.Config{Site: s.Config, ConfigDir: s.Dir, HTTPAddr: "127.0.0.1:0", Log: sitetest.Logger(s.T),
			ConsumerName: "modsrv-test", Bound: bound})
	})
	return s.Sim
}

func fixed(v float64) *float64 { return &v }

// instValue reads an instance measurement.
func (s *stack) instValue(inst uint32, m string) (float64, bool) {
	v := s.HGet(keyspace.InstanceMeasurements(inst), m)
	if v == "" {
		return 0, false
	}
	var f float64
	_, err := fmt.Sscan(v, &f)
	return f, err == nil
}

func (s *stack) waitInst(inst uint32, m, what string, ok func(float64) bool) float64 {
	s.T.Helper()
	var v float64
	testharness.Eventually(s.T, 30*time.Second, func() error {
		var have bool
		v, have = s.instValue(inst, m)
		if !have || !ok(v) {
			return fmt.Errorf("inst %d measurement %s = %v (present %v), want %s", inst, m, v, have, what)
		}
		return nil
	})
	return v
}

func (s *stack) waitSim(sim *voltsim.Sim, ch uint32, typ point.Type, id point.ID, what string, ok func(float64) bool) float64 {
	s.T.Helper()
	var v float64
	testharness.Eventually(s.T, 30*time.Second, func() error {
		var err error
		v, err = sim.Value(ch, typ, id)
		if err != nil || !ok(v) {
			return fmt.Errorf("device %d %s %d = %v (%v), want %s", ch, typ, id, v, err, what)
		}
		return nil
	})
	return v
}

func (s *stack) enable(id string) {
	s.T.Helper()
	if code, body := s.call("POST", "/rules/"+id+"/enable", "", nil); code != 200 {
		s.T.Fatalf("enable %s: %d %s", id, code, body)
	}
}

// setpoint commands the battery as an operator would, and waits for the device.
func (s *stack) setpoint(v float64) {
	s.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id, err := command.Submit(ctx, s.RDB, command.Command{Channel: 2, Type: point.Adjustment, Point: 1, Value: v, Source: "test", User: "test"})
	if err != nil {
		s.T.Fatal(err)
	}
	res, err := command.Wait(ctx, s.RDB, id)
	if err != nil || res.Status != command.OK {
		s.T.Fatalf("setpoint %v: %+v %v", v, res, err)
	}
}

// Peak shaving: the load at noon (120 kW through the simulator's PV profile,
// which its meter counts as consumption) exceeds the 80 kW limit; once the rule
// is enabled the battery discharges and grid import drops below the limit.
func TestPeakShavingOnPlant(t *testing.T) {
	s := newStack(t, demoSite(t))
	sim := s.startPlant(voltsim.ProfileOverride{Channel: 1, Type: "T", Point: 1, Profile: "pv", Rated: 120},
		voltsim.ProfileOverride{Channel: 2, Type: "T", Point: 101, Profile: "soc", Capacity: 100000, Value: fixed(60)})
	s.startRulesrv()
	s.waitInst(demoGrid, "5", "import above 80 kW before peak shaving", func(v float64) bool { return v > 100 })

	s.enable("peak_shaving")
	sp := s.waitSim(sim, 2, point.Adjustment, 1, "a discharge setpoint of about 45 kW", func(v float64) bool { return v > 35 && v < 55 })
	s.waitInst(demoGrid, "5", "import below the 80 kW limit", func(v float64) bool { return v < 80 && v > 60 })
	ex := s.exec("peak_shaving")
	if !strings.Contains(ex["outcome"], `"status":"ok"`) {
		t.Fatalf("outcome %s (setpoint %v)", ex["outcome"], sp)
	}
}

// SOC protection: below 20 % the discharge stops; inside the 20–25 % band
// nothing changes; above 25 % the rule re-arms.
func TestSOCProtectionOnPlant(t *testing.T) {
	s := newStack(t, demoSite(t))
	sim := s.startPlant()
	s.startRulesrv()
	if err := sim.SetValue(2, point.Telemetry, 101, 50); err != nil {
		t.Fatal(err)
	}
	s.setpoint(40)
	s.enable("soc_protection")
	s.waitInst(demoPCS, "1", "discharging at 40 kW", func(v float64) bool { return v == 40 })

	if err := sim.SetValue(2, point.Telemetry, 101, 15); err != nil {
		t.Fatal(err)
	}
	s.waitSim(sim, 2, point.Adjustment, 1, "the discharge stopped (0)", func(v float64) bool { return v == 0 })
	testharness.Eventually(t, 20*time.Second, func() error {
		if len(s.events("soc_protection", "event")) == 0 {
			return fmt.Errorf("no soc_low event")
		}
		return nil
	})

	// Inside the band: still active, no reset.
	if err := sim.SetValue(2, point.Telemetry, 101, 22); err != nil {
		t.Fatal(err)
	}
	testharness.Eventually(t, 20*time.Second, func() error {
		var ev struct {
			Result string                    `json:"result"`
			Inputs map[string]map[string]any `json:"inputs"`
		}
		s.call("POST", "/rules/soc_protection/dry-run", "", &ev)
		if ev.Inputs["bat1.soc"]["value"] != 22.0 {
			return fmt.Errorf("dry run sees %v", ev.Inputs["bat1.soc"])
		}
		if ev.Result != "active" {
			t.Fatalf("inside the band: dry run %+v, want active (no reset)", ev)
		}
		return nil
	})
	if n := len(s.events("soc_protection", "reset")); n != 0 {
		t.Fatalf("reset inside the band (%d)", n)
	}
	if err := sim.SetValue(2, point.Telemetry, 101, 27); err != nil {
		t.Fatal(err)
	}
	testharness.Eventually(t, 20*time.Second, func() error {
		if len(s.events("soc_protection", "reset")) != 1 {
			return fmt.Errorf("no reset above 25 %%")
		}
		return nil
	})
}

// Time of use: at 17:30 (the rule clock shifted there) the battery discharges
// at 50 kW.
func TestTimeOfUseOnPlant(t *testing.T) {
	s := newStack(t, demoSite(t))
	sim := s.startPlant(voltsim.ProfileOverride{Channel: 2, Type: "T", Point: 101, Profile: "soc", Capacity: 100000, Value: fixed(60)})
	n := time.Now()
	offset := time.Date(n.Year(), n.Month(), n.Day(), 17, 30, 0, 0, time.Local).Sub(n)
	s.now = func() time.Time { return time.Now().Add(offset) }
	s.startRulesrv()
	s.waitInst(demoBat, "1", "the SOC read", func(v float64) bool { return v > 50 })
	s.enable("tou_discharge")
	s.waitSim(sim, 2, point.Adjustment, 1, "a 50 kW discharge", func(v float64) bool { return v == 50 })
	s.waitInst(demoPCS, "1", "the PCS running at 50 kW", func(v float64) bool { return v == 50 })
	// The charging window is not open at 17:30.
	var ev struct{ Result string }
	s.call("POST", "/rules/tou_charge/dry-run", "", &ev)
	if ev.Result != "disabled" && ev.Result != "idle" {
		t.Fatalf("tou_charge at 17:30: %q", ev.Result)
	}
}

// Zero export: with the battery discharging 80 kW and 50 kW of PV, the site
// exports about 30 kW; the rule limits the inverter to what the site consumes
// (about 20 % of its 100 kW).
func TestZeroExportOnPlant(t *testing.T) {
	s := newStack(t, demoSite(t))
	sim := s.startPlant(voltsim.ProfileOverride{Channel: 1, Type: "T", Point: 1, Profile: "pv", Rated: 50},
		voltsim.ProfileOverride{Channel: 2, Type: "T", Point: 101, Profile: "soc", Capacity: 100000, Value: fixed(60)})
	s.startRulesrv()
	s.setpoint(80)
	s.waitInst(demoGrid, "5", "an export of about 30 kW", func(v float64) bool { return v < -20 })
	s.enable("zero_export")
	lim := s.waitSim(sim, 1, point.Adjustment, 1, "the PV limit near 20 %", func(v float64) bool { return v > 10 && v < 30 })
	t.Logf("PV limited to %.1f %%", lim)
}

// A rule writes a virtual point through comsrv (a command on the virtual
// channel) and its outcome is recorded.
func TestVirtualPointAction(t *testing.T) {
	s := newStack(t, merge(demoSite(t), files{"rulesrv/rules/limit.yaml": `id: limit
condition: bat1.soc > 0
actions:
  - virtual: {channel: 10, type: A, point: 1, value: "round(bat1.soc)"}
`}))
	s.startPlant(voltsim.ProfileOverride{Channel: 2, Type: "T", Point: 101, Profile: "soc", Capacity: 100000, Value: fixed(60)})
	s.startRulesrv()
	testharness.Eventually(t, 30*time.Second, func() error {
		if v := s.HGet(keyspace.ChannelPoints(10, point.Adjustment), "1"); v != "60" {
			return fmt.Errorf("comsrv:10:A 1 = %q", v)
		}
		if out := s.exec("limit")["outcome"]; !strings.Contains(out, `"status":"ok"`) {
			return fmt.Errorf("outcome %s", out)
		}
		return nil
	})
}

var _ = config.Load
