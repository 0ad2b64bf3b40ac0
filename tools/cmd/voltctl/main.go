// Command voltctl is the operator CLI of a VoltageEMS site (see
// tools/voltctl/README.md): status, channels, point get/watch/set, command get,
// config validate and the import of an original VoltageEMS config folder.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/voltageems/voltage/shared/redisx"
	"github.com/voltageems/voltage/shared/service"
	"github.com/voltageems/voltage/tools/voltctl"
)

func main() {
	// Every Redis failure voltctl cares about is returned by the command that hit
	// it and reported once, in the CLI's words; go-redis's own log lines about
	// the same failure would only repeat it in another format.
	redisx.UseSlog(slog.New(slog.DiscardHandler))
	ctx, stop, _ := service.Signals(context.Background()) // SIGHUP: nothing to reload
	code := voltctl.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
