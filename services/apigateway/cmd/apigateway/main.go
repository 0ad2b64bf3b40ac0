// Command apigateway is the public API of an edge site: REST (OpenAPI) and
// WebSocket behind JWT authentication and roles.
package main

import (
	"context"
	"os"

	"github.com/voltageems/voltage/services/apigateway"
	"github.com/voltageems/voltage/shared/service"
)

func main() {
	os.Exit(service.Main(apigateway.Name, os.Args[1:], os.Stderr, func(ctx context.Context, env service.Env) error {
		return apigateway.Run(ctx, apigateway.Config{
			Site:      env.Config,
			ConfigDir: env.ConfigDir,
			HTTPAddr:  service.HTTPAddr(env.Config, apigateway.Name),
			Log:       env.Log,
		})
	}))
}
