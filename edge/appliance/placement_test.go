package appliance_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/voltageems/voltage/edge/appliance"
	"github.com/voltageems/voltage/services/comsrv"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/service"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/shared/uplink"
)

func TestParseServices(t *testing.T) {
	cases := []struct {
		in   string
		want []string // nil: every service
		err  string   // part of the error; "" for none
	}{
		{in: "", want: nil},
		{in: "  ", want: nil},
		{in: "all", want: nil},
		{in: "none", want: []string{}},
		{in: " none ", want: []string{}},
		{in: "comsrv", want: []string{"comsrv"}},
		{in: "netsrv, comsrv ,hissrv", want: []string{"comsrv", "hissrv", "netsrv"}}, // reporting order
		{in: "modsrv,modsrv,apigateway,", want: []string{"modsrv", "apigateway"}},
		{in: "comsrv,bogus", err: `unknown service "bogus"; the edge services are comsrv, modsrv, hissrv, rulesrv, alarmsrv, apigateway, netsrv`},
		{in: "Comsrv", err: `unknown service "Comsrv"`},
		{in: "none,comsrv", err: `"none" stands alone`},
		{in: "comsrv,all", err: `"all" stands alone`},
		{in: ",", err: "names no service"},
	}
	for _, c := range cases {
		got, err := appliance.ParseServices(c.in)
		if c.err != "" {
			var ce *service.ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseServices(%q) = %v, %v; want a *service.ConfigError with %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) || (got == nil) != (c.want == nil) {
			t.Errorf("ParseServices(%q) = %#v, %v; want %#v", c.in, got, err, c.want)
		}
	}
}

// TestApplianceRefusesBadServices: Config.Services naming an unknown service, or
// leaving out one that has no fixed address to be found at, is a configuration
// error before anything starts.
func TestApplianceRefusesBadServices(t *testing.T) {
	rd := testharness.StartRedis(t)
	cases := map[string]struct {
		services []string
		want     string
	}{
		"unknown":     {services: []string{"comsrv", "bogus"}, want: `unknown service "bogus"`},
		"external :0": {services: []string{"modsrv"}, want: `listen.comsrv "127.0.0.1:0": comsrv runs outside the appliance, so it needs a fixed port`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := writeSite(t, rd.URL(), `{url: "nats://127.0.0.1:0"}`) // every listener on port 0
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := appliance.Run(ctx, appliance.Config{Site: loadSite(t, dir), Services: c.services, HTTPAddr: "127.0.0.1:0",
				NATSStoreDir: t.TempDir(), DataDir: t.TempDir(), Log: testLogger()})
			var ce *service.ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Run = %v, want a *service.ConfigError with %q", err, c.want)
			}
		})
	}
}

// readyErrors is the appliance's /readyz: its status code and the failing checks.
func (a *runningAppliance) readyErrors() (int, map[string]string) {
	a.t.Helper()
	code, body := a.get("/readyz")
	var r struct {
		Errors map[string]string `json:"errors"`
	}
	if code != http.StatusOK {
		if err := json.Unmarshal(body, &r); err != nil {
			a.t.Fatalf("decode /readyz %s: %v", body, err)
		}
	}
	return code, r.Errors
}

// waitServiceInHeartbeat waits for a site heartbeat on sub that shows service
// name with the readiness want.
func waitServiceInHeartbeat(t *testing.T, sub *nats.Subscription, name string, want bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last []uplink.ServiceStatus
	for time.Now().Before(deadline) {
		msg, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			break
		}
		var hb uplink.Status
		if err := json.Unmarshal(msg.Data, &hb); err != nil {
			t.Fatalf("heartbeat %s: %v", msg.Data, err)
		}
		last = hb.Services
		i := slices.IndexFunc(hb.Services, func(s uplink.ServiceStatus) bool { return s.Name == name })
		if i >= 0 && hb.Services[i].Ready == want {
			return
		}
	}
	t.Fatalf("no heartbeat showing %s with ready=%v within 15 s; last services: %+v", name, want, last)
}

// uplinkHolds waits until the site's UPLINK stream holds a message on subject.
func uplinkHolds(t *testing.T, nc *nats.Conn, subject string) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	testharness.Eventually(t, 15*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, subjects.UplinkStream)
		if err != nil {
			return fmt.Errorf("stream %s: %w", subjects.UplinkStream, err)
		}
		if _, err := s.GetLastMsgForSubject(ctx, subject); err != nil {
			return fmt.Errorf("%s on %s: %w", subjects.UplinkStream, subject, err)
		}
		return nil
	})
}

// listenAt puts service name on a port nothing else takes meanwhile (it is bound
// later, by a process the appliance does not start) and returns the address.
func listenAt(t *testing.T, site *config.Config, name string) string {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(testharness.ReservedPort(t))
	site.Site.Listen[name] = addr
	return addr
}

// externalComsrv runs comsrv as the test's own, as its binary would, until the
// returned stop is called.
func externalComsrv(t *testing.T, site *config.Config, dir string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- comsrv.Run(ctx, comsrv.Config{Site: site, ConfigDir: dir,
			HTTPAddr: site.Site.ListenAddr("comsrv", service.DefaultAddrs["comsrv"]), Log: testLogger().With("component", "external comsrv")})
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("external comsrv: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("external comsrv did not stop within 10 s")
		}
	}
	t.Cleanup(stop)
	return stop
}

