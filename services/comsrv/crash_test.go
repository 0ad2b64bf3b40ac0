package comsrv_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/testharness"
)

// TestKilledComsrvNeverLosesOrRepeatsACommand runs the comsrv binary, kills it with
// SIGKILL at random moments while commands keep arriving, restarts it, and then
// checks every command: it reached a final status (nothing lost), a command
// reported ok reached the device exactly once, and none reached it twice.
func TestKilledComsrvNeverLosesOrRepeatsACommand(t *testing.T) {
	bin := buildComsrv(t)
	s := startSite(t, commandSite)
	var logs io.Writer
	if testing.Verbose() {
		logs = os.Stderr
	}
	proc := s.comsrvProcess(bin, logs)
	t.Cleanup(func() { _ = proc.Process.Kill(); _ = proc.Wait() })
	s.waitField(keyspace.ChannelStatus(1), "state", "up")

	rng := rand.New(rand.NewPCG(7, 7))
	ctx := context.Background()
	values := map[string]float64{} // command id → the distinct value it sets
	const total, kills = 60, 4
	killAt := map[int]bool{}
	for len(killAt) < kills {
		killAt[5+rng.IntN(total-10)] = true
	}
	for i := range total {
		v := float64(i) - 30.5 // distinct, within ±100, a multiple of the 0.1 scale
		id, err := command.Submit(ctx, s.rdb, command.Command{Channel: 1, Type: point.Adjustment, Point: 1, Value: v, Source: "crash-test"})
		if err != nil {
			t.Fatal(err)
		}
		values[id] = v
		pause := time.NewTimer(time.Duration(5+rng.IntN(30)) * time.Millisecond) // commands arrive at a random pace
		<-pause.C
		if killAt[i] {
			_ = proc.Process.Signal(syscall.SIGKILL)
			_ = proc.Wait()
			proc = s.comsrvProcess(bin, logs)
		}
	}

	// Every command reaches a final status.
	results := map[string]command.Result{}
	testharness.Eventually(t, 60*time.Second, func() error {
		for id := range values {
			if _, done := results[id]; done {
				continue
			}
			r, err := command.Get(ctx, s.rdb, id)
			if err != nil {
				return err
			}
			if !r.Status.Final() {
				return fmt.Errorf("command %s still %s", id, r.Status)
			}
			results[id] = r
		}
		return nil
	})

	writes := map[float64]int{}
	for _, w := range s.sim.Writes(1) {
		if w.Type == point.Adjustment && w.PointID == 1 {
			writes[w.Value]++
		}
	}
	counts := map[command.Status]int{}
	for id, v := range values {
		r := results[id]
		counts[r.Status]++
		n := writes[v]
		switch {
		case n > 1:
			t.Errorf("command %s (value %g) reached the device %d times", id, v, n)
		case r.Status == command.OK && n != 1:
			t.Errorf("command %s (value %g) is ok but reached the device %d times", id, v, n)
		case r.Status != command.OK && r.Status != command.Failed && n != 0:
			t.Errorf("command %s (value %g) is %s but reached the device", id, v, r.Status)
		}
	}
	t.Logf("%d commands, %d kills: %v", total, kills, counts)
	if counts[command.OK] < total/2 {
		t.Errorf("only %d of %d commands succeeded: %v", counts[command.OK], total, counts)
	}
	p, err := s.rdb.XPending(ctx, keyspace.ChannelCommands(1), keyspace.CommandGroup).Result()
	if err != nil || p.Count != 0 {
		t.Errorf("pending entries left: %+v %v", p, err)
	}
}
