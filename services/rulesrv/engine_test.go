package rulesrv_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/testharness"
)

func withRule(id, src string) files {
	return merge(virtualSite, files{"rulesrv/rules/" + id + ".yaml": src})
}

// A condition that stays true fires once (edge); it fires again only after it
// was false in between.
func TestEdgeTriggerFiresOnce(t *testing.T) {
	s := newStack(t, withRule("peak", `id: peak
condition: meter.active_power > 100
actions:
  - command: {channel: 1, type: A, point: 1, value: 30}
    wait: false
`))
	s.startRulesrv()
	for _, v := range []float64{150, 160, 170, 180} {
		s.setInst(meter, point.Good, mGrid, v)
	}
	s.sync()
	if got := s.commands(1); len(got) != 1 || got[0] != "1=30" {
		t.Fatalf("commands after 4 values above the limit: %v, want one 1=30", got)
	}
	ex := s.exec("peak")
	if ex["result"] != "active" && ex["result"] != "fired" {
		t.Fatalf("exec %v", ex)
	}
	s.setInst(meter, point.Good, mGrid, 50) // false: re-armed
	s.setInst(meter, point.Good, mGrid, 120)
	s.waitCommands(1, 2)
	s.sync()
	if got := s.commands(1); len(got) != 2 {
		t.Fatalf("commands after re-arming: %v, want 2", got)
	}
}

// level: true fires on every evaluation while the condition holds.
func TestLevelTriggerRefires(t *testing.T) {
	s := newStack(t, withRule("lvl", `id: lvl
condition: meter.active_power > 100
level: true
actions:
  - command: {channel: 1, type: A, point: 1, value: "meter.active_power - 100"}
    wait: false
`))
	s.startRulesrv()
	for _, v := range []float64{110, 120, 130} {
		s.setInst(meter, point.Good, mGrid, v)
	}
	got := s.waitCommands(1, 3)
	if strings.Join(got, " ") != "1=10 1=20 1=30" {
		t.Fatalf("commands %v, want the value computed at each change", got)
	}
}

// A condition flapping inside its hysteresis band fires once; leaving the band
// re-arms (running on_reset) and the next crossing fires again.
func TestHysteresisBandFiresOnce(t *testing.T) {
	s := newStack(t, withRule("socp", `id: socp
threshold: {value: bat.soc, below: 20, band: 5}
actions:
  - command: {channel: 1, type: A, point: 1, value: 0}
    wait: false
on_reset:
  - command: {channel: 1, type: A, point: 2, value: 1}
    wait: false
`))
	s.startRulesrv()
	for _, v := range []float64{30, 19, 21, 18, 24, 19.5, 22} {
		s.setInst(bat, point.Good, mSOC, v)
	}
	s.sync()
	if got := s.commands(1); len(got) != 1 || got[0] != "1=0" {
		t.Fatalf("commands while flapping inside the band: %v, want one 1=0", got)
	}
	s.setInst(bat, point.Good, mSOC, 26) // above 20 + 5: re-armed
	s.waitCommands(1, 2)
	s.setInst(bat, point.Good, mSOC, 15)
	got := s.waitCommands(1, 3)
	if strings.Join(got, " ") != "1=0 2=1 1=0" {
		t.Fatalf("commands %v, want fire, reset, fire", got)
	}
	if n := len(s.events("socp", "reset")); n != 1 {
		t.Fatalf("%d reset events, want 1", n)
	}
}

// for: the condition must hold that long; an interruption restarts the hold.
func TestForHoldsBeforeFiring(t *testing.T) {
	const hold = 800 * time.Millisecond
	s := newStack(t, withRule("held", `id: held
condition: meter.active_power > 100
for: 800ms
actions:
  - command: {channel: 1, type: A, point: 1, value: 5}
    wait: false
`))
	s.startRulesrv()

	// Interrupted: true, then false before the hold ends: nothing fires.
	start := time.Now()
	s.setInst(meter, point.Good, mGrid, 150)
	s.setInst(meter, point.Good, mGrid, 50)
	testharness.WaitFor(t, 10*time.Second, "the hold to pass", func() bool { return time.Since(start) > 2*hold })
	s.sync()
	if got := s.commands(1); len(got) != 0 {
		t.Fatalf("an interrupted hold fired: %v", got)
	}

	// Held: fires once, no sooner than the hold.
	start = time.Now()
	s.setInst(meter, point.Good, mGrid, 150)
	s.sync()
	if got := s.commands(1); len(got) != 0 && time.Since(start) < hold {
		t.Fatalf("fired before the hold: %v", got)
	}
	if r := s.exec("held")["result"]; r != "pending" && time.Since(start) < hold {
		t.Fatalf("result during the hold %q, want pending", r)
	}
	s.waitCommands(1, 1)
	if el := time.Since(start); el < hold {
		t.Fatalf("fired after %s, before the %s hold", el, hold)
	}
	// The execution record is written once the actions ran: it may land just
	// after the command the test saw.
	testharness.WaitFor(t, 5*time.Second, "the execution path to show the hold", func() bool {
		return strings.Contains(s.exec("held")["path"], "held for 800ms")
	})
}

