package rulesrv_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/tools/voltsim"
)

// A remote setpoint (here from the API) on a point a rule writes with
// restore_after expires: the rule's value returns after that long.
func TestWatchdogRestoresRuleValue(t *testing.T) {
	s := newStack(t, merge(demoSite(t), files{"rulesrv/rules/reserve.yaml": `id: reserve
condition: bat1.soc > 0
actions:
  - virtual: {channel: 10, type: A, point: 2, value: 30}
    restore_after: 2s
`}))
	s.startPlant(voltsim.ProfileOverride{Channel: 2, Type: "T", Point: 101, Profile: "soc", Capacity: 100000, Value: fixed(60)})
	s.startRulesrv()
	key := keyspace.ChannelPoints(10, point.Adjustment)
	waitA := func(want string) {
		testharness.Eventually(t, 30*time.Second, func() error {
			if v := s.HGet(key, "2"); v != want {
				return fmt.Errorf("comsrv:10:A 2 = %q, want %s", v, want)
			}
			return nil
		})
	}
	waitA("30")
	testharness.Eventually(t, 20*time.Second, func() error { // the rule's write is done and remembered
		if len(s.events("reserve", "action")) == 0 {
			return fmt.Errorf("no action outcome yet")
		}
		return nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id, err := command.Submit(ctx, s.RDB, command.Command{Channel: 10, Type: point.Adjustment, Point: 2, Value: 50, Source: "api", User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := command.Wait(ctx, s.RDB, id); err != nil || res.Status != command.OK {
		t.Fatalf("remote setpoint: %+v %v", res, err)
	}
	waitA("50")
	waitA("30")
	over, rest := s.events("reserve", "remote_override"), s.events("reserve", "watchdog_restore")
	if len(over) != 1 || len(rest) != 1 {
		t.Fatalf("events: %v", s.events("reserve", ""))
	}
	var t0, t1 int64
	fmt.Sscan(fmt.Sprint(over[0]["ts"]), &t0)
	fmt.Sscan(fmt.Sprint(rest[0]["ts"]), &t1)
	if t1-t0 < 2000 {
		t.Fatalf("rule value restored %d ms after the remote write, before the 2 s expiry", t1-t0)
	}
}
