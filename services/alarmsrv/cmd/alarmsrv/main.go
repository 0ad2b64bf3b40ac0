// Command alarmsrv evaluates the site's alarm rules, runs the alarm lifecycle and
// sends notifications.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/voltageems/voltage/services/alarmsrv"
	"github.com/voltageems/voltage/shared/service"
)

func main() {
	os.Exit(service.Main("alarmsrv", os.Args[1:], os.Stderr, func(ctx context.Context, env service.Env) error {
		err := alarmsrv.Run(ctx, alarmsrv.Config{
			Site:      env.Config,
			ConfigDir: env.ConfigDir,
			HTTPAddr:  service.HTTPAddr(env.Config, "alarmsrv"),
			Log:       env.Log,
			Reload:    env.Reload,
		})
		var ce *service.ConfigError
		if errors.As(err, &ce) {
			// One problem per line, file:line:col first, as config errors are shown.
			fmt.Fprintf(os.Stderr, "alarmsrv: invalid configuration in %s:\n%v\n", env.ConfigDir, ce.Err)
		}
		return err
	}))
}
