package rulesrv_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/testharness"
)

// Redis going away does not stop rulesrv: /readyz reports it, and once Redis is
// back rulesrv resubscribes, reloads the inputs from the hashes and acts again.
func TestRedisOutage(t *testing.T) {
	s := newStack(t, withRule("peak", `id: peak
condition: meter.active_power > 100
actions:
  - command: {channel: 1, type: A, point: 1, value: 30}
    wait: false
`))
	s.startRulesrv()
	s.setInst(meter, point.Good, mGrid, 150)
	s.waitCommands(1, 1)

	s.Redis.Stop(t)
	testharness.Eventually(t, 30*time.Second, func() error {
		if code, _ := s.call("GET", "/readyz", "", nil); code == http.StatusOK {
			return fmt.Errorf("ready while Redis is down")
		}
		return nil
	})
	s.Redis.Restart(t) // without persistence: everything is gone
	testharness.Eventually(t, 30*time.Second, func() error {
		if code, body := s.call("GET", "/readyz", "", nil); code != http.StatusOK {
			return fmt.Errorf("readyz %d: %s", code, body)
		}
		return nil
	})
	// The resync found no value: the rule re-armed (its input is gone), and the
	// next crossing fires again.
	s.setInst(meter, point.Good, mGrid, 50)
	s.setInst(meter, point.Good, mGrid, 160)
	s.waitCommands(1, 1)
}
