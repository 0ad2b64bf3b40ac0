package apigateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/openapi/client"
	"github.com/voltageems/voltage/services/alarmsrv"
	"github.com/voltageems/voltage/services/comsrv"
	"github.com/voltageems/voltage/services/hissrv"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/tools/sitetest"
)

// liveSite adds an alarm rule to the virtual site: telemetry 1 above 100.
var liveSite = sitetest.Merge(virtualSite, sitetest.Files{
	"alarmsrv/alarms.yaml": "alarms:\n  - {id: hot, kind: limit, channel: 1, type: T, point: 1, limits: {h: {value: 100, severity: major}}}\n",
})

// TestLiveThroughGeneratedClient drives a running site — comsrv, alarmsrv and
// hissrv in this process, the gateway in front — only through the generated Go
// client of openapi/client: login, read points, send a command and get its
// result, acknowledge an alarm, query history.
func TestLiveThroughGeneratedClient(t *testing.T) {
	site := sitetest.New(t, liveSite)
	// The virtual channel needs no simulator: comsrv alone executes its commands.
	com := sitetest.Run(t, "comsrv", "/readyz", func(ctx context.Context, bound func(net.Addr)) error {
		return comsrv.Run(ctx, comsrv.Config{Site: site.Config, ConfigDir: site.Dir, HTTPAddr: "127.0.0.1:0",
			Log: sitetest.Logger(t), ConsumerName: "comsrv-test", Bound: bound})
	})
	alarms := sitetest.Run(t, "alarmsrv", "/readyz", func(ctx context.Context, bound func(net.Addr)) error {
		return alarmsrv.Run(ctx, alarmsrv.Config{Site: site.Config, ConfigDir: site.Dir, HTTPAddr: "127.0.0.1:0", Log: sitetest.Logger(t), Bound: bound})
	})
	history := sitetest.Run(t, "hissrv", "/readyz", func(ctx context.Context, bound func(net.Addr)) error {
		return hissrv.Run(ctx, hissrv.Config{Site: site.Config, ConfigDir: site.Dir, HTTPAddr: "127.0.0.1:0", Log: sitetest.Logger(t),
			DataDir: t.TempDir(), Bound: bound})
	})
	g := startGateway(t, site, func(c *apigatewayConfig) {
		c.Services["alarmsrv"], c.Services["hissrv"], c.Services["comsrv"] = alarms.URL, history.URL, com.URL
	})
	ctx := t.Context()
	anon, err := client.NewClientWithResponses(g.url)
	if err != nil {
		t.Fatal(err)
	}

	// Login.
	lr, err := anon.LoginWithResponse(ctx, client.LoginJSONRequestBody{User: "admin", Password: adminPassword})
	if err != nil || lr.JSON200 == nil {
		t.Fatalf("login: %v %s", err, body(lr.Body))
	}
	access := lr.JSON200.AccessToken
	c, err := client.NewClientWithResponses(g.url, client.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+access)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}

	// Read points: a value written as comsrv writes it.
	site.WriteChannel(1, point.Telemetry, time.Now().UnixMilli(), point.Sample{ID: 2, Value: 42.5})
	// Realtime reads come from the gateway's mirror, current within the pub/sub delay.
	testharness.Eventually(t, 10*time.Second, func() error {
		pr, err := c.GetPointWithResponse(ctx, 1, client.GetPointParamsTypeT, 2)
		if err != nil || pr.JSON200 == nil || pr.JSON200.Value == nil || *pr.JSON200.Value != 42.5 || pr.JSON200.Quality != "good" {
			return fmt.Errorf("get point: %v %s", err, body(pr.Body))
		}
		return nil
	})
	refs := []client.PointRef{{Channel: 1, Type: client.PointRefTypeT, Point: 2}, {Channel: 1, Type: client.PointRefTypeT, Point: 99}}
	br, err := c.ReadPointsWithResponse(ctx, client.ReadPointsJSONRequestBody{Points: &refs})
	if err != nil || br.JSON200 == nil || br.JSON200.Points == nil || len(*br.JSON200.Points) != 2 || (*br.JSON200.Points)[1].Quality != "missing" {
		t.Fatalf("read points: %v %s", err, body(br.Body))
	}

	// Send a command (the virtual channel executes it) and get its result.
	wait := int64(20000)
	sr, err := c.SendCommandWithResponse(ctx, client.SendCommandJSONRequestBody{Channel: 1, Type: client.CommandInputBodyTypeA, Point: 1, Value: 55, WaitMs: &wait})
	if err != nil || sr.JSON202 == nil {
		t.Fatalf("send command: %v %d %s", err, sr.StatusCode(), body(sr.Body))
	}
	if sr.JSON202.Status != client.CommandResultStatusOk {
		t.Fatalf("command ended %+v", *sr.JSON202)
	}
	gr, err := c.GetCommandWithResponse(ctx, sr.JSON202.Id)
	if err != nil || gr.JSON200 == nil || gr.JSON200.Status != client.CommandResultStatusOk {
		t.Fatalf("get command: %v %s", err, body(gr.Body))
	}
	site.WaitValue(keyspace.ChannelPoints(1, point.Adjustment), "1", "55")

	// Acknowledge an alarm: telemetry 1 goes above its limit.
	site.WriteChannel(1, point.Telemetry, time.Now().UnixMilli(), point.Sample{ID: 1, Value: 150})
	var key string
	testharness.WaitFor(t, 20*time.Second, "alarm raised and listed through the gateway", func() bool {
		ar, err := c.ListAlarmsWithResponse(ctx, &client.ListAlarmsParams{})
		if err != nil || ar.StatusCode() != 200 {
			return false
		}
		key = firstAlarmKey(ar.Body)
		return key != ""
	})
	comment := "seen"
	ack, err := c.AckAlarmWithResponse(ctx, key, client.AckAlarmJSONRequestBody{Comment: &comment})
	if err != nil || ack.StatusCode() != 200 {
		t.Fatalf("ack: %v %d %s", err, ack.StatusCode(), body(ack.Body))
	}
	again, _ := c.AckAlarmWithResponse(ctx, key, client.AckAlarmJSONRequestBody{})
	if again.StatusCode() != http.StatusConflict {
		t.Fatalf("second ack: %d %s", again.StatusCode(), body(again.Body))
	}
	assertAudit(t, g, "alarm_acknowledged", "admin") // alarmsrv took the user from the gateway

	// Query history: hissrv stored the samples of telemetry 2.
	start := "now-1h"
	testharness.WaitFor(t, 20*time.Second, "history of comsrv:1:T:2 through the gateway", func() bool {
		hr, err := c.HistoryRangeWithResponse(ctx, &client.HistoryRangeParams{Point: []string{"comsrv:1:T:2"}, Start: &start})
		return err == nil && hr.StatusCode() == 200 && strings.Contains(string(hr.Body), "42.5")
	})
	// An engineer shelves the alarm and reloads alarmsrv; the operator may do neither.
	eng := g.user("enzo", "engineer")
	oper := g.user("olaf", "operator")
	g.expect(g.do("POST", "/alarms/"+key+"/shelve", oper, map[string]string{"duration": "30m"}), 403)
	g.expect(g.do("POST", "/alarms/"+key+"/shelve", eng, map[string]string{"duration": "eternity"}), 400)
	g.expect(g.do("POST", "/alarms/"+key+"/shelve", eng, map[string]string{"duration": "30m", "comment": "maintenance"}), 200)
	assertAudit(t, g, "alarm_shelved", "enzo")
	var rl struct {
		Results []struct {
			Service string
			OK      bool
			Error   string
		}
	}
	g.expect(g.do("POST", "/config/reload", eng, map[string]any{"services": []string{"alarmsrv", "modsrv"}}), 200).decode(t, &rl)
	if len(rl.Results) != 2 || !rl.Results[0].OK || rl.Results[1].OK || !strings.Contains(rl.Results[1].Error, "not reachable") {
		t.Fatalf("reload: %+v", rl)
	}
	g.expect(g.do("POST", "/config/reload", eng, map[string]any{"services": []string{"netsrv"}}), 422)
	assertAudit(t, g, "config_reload", "enzo")

	// Channel control: an operator restarts a link but may not disable it; an
	// engineer disables and enables it (written into channels.yaml by comsrv).
	oc := clientFor(t, g.url, g.login("olaf", "olaf-password").Access)
	rr, err := oc.RestartChannelWithResponse(ctx, 1)
	if err != nil || rr.JSON200 == nil || rr.JSON200.Id != 1 {
		t.Fatalf("restart channel: %v %s", err, body(rr.Body))
	}
	if dr, _ := oc.DisableChannelWithResponse(ctx, 1); dr.StatusCode() != 403 {
		t.Fatalf("operator disabled a channel: %d", dr.StatusCode())
	}
	ec := clientFor(t, g.url, g.login("enzo", "enzo-password").Access)
	dr, err := ec.DisableChannelWithResponse(ctx, 1)
	if err != nil || dr.JSON200 == nil || dr.JSON200.Enabled || dr.JSON200.State != "disabled" {
		t.Fatalf("disable channel: %v %s", err, body(dr.Body))
	}
	gc, err := ec.GetChannelWithResponse(ctx, 1)
	if err != nil || gc.JSON200 == nil || gc.JSON200.Enabled {
		t.Fatalf("channel after disable: %v %s", err, body(gc.Body))
	}
	if rr, _ := ec.RestartChannelWithResponse(ctx, 1); rr.StatusCode() != http.StatusConflict {
		t.Fatalf("restart of a disabled channel: %d %s", rr.StatusCode(), body(rr.Body))
	}
	er, err := ec.EnableChannelWithResponse(ctx, 1)
	if err != nil || er.JSON200 == nil || !er.JSON200.Enabled {
		t.Fatalf("enable channel: %v %s", err, body(er.Body))
	}
	if nf, _ := ec.EnableChannelWithResponse(ctx, 42); nf.StatusCode() != 404 {
		t.Fatalf("enable of an unknown channel: %d %s", nf.StatusCode(), body(nf.Body))
	}
	assertAudit(t, g, "channel_disable", "enzo")

	// A viewer's client is refused the command.
	g.user("vio", "viewer")
	vl, _ := anon.LoginWithResponse(ctx, client.LoginJSONRequestBody{User: "vio", Password: "vio-password"})
	vc, _ := client.NewClientWithResponses(g.url, client.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+vl.JSON200.AccessToken)
		return nil
	}))
	vr, err := vc.SendCommandWithResponse(ctx, client.SendCommandJSONRequestBody{Channel: 1, Type: client.CommandInputBodyTypeA, Point: 1, Value: 1})
	if err != nil || vr.StatusCode() != 403 || vr.ApplicationproblemJSON403 == nil {
		t.Fatalf("viewer command: %v %d %s", err, vr.StatusCode(), body(vr.Body))
	}
}

// clientFor is a generated client that sends access as its bearer token.
func clientFor(t *testing.T, url, access string) *client.ClientWithResponses {
	t.Helper()
	c, err := client.NewClientWithResponses(url, client.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+access)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func body(b []byte) string {
	if len(b) > 500 {
		b = b[:500]
	}
	return string(b)
}

// firstAlarmKey finds the key of the first alarm in alarmsrv's list, whatever
// its envelope.
func firstAlarmKey(b []byte) string {
	var list []struct {
		Key string `json:"key"`
	}
	if json.Unmarshal(b, &list) == nil && len(list) > 0 {
		return list[0].Key
	}
	var env struct {
		Alarms []struct {
			Key string `json:"key"`
		} `json:"alarms"`
	}
	if json.Unmarshal(b, &env) == nil && len(env.Alarms) > 0 {
		return env.Alarms[0].Key
	}
	return ""
}
