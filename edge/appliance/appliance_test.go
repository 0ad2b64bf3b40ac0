package appliance_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/edge/appliance"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/service"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/shared/uplink"
)

// waitHeartbeat waits for a site heartbeat on sub and checks its content.
func waitHeartbeat(t *testing.T, sub *nats.Subscription, since time.Time) {
	t.Helper()
	msg, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no heartbeat on %s: %v", sub.Subject, err)
	}
	var hb uplink.Status
	if err := json.Unmarshal(msg.Data, &hb); err != nil {
		t.Fatalf("heartbeat %s: %v", msg.Data, err)
	}
	names := make([]string, 0, len(hb.Services))
	for _, s := range hb.Services {
		names = append(names, s.Name)
	}
	if hb.Site != siteID || hb.Name != "Site A" || hb.Version != service.Version || !slices.Equal(names[:min(len(names), len(edgeServices))], edgeServices) {
		t.Errorf("heartbeat = %+v", hb)
	}
	if len(hb.Channels) != 1 || hb.Channels[0].ID != 10 || hb.Channels[0].Name != "site_controls" {
		t.Errorf("heartbeat channels = %+v, want channel 10 site_controls", hb.Channels)
	}
	if ts := time.UnixMilli(hb.TS); ts.Before(since.Add(-time.Second)) || ts.After(time.Now().Add(time.Second)) {
		t.Errorf("heartbeat ts %v is not the time it was sent", ts)
	}
}

// waitComsrvWrites waits until comsrv, inside the appliance, has written the
// virtual channel's point into Redis.
func waitComsrvWrites(t *testing.T, rdb *redis.Client) {
	t.Helper()
	key := keyspace.ChannelPoints(10, point.Telemetry)
	testharness.Eventually(t, 10*time.Second, func() error {
		v, err := rdb.HGet(context.Background(), key, "1").Result()
		if err != nil || v != "42" {
			return fmt.Errorf("%s 1 = %q (%v), want 42", key, v, err)
		}
		return nil
	})
}

