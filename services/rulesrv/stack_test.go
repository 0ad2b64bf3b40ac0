package rulesrv_test

import (
	"context"
	"fmt"
	"math"
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

// startPlant runs voltsim (its clock at noon, running, the default site load),
// comsrv and modsrv.
func (s *stack) startPlant(profiles ...voltsim.ProfileOverride) *voltsim.Sim {
	s.T.Helper()
	return s.startPlantWith(voltsim.Options{Profiles: profiles})
}

// startPlantWith is startPlant with simulator options (SiteLoad, Profiles); the
// seed and the noon start are set here.
func (s *stack) startPlantWith(opts voltsim.Options) *voltsim.Sim {
	s.T.Helper()
	noon := time.Now()
	opts.Start = time.Date(noon.Year(), noon.Month(), noon.Day(), 12, 0, 0, 0, time.Local)
	opts.Seed = 1
	s.StartDevicesWith(opts)
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

// The signs of the plant (tools/voltsim, the demo point tables): PCS power and
// setpoint positive = discharge, grid meter = load − PV − battery discharge,
// positive = import. Channel points: PV power 1:T1, PV limit 1:A1 (% of rated),
// PCS power 2:T1, setpoint 2:A1, SOC 2:T101, grid power 3:T5.

// samples collects n successive readings of an instance measurement, each
// different from the one before (a new poll of the noisy plant); the first value
// seen is skipped, as it may predate what the caller waited for.
func (s *stack) samples(inst uint32, m string, n int) []float64 {
	s.T.Helper()
	var out []float64
	var last float64
	seen := false
	testharness.Eventually(s.T, 60*time.Second, func() error {
		v, ok := s.instValue(inst, m)
		if ok && (!seen || v != last) {
			if seen {
				out = append(out, v)
			}
			last, seen = v, true
		}
		if len(out) < n {
			return fmt.Errorf("inst %d measurement %s: %d of %d new readings", inst, m, len(out), n)
		}
		return nil
	})
	return out
}

// settle waits until the last n readings of an instance measurement (as
// samples collects them) satisfy ok, and returns them: a control loop may take a
// few rounds to settle.
func (s *stack) settle(inst uint32, m string, n int, what string, ok func([]float64) bool) []float64 {
	s.T.Helper()
	var win []float64
	var last float64
	seen := false
	testharness.Eventually(s.T, 60*time.Second, func() error {
		v, have := s.instValue(inst, m)
		if have && (!seen || v != last) {
			if seen {
				win = append(win, v)
				if len(win) > n {
					win = win[1:]
				}
			}
			last, seen = v, true
		}
		if len(win) < n || !ok(win) {
			return fmt.Errorf("inst %d measurement %s: last readings %v, want %s", inst, m, win, what)
		}
		return nil
	})
	return win
}

func mean(vs []float64) float64 {
	var sum float64
	for _, v := range vs {
		sum += v
	}
	return sum / float64(len(vs))
}

// simValue reads a device value.
func simValue(t *testing.T, sim *voltsim.Sim, ch uint32, typ point.Type, id point.ID) float64 {
	t.Helper()
	v, err := sim.Value(ch, typ, id)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// hours is a duration of h hours, none if h is negative (the simulation clock
// only moves forward).
func hours(h float64) time.Duration { return time.Duration(max(h, 0) * float64(time.Hour)) }

// Peak shaving: at noon a 200 kW-peak site (~194 kW) with 100 kW of PV imports
// ~94 kW, above the rule's 80 kW limit. Once the rule is enabled the battery
// discharges, grid import falls below the limit (to ~75 kW: the rule keeps a
// 5 kW margin) and the state of charge goes down.
func TestPeakShavingOnPlant(t *testing.T) {
	s := newStack(t, demoSite(t))
	sim := s.startPlantWith(voltsim.Options{SiteLoad: 200})
	s.startRulesrv()
	before := mean(s.samples(demoGrid, "5", 5))
	if before < 85 {
		t.Fatalf("grid import before peak shaving %.1f kW, want ~94 kW (above the 80 kW limit)", before)
	}

	s.enable("peak_shaving")
	sp := s.waitSim(sim, 2, point.Adjustment, 1, "a discharge setpoint of about 19 kW", func(v float64) bool { return v > 5 && v < 40 })
	s.waitInst(demoPCS, "1", "the PCS discharging", func(v float64) bool { return v > 5 })
	// The loop takes a round or two to settle: wait until ten successive readings
	// average below the limit.
	after := s.settle(demoGrid, "5", 10, "a mean import below the 80 kW limit (~75)", func(w []float64) bool {
		m := mean(w)
		return m < 80 && m > 60
	})
	if m := mean(after); m > before-10 {
		t.Fatalf("grid import %.1f kW with peak shaving, %.1f kW before: not reduced", m, before)
	}
	// Discharging empties the battery: half an hour more on the simulation clock.
	soc := simValue(t, sim, 2, point.Telemetry, 101)
	sim.Step(30 * time.Minute)
	if now := simValue(t, sim, 2, point.Telemetry, 101); now >= soc-2 {
		t.Fatalf("SOC %.2f %% → %.2f %% after 30 min of peak shaving, want it falling (~5 %%)", soc, now)
	}
	if ex := s.exec("peak_shaving"); !strings.Contains(ex["outcome"], `"status":"ok"`) {
		t.Fatalf("outcome %s (setpoint %v)", ex["outcome"], sp)
	}
}

// SOC protection on a small battery (3 kWh, so 40 kW moves the SOC by ~0.37 %/s):
// a discharge from 21 % runs the SOC under the 20 % floor; the rule stops it and
// the SOC stops falling. Charging back into the 20–25 % band does not re-arm the
// rule; above 25 % it re-arms, a discharge is allowed again and is stopped again
// at the floor.
func TestSOCProtectionOnPlant(t *testing.T) {
	s := newStack(t, demoSite(t))
	sim := s.startPlant(voltsim.ProfileOverride{Channel: 2, Type: "T", Point: 101, Profile: "soc", Capacity: 3, Value: fixed(21)})
	s.startRulesrv()
	s.waitInst(demoBat, "1", "the SOC of 21 %", func(v float64) bool { return v == 21 })
	s.enable("soc_protection")

	s.setpoint(40) // an operator discharges at 40 kW
	s.waitSim(sim, 2, point.Adjustment, 1, "the discharge stopped (setpoint 0)", func(v float64) bool { return v == 0 })
	testharness.Eventually(t, 20*time.Second, func() error {
		if len(s.events("soc_protection", "event")) == 0 {
			return fmt.Errorf("no soc_low event")
		}
		return nil
	})
	s.waitSim(sim, 2, point.Telemetry, 1, "the PCS idle", func(v float64) bool { return v == 0 })
	floor := simValue(t, sim, 2, point.Telemetry, 101)
	if floor >= 20 || floor < 10 {
		t.Fatalf("SOC %.2f %% when the discharge stopped, want just below the 20 %% floor", floor)
	}
	// The SOC stops falling: an hour on the simulation clock changes nothing.
	sim.Step(time.Hour)
	if now := simValue(t, sim, 2, point.Telemetry, 101); now != floor {
		t.Fatalf("SOC %.3f %% an hour after the stop, was %.3f %%: still discharging", now, floor)
	}

	// Charging is allowed below the floor: 3 kW (~0.03 %/s in real time); the
	// simulation clock is stepped to bring the SOC into the band, to ~22.5 %.
	s.setpoint(-3)
	sim.Step(hours((22.5 - simValue(t, sim, 2, point.Telemetry, 101)) / 100))
	testharness.Eventually(t, 20*time.Second, func() error {
		var ev struct {
			Result string                    `json:"result"`
			Inputs map[string]map[string]any `json:"inputs"`
		}
		s.call("POST", "/rules/soc_protection/dry-run", "", &ev)
		soc, _ := ev.Inputs["bat1.soc"]["value"].(float64)
		if soc <= 21 || soc >= 25 {
			return fmt.Errorf("dry run sees the SOC at %v, want inside the 20–25 %% band", ev.Inputs["bat1.soc"])
		}
		if ev.Result != "active" {
			t.Fatalf("inside the band: dry run %+v, want active (no reset)", ev)
		}
		return nil
	})
	if n := len(s.events("soc_protection", "reset")); n != 0 {
		t.Fatalf("reset inside the band (%d)", n)
	}
	// Above 25 %: re-armed.
	sim.Step(hours((27.5 - simValue(t, sim, 2, point.Telemetry, 101)) / 100))
	testharness.Eventually(t, 20*time.Second, func() error {
		if len(s.events("soc_protection", "reset")) != 1 {
			return fmt.Errorf("no reset above 25 %%")
		}
		return nil
	})

	// A discharge is allowed again, and stopped again at the floor.
	s.setpoint(40)
	s.waitInst(demoPCS, "1", "discharging at 40 kW above the band", func(v float64) bool { return v == 40 })
	if now := simValue(t, sim, 2, point.Adjustment, 1); now != 40 {
		t.Fatalf("setpoint %v above 25 %%, want the operator's 40 kW", now)
	}
	sim.Step(hours((simValue(t, sim, 2, point.Telemetry, 101) - 21) / (40.0 / 3 * 100))) // to ~21 %
	s.waitSim(sim, 2, point.Adjustment, 1, "the discharge stopped again (setpoint 0)", func(v float64) bool { return v == 0 })
	testharness.Eventually(t, 20*time.Second, func() error {
		if n := len(s.events("soc_protection", "event")); n < 2 {
			return fmt.Errorf("%d soc_low events, want a second one after re-arming", n)
		}
		return nil
	})
	floor = s.waitSim(sim, 2, point.Telemetry, 101, "the SOC held below the floor", func(v float64) bool { return v < 20 && v > 10 })
	sim.Step(time.Hour)
	if now := simValue(t, sim, 2, point.Telemetry, 101); now != floor {
		t.Fatalf("SOC %.3f %% an hour after the second stop, was %.3f %%", now, floor)
	}
}

// Time of use: with the rule clock in the evening window (17:30) the battery
// discharges at 50 kW and its SOC falls; in the night window (02:00) it charges
// at 50 kW and its SOC rises. The other window's rule stays idle.
func TestTimeOfUseOnPlant(t *testing.T) {
	for _, c := range []struct {
		name      string
		hour      int
		rule      string
		other     string
		setpoint  float64
		socChange float64 // in 30 min at 50 kW into 200 kWh
	}{
		{"discharge at 17:30", 17, "tou_discharge", "tou_charge", 50, -12.5},
		{"charge at 02:00", 2, "tou_charge", "tou_discharge", -50, +12.5},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newStack(t, demoSite(t))
			sim := s.startPlant()
			n := time.Now()
			offset := time.Date(n.Year(), n.Month(), n.Day(), c.hour, 30, 0, 0, time.Local).Sub(n)
			s.now = func() time.Time { return time.Now().Add(offset) }
			s.startRulesrv()
			s.waitInst(demoBat, "1", "the SOC read (50 %)", func(v float64) bool { return v == 50 })
			grid := mean(s.samples(demoGrid, "5", 3))

			s.enable(c.rule)
			s.waitSim(sim, 2, point.Adjustment, 1, fmt.Sprintf("a setpoint of %v kW", c.setpoint), func(v float64) bool { return v == c.setpoint })
			s.waitInst(demoPCS, "1", fmt.Sprintf("the PCS running at %v kW", c.setpoint), func(v float64) bool { return v == c.setpoint })
			// The grid sees it: discharging lowers the import, charging raises it.
			s.waitInst(demoGrid, "5", "the grid power moved by the battery's power", func(v float64) bool {
				return math.Abs(v-(grid-c.setpoint)) < 10
			})
			soc := simValue(t, sim, 2, point.Telemetry, 101)
			sim.Step(30 * time.Minute)
			if now := simValue(t, sim, 2, point.Telemetry, 101); math.Abs(now-soc-c.socChange) > 0.5 {
				t.Fatalf("SOC %.2f %% → %.2f %% in 30 min at %v kW, want a change of %+.1f %%", soc, now, c.setpoint, c.socChange)
			}
			var ev struct{ Result string }
			s.call("POST", "/rules/"+c.other+"/dry-run", "", &ev)
			if ev.Result != "disabled" && ev.Result != "idle" {
				t.Fatalf("%s at %02d:30: %q", c.other, c.hour, ev.Result)
			}
		})
	}
}

// Zero export: at noon 100 kW of PV against a 40 kW-peak site (~39 kW) exports
// ~61 kW. The rule limits the inverter to what the site consumes (~39 % of its
// 100 kW) and the export goes to about zero.
func TestZeroExportOnPlant(t *testing.T) {
	s := newStack(t, demoSite(t))
	sim := s.startPlantWith(voltsim.Options{SiteLoad: 40})
	s.startRulesrv()
	if before := mean(s.samples(demoGrid, "5", 5)); before > -50 {
		t.Fatalf("grid power before zero export %.1f kW, want an export of ~61 kW (negative)", before)
	}
	s.enable("zero_export")
	lim := s.waitSim(sim, 1, point.Adjustment, 1, "the PV limit near 39 %", func(v float64) bool { return v > 30 && v < 50 })
	s.waitSim(sim, 1, point.Telemetry, 1, "the PV curtailed to its limit", func(v float64) bool { return v < 50 })
	s.waitInst(demoGrid, "5", "the export gone", func(v float64) bool { return v > -3 })
	after := s.samples(demoGrid, "5", 10)
	for _, v := range after {
		if math.Abs(v) > 5 {
			t.Fatalf("grid power after zero export %v, want each reading within ±5 kW of zero", after)
		}
	}
	if m := mean(after); math.Abs(m) > 3 {
		t.Fatalf("grid power after zero export: mean %.1f kW of %v, want about zero", m, after)
	}
	pv := simValue(t, sim, 1, point.Telemetry, 1)
	lim = simValue(t, sim, 1, point.Adjustment, 1)
	if math.Abs(pv-lim) > 0.5 {
		t.Fatalf("PV %.1f kW with a %.1f %% limit of 100 kW", pv, lim)
	}
	if ex := s.exec("zero_export"); !strings.Contains(ex["outcome"], `"status":"ok"`) {
		t.Fatalf("outcome %s", ex["outcome"])
	}
	t.Logf("PV limited to %.1f %%, grid %v", lim, after)
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
