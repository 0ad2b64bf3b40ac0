package e2e

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/voltageems/voltage/cloud/hub"
	"github.com/voltageems/voltage/shared/auth"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/uplink"
	"github.com/voltageems/voltage/tools/sitetest"
)

const cloudAdminPassword = "cloud-admin-password-e2e"

// startHub runs the cloud hub (embedded NATS with JetStream, the fleet API and
// the embedded UI's fleet pages) on free ports.
func startHub(t *testing.T) hub.Endpoints {
	t.Helper()
	t.Setenv(auth.EnvAdminPassword, cloudAdminPassword)
	started := make(chan hub.Endpoints, 1)
	cfg := hub.Config{
		NATS:     hub.NATS{ClientAddr: "127.0.0.1:0", LeafAddr: "127.0.0.1:0", StoreDir: t.TempDir()},
		HTTP:     hub.HTTP{Addr: "127.0.0.1:0"},
		Log:      sitetest.Logger(t),
		AdminOut: io.Discard,
		Started:  func(e hub.Endpoints) { started <- e },
	}
	svc := sitetest.Go(t, "voltage-cloud", func(ctx context.Context) error { return hub.Run(ctx, cfg) })
	select {
	case e := <-started:
		return e
	case <-time.After(sitetest.StartTimeout):
		svc.Stop()
		t.Fatalf("the hub did not start within %s", sitetest.StartTimeout)
	}
	return hub.Endpoints{}
}

// heartbeats publishes a site's heartbeat, as an edge appliance does, every
// second until the test ends: the hub registers the site and shows it online.
func heartbeats(t *testing.T, natsURL string, st uplink.Status) {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatalf("connect to the hub's NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	beat := func() {
		st.TS = time.Now().UnixMilli()
		b, _ := json.Marshal(st)
		_ = nc.Publish(subjects.StatusUp(st.Site), b)
	}
	beat()
	sitetest.Go(t, "heartbeats", func(ctx context.Context) error {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
				beat()
			}
		}
	})
}

// TestFleetBrowser drives the fleet pages the cloud hub serves: log in to the
// hub, see a site that sends heartbeats online with its channels, open it, and
// see the fleet alarms (none); then the demo site joined to the hub (with its
// edge bridge and a gateway that trusts the hub): its key figures in the list,
// its own pages through the hub — overview, a setpoint, an alarm acknowledged —
// and a cloud viewer who sees them without any control.
func TestFleetBrowser(t *testing.T) {
	needNode(t)
	browser := chromiumPath(t)
	cs := startCloudSite(t)
	cs.cloudUsers(t)
	e := cs.hub
	heartbeats(t, e.ClientURL, uplink.Status{Site: "north-1", Name: "North plant", Version: "e2e",
		Services: []uplink.ServiceStatus{{Name: "comsrv", Ready: true}, {Name: "alarmsrv", Ready: true}},
		Channels: []uplink.ChannelStatus{{ID: 1, Name: "pv1", State: "up"}, {ID: 2, Name: "ess1", State: "down", LastError: "i/o timeout"}}})
	artifacts := filepath.Join(webDir(t), "test-artifacts")
	out, err := run(t.Context(), webDir(t), 4*time.Minute, []string{
		"VOLTAGE_URL=http://" + e.HTTP.String(),
		"VOLTAGE_ARTIFACTS=" + artifacts,
		"VOLTAGE_CHROMIUM=" + browser,
		"VOLTAGE_ADMIN_PASSWORD=" + cloudAdminPassword,
		"VOLTAGE_SITE_ID=" + cs.id,
		"VOLTAGE_VIEWER=viewer-web",
		"VOLTAGE_VIEWER_PASSWORD=viewer-web-password",
	}, "node", "e2e/fleet.mjs")
	if err != nil {
		t.Fatalf("fleet browser test: %v\n%s\n(screenshots in %s)", err, out, artifacts)
	}
	t.Log(out)
}
