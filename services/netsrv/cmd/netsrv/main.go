// Command netsrv forwards points to AWS IoT Core, Aliyun IoT, MQTT brokers and
// HTTP endpoints, and turns cloud writes into commands.
package main

import (
	"context"
	"os"

	"github.com/voltageems/voltage/services/netsrv"
	"github.com/voltageems/voltage/shared/service"
)

func main() {
	os.Exit(service.Main("netsrv", os.Args[1:], os.Stderr, func(ctx context.Context, env service.Env) error {
		return netsrv.Run(ctx, netsrv.Config{
			Site:      env.Config,
			ConfigDir: env.ConfigDir,
			HTTPAddr:  service.HTTPAddr(env.Config, "netsrv"),
			Log:       env.Log,
			Reload:    env.Reload,
		})
	}))
}