// TestApplianceJoinsHub runs the appliance against a hub: the heartbeat reaches a
// subscriber on the hub over the leaf link, comsrv writes Redis, the site's
// JetStream answers under its own domain from both sides, and cancelling stops
// everything.
func TestApplianceJoinsHub(t *testing.T) {
	rd := testharness.StartRedis(t)
	hub, leafURL := startHub(t, -1)
	hubConn := hub.Conn(t)
	sub, err := hubConn.SubscribeSync(subjects.StatusUp(siteID))
	if err != nil {
		t.Fatal(err)
	}
	dir := writeSite(t, rd.URL(), "{url: \"nats://127.0.0.1:0\", leaf_remote: \""+leafURL+"\"}")
	begin := time.Now()
	a := startAppliance(t, appliance.Config{Site: loadSite(t, dir), ConfigDir: dir})

	waitHeartbeat(t, sub, begin)
	waitComsrvWrites(t, rd.Client(t))

	st := a.status()
	if !st.NATS.LeafConnected || st.NATS.LeafRemote != leafURL || st.NATS.ClientURL != a.NATSClientURL || st.NATS.JetStreamDomain != siteID {
		t.Errorf("status nats = %+v", st.NATS)
	}
	if st.Site != siteID || len(st.Services) != len(edgeServices) {
		t.Errorf("status = %+v", st)
	}
	for _, name := range edgeServices {
		if got := st.Services[name].HTTP; got == "" || got != a.Services[name].String() {
			t.Errorf("status says %s listens on %q, Run reported %v", name, got, a.Services[name])
		}
	}
	if code, body := a.get("/readyz"); code != http.StatusOK {
		t.Errorf("GET /readyz = %d %s", code, body)
	}
	if code, body := a.get("/metrics"); !strings.Contains(string(body), "voltage_edge_leaf_connected 1") {
		t.Errorf("GET /metrics = %d, want voltage_edge_leaf_connected 1", code)
	}
	if code, _ := httpGet(t, "http://"+a.Services["comsrv"].String()+"/channels"); code != http.StatusOK {
		t.Errorf("comsrv GET /channels = %d", code)
	}

	// The site's JetStream is its own domain, reachable locally and from the hub.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	edgeConn, err := nats.Connect(a.NATSClientURL)
	if err != nil {
		t.Fatalf("connect to the edge at %s: %v", a.NATSClientURL, err)
	}
	defer edgeConn.Close()
	for name, nc := range map[string]*nats.Conn{"edge": edgeConn, "hub": hubConn} {
		js, err := jetstream.NewWithDomain(nc, siteID)
		if err != nil {
			t.Fatal(err)
		}
		info, err := js.AccountInfo(ctx)
		if err != nil {
			t.Errorf("%s: JetStream of domain %s: %v", name, siteID, err)
		} else if info.Domain != siteID {
			t.Errorf("%s: JetStream domain = %q, want %q", name, info.Domain, siteID)
		}
	}
	if js, _ := jetstream.New(edgeConn); js != nil {
		if info, err := js.AccountInfo(ctx); err != nil || info.Domain != siteID {
			t.Errorf("edge JetStream without a domain = %+v, %v; want the site's own", info, err)
		}
	}
	edgeConn.Close()

	err, took := a.stop()
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	if took > 5*time.Second {
		t.Errorf("stopping took %v, want < 5 s", took)
	}
	listeners := map[string]string{"http": a.HTTP.String(), "nats": hostOf(t, a.NATSClientURL)}
	for name, addr := range a.Services {
		listeners[name] = addr.String()
	}
	for name, addr := range listeners {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("%s listener %s still open after Run returned: %v", name, addr, err)
			continue
		}
		l.Close()
	}
	testharness.WaitFor(t, 5*time.Second, "the hub to see the leaf node leave", func() bool { return hub.Server.NumLeafNodes() == 0 })
}

// TestApplianceWithoutHub checks that a site works with its hub away, and joins it
// on its own once the hub appears.
func TestApplianceWithoutHub(t *testing.T) {
	rd := testharness.StartRedis(t)
	leafPort := testharness.ReservedPort(t) // nothing listens here yet, and no port-0 socket will take it
	leafURL := "nats-leaf://127.0.0.1:" + strconv.Itoa(leafPort)
	dir := writeSite(t, rd.URL(), "{url: \"nats://127.0.0.1:0\", leaf_remote: \""+leafURL+"\"}")
	a := startAppliance(t, appliance.Config{Site: loadSite(t, dir), ConfigDir: dir})

	waitComsrvWrites(t, rd.Client(t))
	if code, body := a.get("/readyz"); code != http.StatusOK {
		t.Errorf("GET /readyz without a hub = %d %s, want 200", code, body)
	}
	if st := a.status(); st.NATS.LeafConnected {
		t.Errorf("status says the leaf is connected with no hub: %+v", st.NATS)
	}
	// The heartbeat still goes out on the site's own server.
	edgeConn, err := nats.Connect(a.NATSClientURL)
	if err != nil {
		t.Fatal(err)
	}
	defer edgeConn.Close()
	local, err := edgeConn.SubscribeSync(subjects.StatusUp(siteID))
	if err != nil {
		t.Fatal(err)
	}
	waitHeartbeat(t, local, time.Now())

	// The hub comes up on the configured port: the link comes up by itself.
	hub, _ := startHub(t, leafPort)
	remote, err := hub.Conn(t).SubscribeSync(subjects.StatusUp(siteID))
	if err != nil {
		t.Fatal(err)
	}
	testharness.WaitFor(t, 15*time.Second, "the leaf link to come up", func() bool { return a.status().NATS.LeafConnected })
	waitHeartbeat(t, remote, time.Now())
}

