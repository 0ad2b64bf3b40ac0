// Command voltsim simulates the field devices of a site: it serves every mapped point
// of the site's channels over their real protocols, with value profiles and faults
// on demand (see tools/voltsim/README.md).
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/voltageems/voltage/shared/obs"
	"github.com/voltageems/voltage/shared/service"
	"github.com/voltageems/voltage/tools/voltsim"
)

func main() {
	ctx, stop, _ := service.Signals(context.Background()) // SIGHUP: nothing to reload
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program; it serves until ctx is done and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var control, override, profiles string
	var seed uint64
	flags, err := service.ParseFlags("voltsim", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&control, "control", "127.0.0.1:6090", "HTTP control API address (empty: off)")
		fs.StringVar(&override, "listen-override", "", "bind every channel on this host (port 0: a free port each) or host:port instead of the channel's own address")
		fs.StringVar(&profiles, "profiles", "", "profile override file (YAML)")
		fs.Uint64Var(&seed, "seed", 1, "seed of the simulated noise")
	})
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "voltsim: %v\n", err)
		return service.ExitConfig
	}
	cfg, err := service.LoadConfig(flags.ConfigDir)
	if err != nil {
		fmt.Fprintf(stderr, "voltsim: invalid configuration in %s:\n%v\n", flags.ConfigDir, err)
		return service.ExitConfig
	}
	log, err := obs.NewLogger(stderr, cmp.Or(flags.LogLevel, cfg.Site.Logging.Level, "info"), cmp.Or(flags.LogFormat, cfg.Site.Logging.Format, "text"))
	if err != nil {
		fmt.Fprintf(stderr, "voltsim: %v\n", err)
		return service.ExitConfig
	}
	log = log.With("service", "voltsim")
	opts := voltsim.Options{ListenOverride: override, ControlAddr: control, Seed: seed, Logger: log}
	if profiles != "" {
		if opts.Profiles, err = voltsim.LoadProfiles(profiles); err != nil {
			fmt.Fprintf(stderr, "voltsim: %v\n", err)
			return service.ExitConfig
		}
	}
	sim, err := voltsim.New(cfg, opts)
	if err != nil {
		fmt.Fprintf(stderr, "voltsim: %v\n", err)
		return 1
	}
	for _, ch := range sim.Channels() {
		fmt.Fprintf(stdout, "channel %d %s %s listening on %s (%d points)\n", ch.ID, ch.Name, ch.Protocol, ch.Addr, ch.Points)
	}
	if a := sim.ControlAddr(); a != "" {
		fmt.Fprintf(stdout, "control API on http://%s\n", a)
	}

	if err := sim.Run(ctx); err != nil {
		log.Error("stopped with error", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}
