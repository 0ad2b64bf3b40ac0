// Command voltage-edge is the edge appliance: the edge services of a site in one
// process (every one, or those of VOLTAGE_EDGE_SERVICES, the others running as
// their own binaries), with the embedded NATS server that joins the cloud hub as a
// leaf node.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/voltageems/voltage/edge/appliance"
	"github.com/voltageems/voltage/shared/service"
)

func main() {
	os.Exit(service.Main("voltage-edge", os.Args[1:], os.Stderr, func(ctx context.Context, env service.Env) error {
		services, err := appliance.ParseServices(os.Getenv(service.EnvEdgeServices))
		if err != nil {
			return fmt.Errorf("%s: %w", service.EnvEdgeServices, err) // still a *service.ConfigError: exit code 2
		}
		return appliance.Run(ctx, appliance.Config{
			Site:      env.Config,
			ConfigDir: env.ConfigDir,
			// VOLTAGE_HTTP_ADDR, else site.yaml listen.edge, else the appliance's default.
			HTTPAddr: service.HTTPAddr(env.Config, "edge"),
			Log:      env.Log,
			Reload:   env.Reload,
			Services: services,
		})
	}))
}
