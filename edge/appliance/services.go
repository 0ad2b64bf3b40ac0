package appliance

import (
	"context"
	"log/slog"
	"net"

	"github.com/voltageems/voltage/services/alarmsrv"
	"github.com/voltageems/voltage/services/apigateway"
	"github.com/voltageems/voltage/services/comsrv"
	"github.com/voltageems/voltage/services/hissrv"
	"github.com/voltageems/voltage/services/modsrv"
	"github.com/voltageems/voltage/services/netsrv"
	"github.com/voltageems/voltage/services/rulesrv"
	"github.com/voltageems/voltage/shared/config"
)

// serviceEnv is what the appliance gives each service it runs: the same things the
// service's own binary would take from its flags, environment and site.yaml.
type serviceEnv struct {
	Site      *config.Config
	ConfigDir string
	HTTPAddr  string // the service's own address (site.yaml listen, VOLTAGE_LISTEN_{NAME}, DESIGN §9)
	Log       *slog.Logger
	Reload    <-chan struct{} // this service's copy of the appliance's reload signal
	Bound     func(net.Addr)  // to be called once the service's HTTP listener is bound
	// DataDir is where the service keeps files (hissrv's store, netsrv's spools);
	// "" = the service's own default (its config file, else ./data/{name}).
	DataDir string
}

// edgeService is one service the appliance runs in process.
type edgeService struct {
	name string
	run  func(ctx context.Context, env serviceEnv) error
}

// edgeServices are the services of an edge site. Each is the same library its own
// binary runs (DESIGN §1), so both deployments behave the same; services talk to
// each other only through Redis, whatever the order they start in.
var edgeServices = []edgeService{
	{"comsrv", func(ctx context.Context, env serviceEnv) error {
		return comsrv.Run(ctx, comsrv.Config{Site: env.Site, ConfigDir: env.ConfigDir, HTTPAddr: env.HTTPAddr,
			Log: env.Log, Reload: env.Reload, Bound: env.Bound})
	}},
	{"modsrv", func(ctx context.Context, env serviceEnv) error {
		return modsrv.Run(ctx, modsrv.Config{Site: env.Site, ConfigDir: env.ConfigDir, HTTPAddr: env.HTTPAddr,
			Log: env.Log, Reload: env.Reload, Bound: env.Bound})
	}},
	{"hissrv", func(ctx context.Context, env serviceEnv) error {
		return hissrv.Run(ctx, hissrv.Config{Site: env.Site, ConfigDir: env.ConfigDir, HTTPAddr: env.HTTPAddr,
			Log: env.Log, Reload: env.Reload, Bound: env.Bound, DataDir: env.DataDir})
	}},
	{"rulesrv", func(ctx context.Context, env serviceEnv) error {
		return rulesrv.Run(ctx, rulesrv.Config{Site: env.Site, ConfigDir: env.ConfigDir, HTTPAddr: env.HTTPAddr,
			Log: env.Log, Reload: env.Reload, Bound: env.Bound})
	}},
	{"alarmsrv", func(ctx context.Context, env serviceEnv) error {
		return alarmsrv.Run(ctx, alarmsrv.Config{Site: env.Site, ConfigDir: env.ConfigDir, HTTPAddr: env.HTTPAddr,
			Log: env.Log, Reload: env.Reload, Bound: env.Bound})
	}},
	{"apigateway", func(ctx context.Context, env serviceEnv) error {
		// The public door: its own /reload is an authenticated API operation, so
		// the appliance's reload signal does not go to it.
		return apigateway.Run(ctx, apigateway.Config{Site: env.Site, ConfigDir: env.ConfigDir, HTTPAddr: env.HTTPAddr,
			Log: env.Log, Bound: env.Bound})
	}},
	{"netsrv", func(ctx context.Context, env serviceEnv) error {
		return netsrv.Run(ctx, netsrv.Config{Site: env.Site, ConfigDir: env.ConfigDir, HTTPAddr: env.HTTPAddr,
			Log: env.Log, Reload: env.Reload, Bound: env.Bound, DataDir: env.DataDir})
	}},
}

// serviceNames lists the names of edgeServices, as used in the heartbeat, /status and /readyz.
func serviceNames() []string {
	names := make([]string, len(edgeServices))
	for i, s := range edgeServices {
		names[i] = s.name
	}
	return names
}

// fanOutReloads copies every signal from in to each of outs until ctx is done. A
// service still busy with the previous reload gets the new one after it: its
// channel holds one pending signal, and more than one would mean the same thing.
func fanOutReloads(ctx context.Context, in <-chan struct{}, outs []chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-in:
			if !ok {
				return
			}
			for _, out := range outs {
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}
}
