package chaos

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"
)

// Batch is the scenarios that run on one stack.
type Batch struct {
	Layout    Layout
	Scenarios []Scenario
}

// Plan splits scenarios into the stacks they need, keeping their order within
// each: those of the split layout on one stack, those of the appliance layout on
// another. A scenario that runs in either layout joins the split stack when there
// is one, else the appliance stack.
func Plan(scenarios []Scenario) []Batch {
	var split, appliance []Scenario
	needSplit := false
	for _, sc := range scenarios {
		needSplit = needSplit || sc.Layout == LayoutSplit
	}
	for _, sc := range scenarios {
		switch {
		case sc.Layout == LayoutAppliance, sc.Layout == "" && !needSplit:
			appliance = append(appliance, sc)
		default:
			split = append(split, sc)
		}
	}
	var out []Batch
	if len(split) > 0 {
		out = append(out, Batch{LayoutSplit, split})
	}
	if len(appliance) > 0 {
		out = append(out, Batch{LayoutAppliance, appliance})
	}
	return out
}

// Suite is one run of the chaos suite.
type Suite struct {
	Root     string    // the repository
	StateDir string    // each stack gets a folder inside it
	Logs     io.Writer // the processes' output (nil: discarded)
	Progress io.Writer // a line per stack and scenario (nil: discarded)
	Timing   Timing
}

// Run starts a stack per batch of Plan(scenarios), runs its scenarios one after
// the other, each counting from its own base (100000, 200000, …), and returns
// their results in the order run. An error is a stack that did not start.
func (su Suite) Run(ctx context.Context, scenarios []Scenario) ([]Result, error) {
	progress := su.Progress
	if progress == nil {
		progress = io.Discard
	}
	batches := Plan(scenarios)
	// One build for every stack: the split layout's binaries include the others.
	bin := filepath.Join(su.StateDir, "bin")
	layout := LayoutAppliance
	for _, b := range batches {
		if b.Layout == LayoutSplit {
			layout = LayoutSplit
		}
	}
	fmt.Fprintf(progress, "building the binaries ...\n")
	if err := Build(ctx, su.Root, bin, layout); err != nil {
		return nil, err
	}
	var results []Result
	for _, b := range batches {
		start := time.Now()
		fmt.Fprintf(progress, "starting the stack (%s layout) ...\n", b.Layout)
		st, err := Start(ctx, Options{Root: su.Root, StateDir: filepath.Join(su.StateDir, string(b.Layout)), Out: su.Logs, Layout: b.Layout, Bin: bin})
		if err != nil {
			return results, fmt.Errorf("%s layout: %w", b.Layout, err)
		}
		fmt.Fprintf(progress, "stack up in %s\n", time.Since(start).Round(time.Millisecond))
		rs, err := runBatch(ctx, st, b.Scenarios, start, len(results), su.Timing, progress)
		st.Stop()
		results = append(results, rs...)
		if err != nil {
			return results, err
		}
	}
	return results, nil
}

func runBatch(ctx context.Context, st *Stack, scenarios []Scenario, since time.Time, before int, tm Timing, progress io.Writer) ([]Result, error) {
	sinks, closeSinks, err := st.Sinks(ctx, since)
	if err != nil {
		return nil, err
	}
	defer closeSinks()
	var results []Result
	for i, sc := range scenarios {
		fmt.Fprintf(progress, "%s: %s\n", sc.Name, sc.About)
		r := Run(ctx, st, sinks, sc, (before+i+1)*100_000, tm)
		results = append(results, r)
		if ctx.Err() != nil {
			return results, ctx.Err()
		}
	}
	return results, nil
}
