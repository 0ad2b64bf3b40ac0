// Command comsrv collects field device points into Redis and executes commands.
package main

import (
	"context"
	"os"

	"github.com/voltageems/voltage/services/comsrv"
	"github.com/voltageems/voltage/shared/service"
)

func main() {
	os.Exit(service.Main("comsrv", os.Args[1:], os.Stderr, func(ctx context.Context, env service.Env) error {
		return comsrv.Run(ctx, comsrv.Config{
			Site:      env.Config,
			ConfigDir: env.ConfigDir,
			HTTPAddr:  service.HTTPAddr(env.Config, "comsrv"),
			Log:       env.Log,
			Reload:    env.Reload,
		})
	}))
}
