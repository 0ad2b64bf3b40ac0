package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/redisx"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/tools/devstack"
)

// TestDevStackRunsTheDemoSite runs what `go tool task dev` runs, on the demo site
// with free ports only, and checks data flows device → comsrv → Redis and the edge
// heartbeat reaches the cloud hub over the leaf link; then stops it like Ctrl-C.
func TestDevStackRunsTheDemoSite(t *testing.T) {
	site := demoSiteWithFreePorts(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan endpoints, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, options{configDir: site, stateDir: t.TempDir(), out: testOutput(t), ready: func(e endpoints) { ready <- e }},
			slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	var ep endpoints
	select {
	case ep = <-ready:
	case err := <-done:
		t.Fatalf("dev stack stopped at start: %v", err)
	case <-time.After(3 * time.Minute):
		t.Fatal("dev stack not up within 3 minutes (building included)")
	}

	rdb, err := redisx.Connect(ctx, ep.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	// The battery's state of charge (channel 2, point 101) comes from voltsim's profile.
	testharness.Eventually(t, 30*time.Second, func() error {
		v, err := rdb.HGet(ctx, keyspace.ChannelPoints(2, point.Telemetry), "101").Float64()
		if err != nil {
			return err
		}
		if v <= 0 || v > 100 {
			return fmt.Errorf("battery SOC %v outside 0..100", v)
		}
		return nil
	})
	for _, ch := range []uint32{1, 2, 3, 4, 5, 6, 7} { // Modbus TCP, IEC 104, RTU over TCP, CAN, GPIO
		testharness.Eventually(t, 30*time.Second, func() error {
			if st := rdb.HGet(ctx, keyspace.ChannelStatus(ch), "state").Val(); st != "up" {
				return fmt.Errorf("channel %d state %q", ch, st)
			}
			return nil
		})
	}

	// modsrv, inside the edge appliance, routes the devices into the instances.
	testharness.Eventually(t, 30*time.Second, func() error {
		if n := rdb.HLen(ctx, keyspace.InstanceMeasurements(2)).Val(); n == 0 {
			return fmt.Errorf("instance 2 (pv1) has no measurements yet")
		}
		return nil
	})

	// The API gateway, the one public door: log in as the dev admin, read points.
	gw := "http://" + ep.Services["apigateway"]
	login, err := http.Post(gw+"/auth/login", "application/json",
		strings.NewReader(`{"user":"admin","password":"`+ep.AdminPassword+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(login.Body).Decode(&tok); err != nil || login.StatusCode != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("gateway login: %d, %v", login.StatusCode, err)
	}
	login.Body.Close()
	req, _ := http.NewRequest(http.MethodGet, gw+"/points?pattern=2:T:*", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	pts, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(pts.Body)
	pts.Body.Close()
	if pts.StatusCode != http.StatusOK || !strings.Contains(string(body), `"quality"`) {
		t.Fatalf("gateway GET /points: %d %.300s", pts.StatusCode, body)
	}

	nc, err := nats.Connect("nats://" + ep.HubNATS)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync(subjects.StatusUp("demo-site"))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(30 * time.Second)
	if err != nil {
		t.Fatalf("no site heartbeat at the hub: %v", err)
	}
	var hb struct{ Site string }
	if err := json.Unmarshal(msg.Data, &hb); err != nil || hb.Site != "demo-site" {
		t.Fatalf("heartbeat %s (%v)", msg.Data, err)
	}

	// The cloud: the site joined with its leaf credentials, its data arrives through
	// UPLINK at the fleet API, and a command from the cloud reaches the simulated
	// device and its result returns; a point outside the site's allow-list is refused
	// at the edge.
	cloud := "http://" + ep.HubHTTP
	ctoken := apiLogin(t, cloud, ep.AdminPassword)
	testharness.Eventually(t, 60*time.Second, func() error {
		var vals struct {
			Values []struct {
				Key   string   `json:"key"`
				Point string   `json:"point"`
				Value *float64 `json:"value"`
			} `json:"values"`
		}
		if code, body := apiCall(t, cloud, ctoken, "GET", "/sites/demo-site/values?key=comsrv:2:T", "", &vals); code != 200 {
			return fmt.Errorf("cloud values: %d %.200s", code, body)
		}
		for _, v := range vals.Values {
			if v.Point == "101" && v.Value != nil && *v.Value > 0 && *v.Value <= 100 {
				return nil
			}
		}
		return fmt.Errorf("battery SOC (2:T:101) not at the cloud yet (%d values)", len(vals.Values))
	})
	var reply struct {
		Result struct {
			Status string `json:"status"`
			Error  string `json:"error"`
		} `json:"result"`
	}
	if code, body := apiCall(t, cloud, ctoken, "POST", "/sites/demo-site/commands",
		`{"channel":1,"type":"A","point":1,"value":55,"wait_ms":10000}`, &reply); code != 200 || reply.Result.Status != "ok" {
		t.Fatalf("cloud command: %d %s", code, body)
	}
	var writes []simWrite
	if code, body := apiCall(t, "http://"+ep.SimControl, "", "GET", "/channels/1/writes", "", &writes); code != 200 ||
		!slices.Contains(writes, simWrite{Type: "A", Point: 1, Value: 55}) {
		t.Fatalf("the simulated PV inverter did not receive the cloud's setpoint: %d %s", code, body)
	}
	if code, body := apiCall(t, cloud, ctoken, "POST", "/sites/demo-site/commands",
		`{"channel":2,"type":"C","point":1,"value":1}`, &reply); code != 200 || reply.Result.Status != "rejected" {
		t.Fatalf("a command outside the allow-list: %d %s", code, body)
	}
	// The site's own API through the hub (the fleet dashboard's drill-in): the site
	// trusts the dev hub's delegation key.
	var remote struct {
		Points []struct{ Point uint32 } `json:"points"`
	}
	if code, body := apiCall(t, cloud, ctoken, "GET", "/sites/demo-site/api/points?pattern=2:T:*", "", &remote); code != 200 || len(remote.Points) == 0 {
		t.Fatalf("the site's API through the hub: %d %.300s", code, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev stack stopped with error: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev stack did not stop within 30 s")
	}
}

// simWrite is a write voltsim's control API lists (without its time).
type simWrite struct {
	Type  string  `json:"type"`
	Point uint32  `json:"point"`
	Value float64 `json:"value"`
}

// apiLogin logs in to a Huma API (the site gateway or the cloud) as admin.
func apiLogin(t *testing.T, base, password string) string {
	t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if code, body := apiCall(t, base, "", "POST", "/auth/login", `{"user":"admin","password":"`+password+`"}`, &tok); code != 200 || tok.AccessToken == "" {
		t.Fatalf("login at %s: %d %s", base, code, body)
	}
	return tok.AccessToken
}

// apiCall sends a JSON request and decodes a JSON answer into out (when not nil).
func apiCall(t *testing.T, base, token, method, path, body string, out any) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %.300s", method, path, err, b)
		}
	}
	return resp.StatusCode, string(b)
}

// demoSiteWithFreePorts copies config/ and moves its devices to free ports.
func demoSiteWithFreePorts(t *testing.T) string {
	root, err := devstack.WorkspaceRoot()
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(root, "config")
	dst := t.TempDir()
	err = filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		return devstack.WriteFile(filepath.Join(dst, rel), string(b))
	})
	if err != nil {
		t.Fatal(err)
	}
	chans := filepath.Join(dst, "comsrv", "channels.yaml")
	b, err := os.ReadFile(chans)
	if err != nil {
		t.Fatal(err)
	}
	// Every device port of the demo site (150xx) moves to a free one.
	s := regexp.MustCompile(`port: 150\d\d\b`).ReplaceAllStringFunc(string(b), func(string) string {
		return "port: " + strconv.Itoa(testharness.FreePort(t))
	})
	if s == string(b) {
		t.Fatal("demo channels.yaml has no device port 150xx any more; update this test")
	}
	// The simulated GPIO board and the CAN bus get their own place too.
	s = strings.ReplaceAll(s, "/tmp/voltage-demo/", t.TempDir()+"/")
	s = regexp.MustCompile(`"239\.64\.142\.206:150\d\d"`).ReplaceAllString(s, `"239.64.142.206:`+strconv.Itoa(testharness.FreePort(t))+`"`)
	if err := os.WriteFile(chans, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

func testOutput(t *testing.T) io.Writer {
	if testing.Verbose() {
		return os.Stdout
	}
	return io.Discard
}
