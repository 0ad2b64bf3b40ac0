package apigateway_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/voltageems/voltage/services/comsrv"
	"github.com/voltageems/voltage/services/modsrv"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/tools/sitetest"
)

// modelSite routes an inverter's power_limit action to the virtual channel's
// adjustment point 1.
var modelSite = sitetest.Merge(virtualSite, sitetest.Files{
	"modsrv/instances.yaml": "instances:\n  - {id: 2, name: pv1, product: pv_inverter, properties: {rated_power: 100}}\n",
	"modsrv/instances/pv1/channel_routing.csv": "channel_id,channel_type,channel_point_id,instance_type,instance_point_id,description\n" +
		"1,T,1,M,active_power,\n1,A,1,A,power_limit,\n",
})

// TestInstanceActionThroughModsrv runs comsrv and modsrv in process: an operator's
// action goes through inst:actions, modsrv's limits and routing, and comsrv's
// execution; its result comes back in the answer. A viewer may read the instance
// but not act.
func TestInstanceActionThroughModsrv(t *testing.T) {
	site := sitetest.New(t, modelSite)
	sitetest.Run(t, "comsrv", "/readyz", func(ctx context.Context, bound func(net.Addr)) error {
		return comsrv.Run(ctx, comsrv.Config{Site: site.Config, ConfigDir: site.Dir, HTTPAddr: "127.0.0.1:0",
			Log: sitetest.Logger(t), ConsumerName: "comsrv-test", Bound: bound})
	})
	mod := sitetest.Run(t, "modsrv", "/readyz", func(ctx context.Context, bound func(net.Addr)) error {
		return modsrv.Run(ctx, modsrv.Config{Site: site.Config, ConfigDir: site.Dir, HTTPAddr: "127.0.0.1:0",
			Log: sitetest.Logger(t), ConsumerName: "modsrv-test", Bound: bound})
	})
	g := startGateway(t, site, func(c *apigatewayConfig) { c.Services["modsrv"] = mod.URL })
	op := g.user("oscar", "operator")
	viewer := g.user("val", "viewer")

	r := g.expect(g.do("GET", "/instances/pv1", viewer, nil), 200)
	if !strings.Contains(string(r.body), "power_limit") {
		t.Fatalf("instance: %s", r.body)
	}
	g.expect(g.do("GET", "/instances/nope", viewer, nil), 404)
	g.expect(g.do("POST", "/instances/pv1/actions/power_limit", viewer, map[string]any{"value": 50}), 403)

	var res struct{ ID, Status, Error string }
	g.expect(g.do("POST", "/instances/pv1/actions/power_limit", op, map[string]any{"value": 50, "wait_ms": 20000}), 200).decode(t, &res)
	if res.Status != "ok" {
		t.Fatalf("action: %+v", res)
	}
	site.WaitValue(keyspace.ChannelPoints(1, point.Adjustment), "1", "50")
	g.expect(g.do("POST", "/instances/pv1/actions/no_such_action", op, map[string]any{"value": 1, "wait_ms": 20000}), 200).decode(t, &res)
	if res.Status != "rejected" || res.Error == "" {
		t.Fatalf("unknown action: %+v", res)
	}
	assertAudit(t, g, "command_submitted", "oscar")
}
