// Command voltage-edge is the edge appliance: every edge service of a site in one
// process, with the embedded NATS server that joins the cloud hub as a leaf node.
package main

import (
	"context"
	"os"

	"github.com/voltageems/voltage/edge/appliance"
	"github.com/voltageems/voltage/shared/service"
)

func main() {
	os.Exit(service.Main("voltage-edge", os.Args[1:], os.Stderr, func(ctx context.Context, env service.Env) error {
		return appliance.Run(ctx, appliance.Config{
			Site:      env.Config,
			ConfigDir: env.ConfigDir,
			// VOLTAGE_HTTP_ADDR, else site.yaml listen.edge, else the appliance's default.
			HTTPAddr: service.HTTPAddr(env.Config, "edge"),
			Log:      env.Log,
			Reload:   env.Reload,
		})
	}))
}