// A rule whose input is missing, stale or not good does not fire and records why.
func TestInputSafety(t *testing.T) {
	s := newStack(t, withRule("both", `id: both
condition: meter.active_power > 100 and bat.soc > 50
max_age: 1h
actions:
  - command: {channel: 1, type: A, point: 1, value: 40}
    wait: false
`))
	s.startRulesrv()
	s.setInst(meter, point.Good, mGrid, 150)
	s.sync()
	ex := s.exec("both")
	if ex["result"] != "blocked" || !strings.Contains(ex["error"], "bat.soc has no value") {
		t.Fatalf("missing input: exec %v", ex)
	}
	var vars map[string]map[string]any
	if err := json.Unmarshal([]byte(ex["variables"]), &vars); err != nil || vars["bat.soc"]["quality"] != "missing" || vars["meter.active_power"]["value"] != 150.0 {
		t.Fatalf("variables %s (%v)", ex["variables"], err)
	}

	s.setInst(bat, point.Stale, mSOC, 80)
	s.sync()
	if ex := s.exec("both"); ex["result"] != "blocked" || !strings.Contains(ex["error"], "bat.soc is stale") {
		t.Fatalf("stale input: exec %v", ex)
	}
	s.setInst(bat, point.CommLost, mSOC, 80)
	s.sync()
	if ex := s.exec("both"); !strings.Contains(ex["error"], "comm_lost") {
		t.Fatalf("comm_lost input: exec %v", ex)
	}
	if got := s.commands(1); len(got) != 0 {
		t.Fatalf("a blocked rule commanded %v", got)
	}
	if n := len(s.events("both", "blocked")); n < 2 {
		t.Fatalf("%d blocked events, want one per reason", n)
	}
	s.setInst(bat, point.Good, mSOC, 80)
	s.waitCommands(1, 1)
}

// Two rules writing the same point at the same moment: the higher priority wins,
// the loser's write is skipped and recorded.
func TestPriorityConflict(t *testing.T) {
	s := newStack(t, merge(virtualSite, files{
		"rulesrv/rules/high.yaml": "id: high\npriority: 10\ncondition: meter.active_power > 100\nactions:\n  - command: {channel: 1, type: A, point: 1, value: 11}\n    wait: false\n",
		"rulesrv/rules/low.yaml":  "id: low\npriority: 1\ncondition: meter.active_power > 90\nactions:\n  - command: {channel: 1, type: A, point: 1, value: 22}\n    wait: false\n",
	}))
	s.startRulesrv()
	s.setInst(meter, point.Good, mGrid, 150)
	s.waitCommands(1, 1)
	testharness.Eventually(t, 20*time.Second, func() error {
		out := s.exec("low")["outcome"]
		if !strings.Contains(out, "skipped") || !strings.Contains(out, "conflict lost: rule high") {
			return fmt.Errorf("low's outcome %s", out)
		}
		return nil
	})
	s.sync()
	if got := s.commands(1); len(got) != 1 || got[0] != "1=11" {
		t.Fatalf("commands %v, want only the high-priority 1=11", got)
	}
}

