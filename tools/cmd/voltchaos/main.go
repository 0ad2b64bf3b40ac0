// Command voltchaos runs the chaos suite (`go tool task chaos`, docs/chaos.md):
// the whole local stack as processes, a counted sequence of values from the
// simulator, scripted faults, and a table of what each sink kept, lost and
// duplicated, and how long recovery took. It exits 1 when anything DESIGN §11
// promises to keep was lost or a scenario failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/voltageems/voltage/tools/chaos"
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
			fmt.Printf("%-16s %s\n", s.Name, s.About)
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
	out, err := exec.Command("go", "env", "GOWORK").Output()
	gowork := strings.TrimSpace(string(out))
	if err != nil || gowork == "" || gowork == "off" {
		return false, errors.New("run voltchaos inside the VoltageEMS repository (no go.work found)")
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
	fmt.Fprintln(os.Stderr, "building and starting the stack ...")
	st, err := chaos.Start(ctx, chaos.Options{Root: filepath.Dir(gowork), StateDir: dir, Out: logs})
	if err != nil {
		return false, err
	}
	defer st.Stop()
	sinks, closeSinks, err := st.Sinks(ctx, start)
	if err != nil {
		return false, err
	}
	defer closeSinks()
	var results []chaos.Result
	for i, sc := range scenarios {
		fmt.Fprintf(os.Stderr, "%s: %s\n", sc.Name, sc.About)
		r := chaos.Run(ctx, st, sinks, sc, (i+1)*100_000, tm)
		results = append(results, r)
		if r.Err != nil || r.Lost() > 0 {
			failed = true
		}
		if ctx.Err() != nil {
			break
		}
	}
	fmt.Printf("\nchaos suite: outage %s, one value every %s, %s in all\n\n", tm.Outage, tm.Every, time.Since(start).Round(time.Second))
	chaos.WriteTable(os.Stdout, results)
	return failed, nil
}
