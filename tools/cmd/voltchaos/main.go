// Command voltchaos runs the chaos suite (`go tool task chaos`, docs/chaos.md):
// the whole local stack as processes, a counted sequence of values from the
// simulator, scripted faults, and a table of what each sink kept, lost and
// duplicated, and how long recovery took. It exits 1 when anything DESIGN §11
// promises to keep was lost or a scenario failed.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/voltageems/voltage/tools/chaos"
	"github.com/voltageems/voltage/tools/devstack"
)

func main() {
	var (
		names   = flag.String("scenarios", "all", "comma-separated scenarios, or all")
		outage  = flag.Duration("outage", 30*time.Second, "how long each fault lasts")
		after   = flag.Duration("after", 10*time.Second, "how long the sequence goes on after each fault")
		every   = flag.Duration("every", 200*time.Millisecond, "one counted value every (slower than the 100 ms poll)")
		wait    = flag.Duration("deadline", 2*time.Minute, "how long to wait for start, recovery and convergence")
		dir     = flag.String("dir", "", "state folder (default: a new temporary folder, removed at the end)")
		verbose = flag.Bool("v", false, "print the processes' logs")
		list    = flag.Bool("list", false, "list the scenarios and exit")
	)
	flag.Parse()
	if *list {
		for _, s := range chaos.Scenarios {
			layout := "either layout"
			if s.Layout != "" {
				layout = string(s.Layout) + " layout"
			}
			fmt.Printf("%-17s (%s) %s\n", s.Name, layout, s.About)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	lost, err := run(ctx, *names, *dir, *verbose, chaos.Timing{Every: *every, Outage: *outage, After: *after, Deadline: *wait})
	if err != nil {
		fmt.Fprintf(os.Stderr, "voltchaos: %v\n", err)
		os.Exit(1)
	}
	if lost {
		os.Exit(1)
	}
}

func run(ctx context.Context, names, dir string, verbose bool, tm chaos.Timing) (failed bool, err error) {
	var scenarios []chaos.Scenario
	if names == "all" {
		scenarios = chaos.Scenarios
	} else {
		for _, n := range strings.Split(names, ",") {
			sc, ok := chaos.ScenarioByName(strings.TrimSpace(n))
			if !ok {
				return false, fmt.Errorf("no scenario %q (voltchaos -list)", n)
			}
			scenarios = append(scenarios, sc)
		}
	}
	root, err := devstack.WorkspaceRoot()
	if err != nil {
		return false, err
	}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "voltchaos-"); err != nil {
			return false, err
		}
		defer os.RemoveAll(dir)
	}
	var logs io.Writer = io.Discard
	if verbose {
		logs = os.Stderr
	}
	start := time.Now()
	su := chaos.Suite{Root: root, StateDir: dir, Logs: logs, Progress: os.Stderr, Timing: tm}
	results, err := su.Run(ctx, scenarios)
	for _, r := range results {
		if r.Err != nil || r.Lost() > 0 || r.Commands.Twice > 0 {
			failed = true
		}
	}
	if err != nil && len(results) == 0 {
		return false, err
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "voltchaos: %v\n", err)
		failed = true
	}
	fmt.Printf("\nchaos suite: outage %s, one value every %s, %s in all\n\n", tm.Outage, tm.Every, time.Since(start).Round(time.Second))
	chaos.WriteTable(os.Stdout, results)
	return failed, nil
}
