// Command voltage-cloud runs the cloud hub: the NATS server every edge site joins
// as a leaf node, with JetStream, and the hub's HTTP endpoints. It reads
// {--config}/cloud.yaml (all defaults when the file is missing).
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/voltageems/voltage/cloud/hub"
	"github.com/voltageems/voltage/shared/obs"
	"github.com/voltageems/voltage/shared/service"
)

const name = "voltage-cloud"

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

// run is main without the exit, returning the exit code the way service.Main does.
func run(args []string, stderr io.Writer) int {
	flags, err := service.ParseFlags(name, args, stderr, nil)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return service.ExitConfig
	}
	cfg, err := hub.Load(flags.ConfigDir)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid configuration in %s:\n%v\n", name, flags.ConfigDir, err)
		return service.ExitConfig
	}
	hub.ApplyEnv(&cfg)
	log, err := obs.NewLogger(stderr, cmp.Or(flags.LogLevel, cfg.Logging.Level), cmp.Or(flags.LogFormat, cfg.Logging.Format))
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return service.ExitConfig
	}
	cfg.Log = log.With("service", name)

	ctx, stop, reload := service.Signals(context.Background())
	defer stop()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-reload:
				cfg.Log.Info("SIGHUP ignored: cloud.yaml is read at start; restart the hub to apply changes")
			}
		}
	}()

	cfg.Log.Info("starting", "version", service.Version, "config", flags.ConfigDir)
	if err := hub.Run(ctx, cfg); err != nil && !errors.Is(err, context.Canceled) {
		cfg.Log.Error("stopped with error", "err", err)
		var ce *service.ConfigError
		if errors.As(err, &ce) {
			return service.ExitConfig
		}
		return 1
	}
	cfg.Log.Info("stopped")
	return 0
}
