package chaos

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/voltageems/voltage/tools/devstack"
)

// TestChaosShort is the short form of `go tool task chaos`: every scenario, on
// the stack as real processes (each edge service its own process, then the
// appliance for edge-kill9), a counted sequence of values, commands and alarms at 5/s, and
// each fault for 2 s. Nothing DESIGN §11 promises to keep may be lost, no
// command may run twice, and every sink must recover.
func TestChaosShort(t *testing.T) {
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var logs io.Writer = io.Discard
	if testing.Verbose() {
		logs = os.Stdout
	}
	scenarios := Scenarios // every scenario, in both layouts
	start := time.Now()
	su := Suite{Root: root, StateDir: t.TempDir(), Logs: logs, Progress: t.Output(),
		Timing: Timing{Every: 200 * time.Millisecond, Outage: 2 * time.Second, After: time.Second, Deadline: 45 * time.Second}}
	results, err := su.Run(ctx, scenarios)
	if err != nil {
		t.Error(err)
	}
	if len(results) != len(scenarios) {
		t.Errorf("%d results for %d scenarios", len(results), len(scenarios))
	}
	for _, r := range results {
		checkResult(t, r)
	}
	var table bytes.Buffer
	WriteTable(&table, results)
	t.Logf("results (%s in all):\n%s", time.Since(start).Round(time.Second), table.String())
}

// checkResult fails t for anything of r that breaks DESIGN §11 or never recovered.
func checkResult(t *testing.T, r Result) {
	t.Helper()
	name := r.Scenario
	if r.Err != nil {
		t.Errorf("%s: %v", name, r.Err)
		return
	}
	if r.Produced < 10 {
		t.Errorf("%s: only %d values produced", name, r.Produced)
	}
	if r.Lost() != 0 {
		t.Errorf("%s: %d lost that DESIGN §11 promises to keep (history %+v, cloud %+v, acked-lost in Redis %d, commands %+v, alarms %+v)",
			name, r.Lost(), r.Sink("history"), r.Sink("cloud"), r.AckedLost, r.Commands, r.Alarms)
	}
	for _, s := range r.Sinks {
		if s.Recovery < 0 {
			t.Errorf("%s: %s never recovered", name, s.Sink)
		}
		if s.Got == 0 {
			t.Errorf("%s: %s holds none of the sequence", name, s.Sink)
		}
	}
	// hissrv stores exactly once: no copy beyond what the stream holds.
	if h := r.Sink("history"); h.DupVsRedis != 0 {
		t.Errorf("%s: history holds %d values twice that voltage:changes holds once", name, h.DupVsRedis)
	}
	c := r.Commands
	if c.Accepted == 0 || c.OK == 0 {
		t.Errorf("%s: commands %+v: none accepted or none ran", name, c)
	}
	if c.Twice != 0 || c.Stray != 0 || c.RanUnanswered != 0 {
		t.Errorf("%s: commands %+v: %d ran twice, %d ran without being accepted, %d device writes no command explains",
			name, c, c.Twice, c.RanUnanswered, c.Stray)
	}
	if a := r.Alarms; a.Raised == 0 || a.Recovery < 0 {
		t.Errorf("%s: alarms %+v: none raised, or none after the fault", name, a)
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := devstack.WorkspaceRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}