// TestApplianceWithExternalComsrv runs every service but comsrv in the appliance;
// comsrv runs on its own at its listen address. The appliance is not ready until
// comsrv answers there and again not once it stops; /status lists comsrv as
// external; comsrv's points reach UPLINK and its state the heartbeat.
func TestApplianceWithExternalComsrv(t *testing.T) {
	rd := testharness.StartRedis(t)
	dir := writeSite(t, rd.URL(), `{url: "nats://127.0.0.1:0"}`)
	site := loadSite(t, dir)
	comsrvAddr := listenAt(t, site, "comsrv")
	inProcess := slices.DeleteFunc(slices.Clone(edgeServices), func(n string) bool { return n == "comsrv" })
	a := startAppliance(t, appliance.Config{Site: site, ConfigDir: dir, Services: inProcess})

	if got := a.Services["comsrv"]; got == nil || got.String() != comsrvAddr {
		t.Errorf("Started gives comsrv at %v, want %s", got, comsrvAddr)
	}
	code, failing := a.readyErrors()
	if msg := failing["comsrv"]; code != http.StatusServiceUnavailable || !strings.Contains(msg, "comsrv runs as its own process and does not answer at "+comsrvAddr) {
		t.Errorf("/readyz without comsrv = %d %v, want comsrv not ready at %s", code, failing, comsrvAddr)
	}
	st := a.status()
	if len(st.Services) != len(edgeServices) {
		t.Errorf("/status services = %+v, want all %d", st.Services, len(edgeServices))
	}
	for _, name := range edgeServices {
		got := st.Services[name]
		if want := name != "comsrv"; got.InProcess != want || got.HTTP == "" || got.HTTP != a.Services[name].String() {
			t.Errorf("/status %s = %+v, want in_process %v at %v", name, got, want, a.Services[name])
		}
	}
	edgeConn, err := nats.Connect(a.NATSClientURL)
	if err != nil {
		t.Fatal(err)
	}
	defer edgeConn.Close()
	heartbeats, err := edgeConn.SubscribeSync(subjects.StatusUp(siteID))
	if err != nil {
		t.Fatal(err)
	}
	waitServiceInHeartbeat(t, heartbeats, "comsrv", false)

	stopComsrv := externalComsrv(t, site, dir)
	testharness.Eventually(t, 15*time.Second, func() error {
		if code, failing := a.readyErrors(); code != http.StatusOK {
			return fmt.Errorf("/readyz with comsrv running = %d %v", code, failing)
		}
		return nil
	})
	waitComsrvWrites(t, rd.Client(t))
	uplinkHolds(t, edgeConn, subjects.ChannelUp(siteID, 10, point.Telemetry))
	waitServiceInHeartbeat(t, heartbeats, "comsrv", true)

	stopComsrv()
	testharness.Eventually(t, 10*time.Second, func() error {
		code, failing := a.readyErrors()
		if code != http.StatusServiceUnavailable || !strings.Contains(failing["comsrv"], comsrvAddr) {
			return fmt.Errorf("/readyz after comsrv stopped = %d %v, want comsrv not ready at %s", code, failing, comsrvAddr)
		}
		return nil
	})
	waitServiceInHeartbeat(t, heartbeats, "comsrv", false)
	if got := a.status().Services["comsrv"]; got.InProcess || got.HTTP != comsrvAddr {
		t.Errorf("/status comsrv after it stopped = %+v", got)
	}
}

// TestApplianceWithNoServices: with none in process, the appliance is the
// embedded NATS server and the bridge. It starts without waiting for any service,
// reports every one as external and not ready, and still carries
// voltage:changes into UPLINK.
func TestApplianceWithNoServices(t *testing.T) {
	rd := testharness.StartRedis(t)
	dir := writeSite(t, rd.URL(), `{url: "nats://127.0.0.1:0"}`)
	site := loadSite(t, dir)
	addrs := map[string]string{}
	for _, name := range edgeServices {
		addrs[name] = listenAt(t, site, name)
	}
	a := startAppliance(t, appliance.Config{Site: site, ConfigDir: dir, Services: []string{}})

	st := a.status()
	code, failing := a.readyErrors()
	if code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with no service running = %d, want 503", code)
	}
	for _, name := range edgeServices {
		if got := a.Services[name]; got == nil || got.String() != addrs[name] {
			t.Errorf("Started gives %s at %v, want %s", name, got, addrs[name])
		}
		if got := st.Services[name]; got.InProcess || got.HTTP != addrs[name] {
			t.Errorf("/status %s = %+v, want external at %s", name, got, addrs[name])
		}
		if !strings.Contains(failing[name], name+" runs as its own process and does not answer at "+addrs[name]) {
			t.Errorf("/readyz says of %s: %q", name, failing[name])
		}
	}
	if _, ok := failing["nats"]; ok {
		t.Errorf("/readyz: embedded nats not ready: %v", failing)
	}

	edgeConn, err := nats.Connect(a.NATSClientURL)
	if err != nil {
		t.Fatal(err)
	}
	defer edgeConn.Close()
	heartbeats, err := edgeConn.SubscribeSync(subjects.StatusUp(siteID))
	if err != nil {
		t.Fatal(err)
	}
	writeChanges(t, rd.Client(t), 3)
	uplinkHolds(t, edgeConn, subjects.ChannelUp(siteID, 77, point.Telemetry))
	testharness.WaitFor(t, 10*time.Second, "the uplink to publish the 3 changes", func() bool {
		return a.status().Uplink["changes"].Published >= 3
	})
	// The heartbeat lists every service of the site, none of them ready.
	msg, err := heartbeats.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no heartbeat: %v", err)
	}
	var hb uplink.Status
	if err := json.Unmarshal(msg.Data, &hb); err != nil {
		t.Fatalf("heartbeat %s: %v", msg.Data, err)
	}
	var names []string
	for _, s := range hb.Services {
		names = append(names, s.Name)
		if s.Ready {
			t.Errorf("heartbeat says %s is ready with nothing running", s.Name)
		}
	}
	if !slices.Equal(names, edgeServices) {
		t.Errorf("heartbeat services = %v, want %v", names, edgeServices)
	}
}
