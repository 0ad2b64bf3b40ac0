package soak

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/tools/devstack"
)

// TestSoakShort is the soak in small: the stack with 2,000 points/s of load,
// sampled every 2 s for 20 s. It checks the machinery, not for leaks (20 s says
// nothing about an hour): every process was sampled with positive RSS and
// descriptor counts, the Go processes reported goroutines, the load flowed into
// history, the cloud and MQTT, the consumer groups' lag was read, and every
// sample reached the CSV.
func TestSoakShort(t *testing.T) {
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var logs io.Writer = io.Discard
	if testing.Verbose() {
		logs = os.Stdout
	}
	var samples bytes.Buffer
	start := time.Now()
	res, err := Run(ctx, Options{Root: root, StateDir: t.TempDir(), Logs: logs, Rate: 2000,
		Duration: 20 * time.Second, Interval: 2 * time.Second, ChangesMaxLen: 500, CSV: &samples})
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	WriteTable(&table, res)
	t.Logf("%s in all:\n%s", time.Since(start).Round(time.Second), table.String())

	for _, want := range []string{"redis", "mosquitto", "cloud", "voltsim"} {
		if !slices.Contains(res.Processes, want) {
			t.Errorf("process %s was not sampled (sampled: %v)", want, res.Processes)
		}
	}
	byKey := map[[2]string]Row{}
	for _, row := range res.Rows {
		byKey[[2]string{row.Process, row.Metric}] = row
	}
	for _, p := range res.Processes {
		for _, m := range []string{MetricRSS, MetricFDs, MetricThreads} {
			row, ok := byKey[[2]string{p, m}]
			if !ok {
				t.Errorf("%s: no %s series", p, m)
				continue
			}
			if row.Min <= 0 {
				t.Errorf("%s %s: min %v, want > 0", p, m, row.Min)
			}
		}
	}
	for _, p := range []string{"cloud", "edge"} {
		if !slices.Contains(res.Processes, p) {
			continue // the layout with a process per service has no "edge"
		}
		if row, ok := byKey[[2]string{p, MetricGoroutines}]; !ok || row.Min <= 0 {
			t.Errorf("%s: no goroutine count from its /metrics (%+v)", p, row)
		}
	}
	if row, ok := byKey[[2]string{"redis", MetricUsedMemory}]; !ok || row.Min <= 0 {
		t.Errorf("no Redis used_memory (%+v)", row)
	}
	lags := 0
	for _, row := range res.Rows {
		if row.Process == ProcStream && strings.HasPrefix(row.Metric, MetricLagPrefix) {
			lags++
		}
	}
	if lags == 0 {
		t.Error("no consumer group lag of voltage:changes was read")
	}
	for _, m := range []string{"history_points_per_s", "cloud_points_per_s", "mqtt_points_per_s"} {
		if row, ok := byKey[[2]string{ProcLoad, m}]; !ok || row.Max <= 0 {
			t.Errorf("load %s: the sink passed nothing on (%+v)", m, row)
		}
	}
	if res.Achieved <= 0 {
		t.Errorf("achieved rate %v points/s, want > 0", res.Achieved)
	}
	if res.Rounds < 5 {
		t.Errorf("%d rounds of samples in 20 s every 2 s, want at least 5", res.Rounds)
	}
	if len(res.Problems) > 0 {
		t.Errorf("problems: %v", res.Problems)
	}

	rows, err := csv.NewReader(&samples).ReadAll()
	if err != nil {
		t.Fatalf("read the CSV back: %v", err)
	}
	if len(rows) < 2 || strings.Join(rows[0], ",") != "time,elapsed_s,process,metric,value" {
		t.Fatalf("CSV: %d rows, header %v", len(rows), rows[0])
	}
	seen := map[string]bool{}
	for _, r := range rows[1:] {
		seen[r[2]] = true
	}
	for _, p := range res.Processes {
		if !seen[p] {
			t.Errorf("CSV has no row of %s", p)
		}
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
