package chaos

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestChaosShort is the short form of `go tool task chaos`: the stack as real
// processes, a counted sequence at 5 values/s, and the scenarios Redis and the
// cloud hub killed -9, the leaf link cut, the MQTT broker and the edge appliance
// killed -9, and a flapping device, each with a 3 s outage. Nothing DESIGN §11 promises to
// keep may be lost, and every sink must recover.
func TestChaosShort(t *testing.T) {
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out io.Writer = io.Discard
	if testing.Verbose() {
		out = os.Stdout
	}
	start := time.Now()
	st, err := Start(ctx, Options{Root: root, StateDir: t.TempDir(), Out: out})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Stop()
	t.Logf("stack up in %s", time.Since(start).Round(time.Millisecond))
	sinks, closeSinks, err := st.Sinks(ctx, start)
	if err != nil {
		t.Fatal(err)
	}
	defer closeSinks()
	tm := Timing{Every: 200 * time.Millisecond, Outage: 3 * time.Second, After: 2 * time.Second, Deadline: 45 * time.Second}
	var results []Result
	for i, name := range []string{"redis-kill9", "cloud-kill9", "leaf-cut", "mosquitto-kill9", "edge-kill9", "device-flap"} {
		sc, ok := ScenarioByName(name)
		if !ok {
			t.Fatalf("no scenario %s", name)
		}
		r := Run(ctx, st, sinks, sc, (i+1)*100_000, tm)
		results = append(results, r)
		if r.Err != nil {
			t.Errorf("%s: %v", name, r.Err)
			continue
		}
		if r.Produced < 10 {
			t.Errorf("%s: only %d values produced", name, r.Produced)
		}
		if r.Lost() != 0 {
			t.Errorf("%s: %d values lost that DESIGN §11 promises to keep (history %+v, cloud %+v, acked-lost in Redis %d)",
				name, r.Lost(), r.Sink("history"), r.Sink("cloud"), r.AckedLost)
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
	}
	var table bytes.Buffer
	WriteTable(&table, results)
	t.Logf("results (%s in all):\n%s", time.Since(start).Round(time.Second), table.String())
}

func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOWORK").Output()
	gowork := strings.TrimSpace(string(out))
	if err != nil || gowork == "" || gowork == "off" {
		t.Fatalf("run inside the VoltageEMS repository (go env GOWORK: %q, %v)", gowork, err)
	}
	return filepath.Dir(gowork)
}
