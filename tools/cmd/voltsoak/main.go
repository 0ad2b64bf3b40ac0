// Command voltsoak runs the soak (`go tool task soak`, docs/soak.md): the whole
// local stack as processes under a steady load of changing points, every process
// sampled for memory, descriptors, threads and goroutines, and a table of what
// grew after the warm-up. It exits 1 when a series grew beyond its threshold or a
// process went away, and 2 when the soak could not run.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/voltageems/voltage/tools/chaos"
	"github.com/voltageems/voltage/tools/devstack"
	"github.com/voltageems/voltage/tools/soak"
)

func main() {
	var (
		duration = flag.Duration("duration", time.Hour, "how long to sample")
		rate     = flag.Int("rate", 10_000, "target point updates a second (Modbus registers that change every poll)")
		interval = flag.Duration("interval", 10*time.Second, "between rounds of samples")
		progress = flag.Duration("progress", time.Minute, "a progress line every (0: none)")
		maxLen   = flag.Int64("changes-maxlen", 2_000, "cap of voltage:changes in entries for the run (0: the demo site's 1,000,000)")
		csvPath  = flag.String("csv", "", "write every sample to this CSV file")
		dir      = flag.String("dir", "", "state folder (default: a new temporary folder, removed at the end)")
		verbose  = flag.Bool("v", false, "print the processes' logs")
		layout   = flag.String("layout", string(chaos.LayoutAppliance), "the edge: appliance (every service in voltage-edge) or split (a process per service)")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	flagged, err := run(ctx, soak.Options{Duration: *duration, Rate: *rate, Interval: *interval, Layout: chaos.Layout(*layout),
		ProgressEvery: *progress, ChangesMaxLen: *maxLen}, *csvPath, *dir, *verbose)
	if err != nil {
		fmt.Fprintf(os.Stderr, "voltsoak: %v\n", err)
		os.Exit(2)
	}
	if flagged {
		os.Exit(1)
	}
}

func run(ctx context.Context, o soak.Options, csvPath, dir string, verbose bool) (flagged bool, err error) {
	if o.Root, err = devstack.WorkspaceRoot(); err != nil {
		return false, err
	}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "voltsoak-"); err != nil {
			return false, err
		}
		defer os.RemoveAll(dir)
	}
	o.StateDir = dir
	o.Logs = io.Discard
	if verbose {
		o.Logs = os.Stderr
	}
	if o.ProgressEvery > 0 {
		o.Progress = os.Stderr
	}
	if csvPath != "" {
		f, err := os.Create(csvPath)
		if err != nil {
			return false, fmt.Errorf("create the CSV: %w", err)
		}
		defer f.Close()
		o.CSV = f
	}
	fmt.Fprintf(os.Stderr, "building and starting the stack with %d points/s of load; sampling for %s every %s ...\n",
		o.Rate, o.Duration, o.Interval)
	res, err := soak.Run(ctx, o)
	if err != nil {
		return false, err
	}
	fmt.Println()
	soak.WriteTable(os.Stdout, res)
	return res.Flagged(), nil
}
