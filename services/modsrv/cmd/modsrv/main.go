// Command modsrv runs the site's thing model: it routes channel measurements to
// instances, evaluates the calculations and turns instance actions into commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/voltageems/voltage/services/modsrv"
	"github.com/voltageems/voltage/shared/service"
)

func main() {
	os.Exit(service.Main("modsrv", os.Args[1:], os.Stderr, func(ctx context.Context, env service.Env) error {
		err := modsrv.Run(ctx, modsrv.Config{
			Site:      env.Config,
			ConfigDir: env.ConfigDir,
			HTTPAddr:  service.HTTPAddr(env.Config, "modsrv"),
			Log:       env.Log,
			Reload:    env.Reload,
		})
		var ce *service.ConfigError
		if errors.As(err, &ce) {
			// One problem per line, file:line:col first, as config errors are shown.
			fmt.Fprintf(os.Stderr, "modsrv: invalid model in %s:\n%v\n", env.ConfigDir, ce.Err)
		}
		return err
	}))
}