// TestApplianceRefusesBadConfig checks that what the appliance cannot run with is a
// configuration error before anything starts.
func TestApplianceRefusesBadConfig(t *testing.T) {
	rd := testharness.StartRedis(t)
	cases := map[string]struct{ nats, uplink, want string }{
		"tls client url":     {nats: `{url: "tls://127.0.0.1:4222"}`, want: "nats.url"},
		"missing creds":      {nats: `{url: "nats://127.0.0.1:0", leaf_remote: "nats-leaf://127.0.0.1:7422", credentials: /nonexistent/site.creds}`, want: "nats.credentials"},
		"creds without leaf": {nats: `{url: "nats://127.0.0.1:0", credentials: /nonexistent/site.creds}`, want: "nats.leaf_remote"},
		"missing hub ca":     {nats: `{url: "nats://127.0.0.1:0", leaf_remote: "tls://127.0.0.1:7422", tls: {ca_file: /nonexistent/ca.pem}}`, want: "nats.tls.ca_file"},
		"bad uplink.yaml":    {nats: `{url: "nats://127.0.0.1:0"}`, uplink: "downlink:\n  allow:\n    - {channel: 10, type: T, points: [1]}\n", want: "uplink.yaml:3:27: downlink.allow[0].type"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := writeSite(t, rd.URL(), c.nats)
			if c.uplink != "" {
				writeFile(t, filepath.Join(dir, "edge", "uplink.yaml"), c.uplink)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := appliance.Run(ctx, appliance.Config{Site: loadSite(t, dir), HTTPAddr: "127.0.0.1:0", NATSStoreDir: t.TempDir(), DataDir: t.TempDir(), Log: testLogger()})
			var ce *service.ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Run = %v, want a *service.ConfigError about %s", err, c.want)
			}
		})
	}
}

// TestSiteTLSKeysAreChecked: a client certificate without its key, or TLS
// settings without a hub, are errors of site.yaml at their position.
func TestSiteTLSKeysAreChecked(t *testing.T) {
	for nats, want := range map[string]string{
		`{leaf_remote: "tls://hub:7422", tls: {cert_file: /etc/site.pem}}`: "site.yaml:4:56: nats.tls: cert_file and key_file go together",
		`{tls: {ca_file: /etc/ca.pem}}`:                                    "site.yaml:4:23: nats.tls: set for the leaf link, but nats.leaf_remote is not set",
	} {
		dir := writeSite(t, "redis://127.0.0.1:1/0", nats)
		_, err := config.Load(dir)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("nats: %s: err = %v, want %q", nats, err, want)
		}
	}
}

// TestApplianceNATSPortInUse checks that a taken NATS port is a start error naming
// it (the machine may run its own NATS on 4222).
func TestApplianceNATSPortInUse(t *testing.T) {
	rd := testharness.StartRedis(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := writeSite(t, rd.URL(), "{url: \"nats://"+taken.Addr().String()+"\"}")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = appliance.Run(ctx, appliance.Config{Site: loadSite(t, dir), HTTPAddr: "127.0.0.1:0", NATSStoreDir: t.TempDir(), DataDir: t.TempDir(), Log: testLogger()})
	_, port, _ := net.SplitHostPort(taken.Addr().String())
	if err == nil || !strings.Contains(err.Error(), port) || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Run = %v, want an error naming port %s in use", err, port)
	}
}

