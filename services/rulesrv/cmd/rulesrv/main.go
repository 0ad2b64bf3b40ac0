// Command rulesrv runs the site's automation rules: it evaluates them on changes,
// intervals and schedules and runs their actions through the command path.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/voltageems/voltage/services/rulesrv"
	"github.com/voltageems/voltage/shared/service"
)

func main() {
	os.Exit(service.Main("rulesrv", os.Args[1:], os.Stderr, func(ctx context.Context, env service.Env) error {
		err := rulesrv.Run(ctx, rulesrv.Config{
			Site:      env.Config,
			ConfigDir: env.ConfigDir,
			HTTPAddr:  service.HTTPAddr(env.Config, "rulesrv"),
			Log:       env.Log,
			Reload:    env.Reload,
		})
		var ce *service.ConfigError
		if errors.As(err, &ce) {
			// One problem per line, file:line:col first, as config errors are shown.
			fmt.Fprintf(os.Stderr, "rulesrv: invalid rules in %s:\n%v\n", env.ConfigDir, ce.Err)
		}
		return err
	}))
}