// A cooldown holds back a second firing and fires once it has passed, if the
// condition still holds.
func TestCooldown(t *testing.T) {
	s := newStack(t, withRule("cool", `id: cool
condition: meter.active_power > 100
cooldown: 1s
actions:
  - command: {channel: 1, type: A, point: 1, value: 1}
    wait: false
`))
	s.startRulesrv()
	s.setInst(meter, point.Good, mGrid, 150)
	s.waitCommands(1, 1)
	first := time.Now()
	s.setInst(meter, point.Good, mGrid, 50)
	s.setInst(meter, point.Good, mGrid, 150)
	s.sync()
	if r := s.exec("cool")["result"]; r != "cooldown" && time.Since(first) < time.Second {
		t.Fatalf("result %q within the cooldown", r)
	}
	s.waitCommands(1, 2)
	var fired []int64
	testharness.Eventually(t, 20*time.Second, func() error {
		fired = fired[:0]
		for _, ev := range s.events("cool", "fired") {
			var ts int64
			fmt.Sscan(fmt.Sprint(ev["ts"]), &ts)
			fired = append(fired, ts)
		}
		if len(fired) != 2 {
			return fmt.Errorf("fired events at %v", fired)
		}
		return nil
	})
	if d := fired[1] - fired[0]; d < 1000 {
		t.Fatalf("second firing %d ms after the first, within the 1s cooldown", d)
	}
}

// A cron rule fires at its times (seconds field).
func TestCronFires(t *testing.T) {
	s := newStack(t, withRule("tick", `id: tick
trigger: {cron: "* * * * * *"}
actions:
  - virtual: {channel: 1, type: A, point: 2, value: 7}
    wait: false
`))
	s.startRulesrv()
	got := s.waitCommands(1, 2)
	if got[0] != "2=7" {
		t.Fatalf("commands %v", got)
	}
}

// An edge rule that fired does not fire again after a restart while its
// condition still holds: its state is kept in rule:{id}:exec.
func TestRestartKeepsEdgeState(t *testing.T) {
	s := newStack(t, withRule("peak", `id: peak
condition: meter.active_power > 100
actions:
  - command: {channel: 1, type: A, point: 1, value: 30}
    wait: false
`))
	s.startRulesrv()
	s.setInst(meter, point.Good, mGrid, 150)
	s.waitCommands(1, 1)
	testharness.Eventually(t, 20*time.Second, func() error {
		if !strings.Contains(s.exec("peak")["state"], `"active":true`) {
			return fmt.Errorf("state %s", s.exec("peak")["state"])
		}
		return nil
	})
	s.stop()
	s.startRulesrv()
	s.setInst(meter, point.Good, mGrid, 160)
	s.sync()
	if got := s.commands(1); len(got) != 1 {
		t.Fatalf("commands after a restart with the condition still true: %v", got)
	}
	s.setInst(meter, point.Good, mGrid, 50)
	s.setInst(meter, point.Good, mGrid, 170)
	s.waitCommands(1, 2)
}

// reset_for: a reset that holds only for a moment (one reading ahead of another)
// does not re-arm the rule; one that holds does, no sooner than the hold.
func TestResetForHoldsBeforeReArming(t *testing.T) {
	const hold = 800 * time.Millisecond
	s := newStack(t, withRule("shave", `id: shave
condition: meter.active_power > 100
reset: meter.active_power < 90
reset_for: 800ms
actions:
  - command: {channel: 1, type: A, point: 1, value: 5}
    wait: false
on_reset:
  - command: {channel: 1, type: A, point: 1, value: 0}
    wait: false
`))
	s.startRulesrv()
	s.setInst(meter, point.Good, mGrid, 150)
	s.waitCommands(1, 1)

	// A dip below the reset and back: no re-arm, no on_reset.
	start := time.Now()
	s.setInst(meter, point.Good, mGrid, 80)
	s.setInst(meter, point.Good, mGrid, 95)
	testharness.WaitFor(t, 10*time.Second, "the reset hold to pass", func() bool { return time.Since(start) > 2*hold })
	s.sync()
	if got := s.commands(1); len(got) != 1 {
		t.Fatalf("a momentary reset re-armed the rule: commands %v", got)
	}

	// A reset that holds re-arms once the hold is over.
	start = time.Now()
	s.setInst(meter, point.Good, mGrid, 80)
	got := s.waitCommands(1, 2)
	if el := time.Since(start); el < hold {
		t.Fatalf("re-armed after %s, before the %s hold", el, hold)
	}
	if strings.Join(got, " ") != "1=5 1=0" {
		t.Fatalf("commands %v, want the firing then on_reset", got)
	}
	if n := len(s.events("shave", "reset")); n != 1 {
		t.Fatalf("%d reset events, want 1", n)
	}
}