// TestApplianceStopsWhenAPartFails checks that a failing part (the appliance's HTTP
// server refusing its port) stops the whole appliance, comsrv included, with that
// error instead of leaving it half up.
func TestApplianceStopsWhenAPartFails(t *testing.T) {
	rd := testharness.StartRedis(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := writeSite(t, rd.URL(), `{url: "nats://127.0.0.1:0"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = appliance.Run(ctx, appliance.Config{Site: loadSite(t, dir), HTTPAddr: taken.Addr().String(), NATSStoreDir: t.TempDir(), DataDir: t.TempDir(), Log: testLogger()})
	if err == nil || ctx.Err() != nil || !strings.HasPrefix(err.Error(), "http:") || !strings.Contains(err.Error(), taken.Addr().String()) {
		t.Errorf("Run = %v (ctx %v), want the HTTP listen error", err, ctx.Err())
	}
}

// TestApplianceReloadReachesComsrv checks that a reload signal reaches the embedded
// comsrv: a channel added to the folder starts writing.
func TestApplianceReloadReachesComsrv(t *testing.T) {
	rd := testharness.StartRedis(t)
	dir := writeSite(t, rd.URL(), `{url: "nats://127.0.0.1:0"}`)
	reload := make(chan struct{}, 1)
	startAppliance(t, appliance.Config{Site: loadSite(t, dir), ConfigDir: dir, Reload: reload})
	rdb := rd.Client(t)
	waitComsrvWrites(t, rdb)

	writeFile(t, dir+"/comsrv/channels.yaml", `channels:
  - id: 10
    name: site_controls
    protocol: virtual
    parameters:
      poll_interval_ms: 50
      generators: [{type: T, point: 1, kind: constant, value: 42}]
  - id: 11
    name: added
    protocol: virtual
    parameters:
      poll_interval_ms: 50
      generators: [{type: T, point: 1, kind: constant, value: 7}]
`)
	writeFile(t, dir+"/comsrv/11/telemetry.csv", "point_id,signal_name,scale,offset,unit,reverse,data_type\n1,added,1,0,,0,float\n")
	reload <- struct{}{}
	key := keyspace.ChannelPoints(11, point.Telemetry)
	testharness.Eventually(t, 10*time.Second, func() error {
		if v, err := rdb.HGet(context.Background(), key, "1").Result(); v != "7" {
			return fmt.Errorf("%s 1 = %q (%v), want 7 after the reload", key, v, err)
		}
		return nil
	})
}

// TestApplianceReloadsUplinkYAML: a reload signal puts a new edge/uplink.yaml in
// force; a command from the hub, refused by the empty allow-list before, now
// passes it (and stops at the next check: channel 10 has no A point).
func TestApplianceReloadsUplinkYAML(t *testing.T) {
	rd := testharness.StartRedis(t)
	hub, leafURL := startHub(t, -1)
	hubConn := hub.Conn(t)
	dir := writeSite(t, rd.URL(), `{url: "nats://127.0.0.1:0", leaf_remote: "`+leafURL+`"}`)
	reload := make(chan struct{}, 1)
	a := startAppliance(t, appliance.Config{Site: loadSite(t, dir), ConfigDir: dir, Reload: reload})
	testharness.WaitFor(t, 15*time.Second, "the leaf link to come up", func() bool { return a.status().NATS.LeafConnected })
	ask := func() string {
		var reply uplink.CommandReply
		testharness.Eventually(t, 10*time.Second, func() error { // until the site's interest reached the hub
			m, err := hubConn.Request(subjects.DownCommand(siteID), []byte(`{"channel":10,"type":"A","point":1,"value":1,"user":"ops"}`), 5*time.Second)
			if err != nil {
				return err
			}
			return json.Unmarshal(m.Data, &reply)
		})
		return reply.Result.Error
	}
	if got := ask(); !strings.Contains(got, "allow-list") {
		t.Fatalf("before the reload: %q, want refused by the allow-list", got)
	}
	writeFile(t, filepath.Join(dir, "edge", "uplink.yaml"), "stream: {max_mb: 64}\ndownlink: {allow: [{channel: 10, type: A, all: true}]}\n")
	reload <- struct{}{}
	testharness.Eventually(t, 10*time.Second, func() error {
		if got := ask(); !strings.Contains(got, "channel 10 has no A point 1") {
			return fmt.Errorf("after the reload: %q", got)
		}
		return nil
	})
}
