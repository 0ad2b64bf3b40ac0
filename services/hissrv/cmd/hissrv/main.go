// Command hissrv stores the site's history: every change of voltage:changes in the
// embedded time-series store (and InfluxDB when configured), served through a
// history API and a Prometheus-compatible API for Grafana.
package main

import (
	"context"
	"os"
	"strings"

	"github.com/voltageems/voltage/services/hissrv"
	"github.com/voltageems/voltage/shared/redisx"
	"github.com/voltageems/voltage/shared/service"
)

func main() {
	args, dataDir := dataFlag(os.Args[1:])
	os.Exit(service.Main("hissrv", args, os.Stderr, func(ctx context.Context, env service.Env) error {
		redisx.UseSlog(env.Log)
		if dataDir == "" {
			dataDir = os.Getenv("VOLTAGE_HISSRV_DATA")
		}
		return hissrv.Run(ctx, hissrv.Config{
			Site:      env.Config,
			ConfigDir: env.ConfigDir,
			HTTPAddr:  service.HTTPAddr(env.Config, "hissrv"),
			Log:       env.Log,
			Reload:    env.Reload,
			DataDir:   dataDir,
		})
	}))
}

// dataFlag takes hissrv's own flag, --data DIR (or --data=DIR), out of args: the
// folder of the embedded store and the spools, overriding hissrv.yaml's data_dir.
func dataFlag(args []string) (rest []string, dir string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--data" || a == "-data":
			if i+1 < len(args) {
				dir = args[i+1]
				i++
				continue
			}
			rest = append(rest, a)
		case strings.HasPrefix(a, "--data=") || strings.HasPrefix(a, "-data="):
			dir = a[strings.IndexByte(a, '=')+1:]
		default:
			rest = append(rest, a)
		}
	}
	return rest, dir
}
