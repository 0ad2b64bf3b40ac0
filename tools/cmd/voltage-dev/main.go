// Command voltage-dev runs the whole local stack for development (`go tool task
// dev`): Redis (a redis-server from PATH with its data under .dev/, or an in-process
// fallback), the cloud hub, the device simulator and the edge appliance with every
// edge service, their logs interleaved and prefixed. Ctrl-C stops everything.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/service"
	"github.com/voltageems/voltage/tools/devstack"
)

func main() {
	var o options
	flag.StringVar(&o.configDir, "config", "./config", "site configuration folder")
	flag.StringVar(&o.stateDir, "dir", ".dev", "folder for binaries, Redis data, NATS stores")
	flag.Parse()
	o.preferDefaultPorts = true
	o.out = os.Stdout
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, log); err != nil {
		fmt.Fprintf(os.Stderr, "voltage-dev: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	configDir, stateDir string
	// preferDefaultPorts uses DESIGN's ports where they are free; tests take free
	// ports only.
	preferDefaultPorts bool
	out                io.Writer       // the children's prefixed logs
	ready              func(endpoints) // called once everything is started
}

// endpoints is where the running stack listens.
type endpoints struct {
	RedisURL, HubHTTP, HubNATS, HubLeaf, EdgeHTTP, EdgeNATS, SimControl string
	// Services are the edge services' own HTTP addresses, by name.
	Services map[string]string
	// AdminPassword is the admin password of the API gateway and of the cloud API.
	AdminPassword string
	SiteID        string
}

func run(ctx context.Context, o options, log *slog.Logger) error {
	site, err := config.Load(o.configDir)
	if err != nil {
		return fmt.Errorf("the site configuration in %s is invalid:\n%w", o.configDir, err)
	}
	ep := endpoints{SiteID: site.Site.Site.ID}
	root, err := devstack.WorkspaceRoot()
	if err != nil {
		return err
	}
	state, err := filepath.Abs(o.stateDir)
	if err != nil {
		return err
	}
	siteDir, err := filepath.Abs(o.configDir)
	if err != nil {
		return err
	}
	binDir := filepath.Join(state, "bin")
	fmt.Fprintln(os.Stderr, "building binaries into", binDir, "...")
	if err := devstack.Build(ctx, root, binDir, devstack.StackPackages...); err != nil {
		return err
	}
	port := func(def string) string {
		if o.preferDefaultPorts {
			return devstack.AddrOrFree(def)
		}
		return devstack.FreeAddr()
	}

	procs := devstack.NewProcs(devstack.Options{Out: o.out, Color: true, Log: log})
	var mini *miniredis.Miniredis // the in-process Redis fallback outlives every process
	defer func() {
		procs.StopAll()
		if mini != nil {
			mini.Close()
		}
	}()
	// One admin password for the site gateway and the cloud API, and the site's
	// leaf-node password at the hub: made once, kept under the state folder.
	if ep.AdminPassword, err = devstack.KeptSecret(filepath.Join(state, "admin-password")); err != nil {
		return err
	}
	sitePassword, err := devstack.KeptSecret(filepath.Join(state, "site-password"))
	if err != nil {
		return err
	}

	if ep.RedisURL, mini, err = startRedis(ctx, procs, filepath.Join(state, "redis"), port("127.0.0.1:6379"), log); err != nil {
		return err
	}

	// The cloud hub.
	ep.HubNATS, ep.HubLeaf, ep.HubHTTP = port("127.0.0.1:4222"), port("127.0.0.1:7422"), port("127.0.0.1:7000")
	if _, err := devstack.StartHub(procs, filepath.Join(binDir, devstack.CloudBinary), devstack.Hub{
		Dir:        filepath.Join(state, "cloud"),
		ClientAddr: ep.HubNATS, LeafAddr: ep.HubLeaf, HTTPAddr: ep.HubHTTP,
		AdminPassword: ep.AdminPassword,
		SiteID:        ep.SiteID, SiteName: site.Site.Site.Name, SitePassword: sitePassword,
	}); err != nil {
		return err
	}
	if err := devstack.WaitTCP(ctx, ep.HubLeaf, 30*time.Second); err != nil { // the edge joins at once
		return fmt.Errorf("cloud hub: %w", err)
	}
	// The demo site lets the hub's users in (the fleet dashboard's drill-in): its
	// gateway trusts the hub's delegation key, as a site engineer would configure.
	trustKey, err := devstack.HubTrustKey(ctx, ep.HubHTTP, 60*time.Second)
	if err != nil {
		return err
	}

	// The simulated devices of the site.
	ep.SimControl = port("127.0.0.1:6090")
	if _, err := procs.Start("voltsim", filepath.Join(binDir, devstack.VoltsimBinary), state, nil,
		"--config", siteDir, "--control", ep.SimControl); err != nil {
		return err
	}

	// The edge site: every edge service in one process, a leaf node of the hub.
	// Every service gets its DESIGN §9 port where it is free.
	ep.EdgeHTTP, ep.EdgeNATS = port(service.DefaultAddrs["edge"]), port("127.0.0.1:4223")
	if _, err := devstack.StartEdge(procs, filepath.Join(binDir, devstack.EdgeBinary), filepath.Join(state, "edge"), siteDir, devstack.Edge{
		HTTPAddr: ep.EdgeHTTP, NATSAddr: ep.EdgeNATS, RedisURL: ep.RedisURL,
		AdminPassword: ep.AdminPassword,
		SiteID:        ep.SiteID, SitePassword: sitePassword, HubLeaf: ep.HubLeaf,
		CloudTrustKey: trustKey,
		Listen:        devstack.ServiceListen(port),
	}); err != nil {
		return err
	}
	if ep.Services, err = devstack.WaitEdgeReady(ctx, ep.EdgeHTTP, 60*time.Second); err != nil {
		return err
	}
	var services strings.Builder
	for _, name := range slices.Sorted(maps.Keys(ep.Services)) {
		fmt.Fprintf(&services, "  %-16s http://%s   /healthz /readyz /metrics\n", name, ep.Services[name])
	}

	fmt.Fprintf(os.Stderr, `
VoltageEMS dev stack is running (Ctrl-C stops it):
  redis            %s
  cloud hub        http://%s/   fleet dashboard and API;  nats://%s (clients)  nats-leaf://%s (sites)
  edge appliance   http://%s/status   nats://%s
%s  voltsim control  http://%s/channels
Site HMI: http://%s/   Fleet dashboard: http://%s/ (the site's pages through the hub: #/sites/%s/overview)
The user admin has the password %s on the site and the cloud (kept in %s).
In another shell:
  export VOLTAGE_REDIS_URL=%s
  go run ./tools/cmd/voltctl status
  go run ./tools/cmd/voltctl point watch 1 T
  nats sub -s nats://%s 'ems.>'     (site heartbeats arriving at the hub)

`, ep.RedisURL, ep.HubHTTP, ep.HubNATS, ep.HubLeaf, ep.EdgeHTTP, ep.EdgeNATS, services.String(), ep.SimControl,
		ep.Services["apigateway"], ep.HubHTTP, ep.SiteID,
		ep.AdminPassword, filepath.Join(state, "admin-password"), ep.RedisURL, ep.HubNATS)
	if o.ready != nil {
		o.ready(ep)
	}

	select {
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "\nstopping ...")
		return nil
	case e := <-procs.Exited():
		return fmt.Errorf("%s exited: %v; its last output:\n%s", e.Proc.Name, e.Err, e.Proc.Tail())
	}
}
