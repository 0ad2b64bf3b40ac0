package apigateway_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
)

type pointsReply struct {
	Points []struct {
		Channel uint32
		Type    string
		Point   uint32
		Value   *float64
		Quality string
		TS      int64
	}
	NextAfter string `json:"next_after"`
}

func TestPointReads(t *testing.T) {
	g := newGateway(t)
	tok := g.user("pia", "viewer")
	ts := time.Now().UnixMilli()
	g.site.WriteChannel(1, point.Telemetry, ts, point.Sample{ID: 1, Value: 10}, point.Sample{ID: 2, Value: 20, Quality: point.Stale})
	g.site.WriteChannel(1, point.Signal, ts, point.Sample{ID: 1, Value: 1})
	g.waitPoint(tok, "/points/1/S/1") // published after the telemetry: both are in

	var one struct {
		Value   float64
		Quality string
		TS      int64
	}
	g.expect(g.do("GET", "/points/1/T/2", tok, nil), 200).decode(t, &one)
	if one.Value != 20 || one.Quality != "stale" || one.TS != ts {
		t.Fatalf("point 1:T:2 = %+v", one)
	}
	g.expect(g.do("GET", "/points/1/T/9", tok, nil), 404)

	var all pointsReply
	g.expect(g.do("GET", "/points?pattern="+url.QueryEscape("*:*:*"), tok, nil), 200).decode(t, &all)
	if len(all.Points) != 3 || all.NextAfter != "" {
		t.Fatalf("*:*:* = %+v", all)
	}
	var byID pointsReply
	g.expect(g.do("GET", "/points?pattern=1:*:001", tok, nil), 200).decode(t, &byID)
	if len(byID.Points) != 2 || byID.Points[0].Type != "T" || byID.Points[1].Type != "S" {
		t.Fatalf("1:*:001 = %+v", byID)
	}

	// Pages: 2 values per page, in channel, type, point order.
	var got []string
	after := ""
	for range 5 {
		var page pointsReply
		g.expect(g.do("GET", "/points?pattern=*:*:*&limit=2&after="+after, tok, nil), 200).decode(t, &page)
		for _, p := range page.Points {
			got = append(got, fmt.Sprintf("%d:%s:%d", p.Channel, p.Type, p.Point))
		}
		if page.NextAfter == "" {
			break
		}
		after = page.NextAfter
	}
	if fmt.Sprint(got) != "[1:T:1 1:T:2 1:S:1]" {
		t.Fatalf("pages gave %v", got)
	}

	var batch pointsReply
	g.expect(g.do("POST", "/points/read", tok, map[string]any{"points": []map[string]any{
		{"channel": 1, "type": "S", "point": 1}, {"channel": 1, "type": "T", "point": 1}, {"channel": 7, "type": "T", "point": 1},
	}}), 200).decode(t, &batch)
	if len(batch.Points) != 3 || *batch.Points[0].Value != 1 || *batch.Points[1].Value != 10 ||
		batch.Points[2].Value != nil || batch.Points[2].Quality != "missing" {
		t.Fatalf("batch = %+v", batch)
	}
}

func TestInstanceMeasurementsAndSite(t *testing.T) {
	g := newGateway(t)
	tok := g.user("ivan", "viewer")
	w := statestore.NewWriter(g.site.RDB, 0)
	err := w.Write(t.Context(), statestore.Batch{Key: keyspace.InstanceMeasurements(5), TSKey: keyspace.InstanceMeasurementTimestamps(5),
		QualityKey: keyspace.InstanceMeasurementQuality(5), Samples: []point.Sample{{ID: 3, Value: 7.5}}})
	if err != nil {
		t.Fatal(err)
	}
	g.site.RDB.HSet(t.Context(), keyspace.InstanceNames, "pcs1", "5")
	for _, ref := range []string{"5", "pcs1"} {
		var m struct {
			Instance     uint32
			Measurements []struct {
				Point uint32
				Value float64
			}
		}
		g.expect(g.do("GET", "/instances/"+ref+"/measurements", tok, nil), 200).decode(t, &m)
		if m.Instance != 5 || len(m.Measurements) != 1 || m.Measurements[0].Value != 7.5 {
			t.Fatalf("%s: %+v", ref, m)
		}
	}
	g.expect(g.do("GET", "/instances/nope/measurements", tok, nil), 404)

	var site struct {
		ID       string
		Services []struct{ Name string }
		Channels []struct {
			ID     uint32
			Status map[string]string
		}
	}
	g.site.RDB.HSet(t.Context(), keyspace.ChannelStatus(1), "state", "up")
	g.expect(g.do("GET", "/site", tok, nil), 200).decode(t, &site)
	if site.ID != "gw-site" || len(site.Channels) != 1 || site.Channels[0].Status["state"] != "up" {
		t.Fatalf("site = %+v", site)
	}
	found := false
	for _, s := range site.Services {
		found = found || s.Name == "apigateway"
	}
	if !found {
		t.Fatalf("the gateway's own heartbeat is not listed: %+v", site.Services)
	}
	// A service that is not running answers 502, as problem+json.
	g.expect(g.do("GET", "/alarms", tok, nil), 502)
}

func TestRecentCommandsAndAuditLog(t *testing.T) {
	g := newGateway(t)
	op := g.user("omar", "operator")
	for v := range 3 {
		g.expect(g.do("POST", "/commands", op, map[string]any{"channel": 1, "type": "C", "point": 1, "value": v % 2}), 202)
	}
	var recent struct {
		Commands []struct{ ID, User, Target, Value string }
	}
	g.expect(g.do("GET", "/commands?limit=2", op, nil), 200).decode(t, &recent)
	if len(recent.Commands) != 2 || recent.Commands[0].User != "omar" || recent.Commands[0].Target != "1:C:1" || recent.Commands[0].Value != "0" {
		t.Fatalf("recent = %+v", recent)
	}
	var res struct{ Status string }
	g.expect(g.do("GET", "/commands/"+recent.Commands[0].ID, op, nil), 200).decode(t, &res)
	if res.Status != "pending" {
		t.Fatalf("command = %+v", res)
	}
	g.expect(g.do("GET", "/commands/nope", op, nil), 404)

	adm := g.admin()
	var page struct {
		Entries []struct {
			ID     string
			Fields map[string]string
		}
		NextBefore string `json:"next_before"`
	}
	g.expect(g.do("GET", "/audit?limit=2", adm, nil), 200).decode(t, &page)
	if len(page.Entries) != 2 || page.Entries[0].Fields["action"] != "login" || page.NextBefore == "" {
		t.Fatalf("audit page = %+v", page)
	}
	var older struct {
		Entries []struct{ ID string }
	}
	g.expect(g.do("GET", "/audit?limit=1000&before="+page.NextBefore, adm, nil), 200).decode(t, &older)
	if len(older.Entries) == 0 || older.Entries[0].ID >= page.NextBefore {
		t.Fatalf("older page = %+v", older)
	}
	g.expect(g.do("GET", "/audit?before=../../x", adm, nil), 422)
}

// TestRecreatedUserDoesNotReviveTokens: a user deleted and created again under
// the same name does not inherit the old user's tokens.
func TestRecreatedUserDoesNotReviveTokens(t *testing.T) {
	g := newGateway(t)
	adm := g.admin()
	old := g.user("rita", "engineer")
	g.expect(g.do("DELETE", "/users/rita", adm, nil), 204)
	g.expect(g.do("POST", "/users", adm, map[string]string{"name": "rita", "role": "engineer", "password": "another-password"}), 201)
	waitStatus(t, g, "GET", "/auth/me", old, 401)
}

// waitPoint waits until the gateway serves path (a point just written: realtime
// reads come from a mirror that is current within the pub/sub delay).
func (g *gw) waitPoint(token, path string) {
	g.t.Helper()
	testharness.WaitFor(g.t, 10*time.Second, path+" served", func() bool {
		return g.do("GET", path, token, nil).status == 200
	})
}

// TestChannelPoints lists a channel's point tables with live values: names,
// units and limits from the site folder, values from the state store.
func TestChannelPoints(t *testing.T) {
	g := newGateway(t)
	tok := g.user("cora", "viewer")
	g.site.WriteChannel(1, point.Telemetry, 1000, point.Sample{ID: 1, Value: 42})
	var all struct {
		Channel uint32
		Points  []struct {
			Type, Name, Unit, Quality, ControlType string `json:",omitempty"`
			Point                                  uint32
			Value                                  *float64
			Min, Max                               *float64
		}
	}
	g.expect(g.do("GET", "/channels/1/points", tok, nil), 200).decode(t, &all)
	if all.Channel != 1 || len(all.Points) != 5 {
		t.Fatalf("points of channel 1: %+v", all)
	}
	p := all.Points[0]
	if p.Type != "T" || p.Point != 1 || p.Name != "p" || p.Unit != "kW" || p.Value == nil || *p.Value != 42 || p.Quality != "good" {
		t.Fatalf("1:T:1 = %+v", p)
	}
	if q := all.Points[1]; q.Name != "q" || q.Value != nil || q.Quality != "missing" {
		t.Fatalf("1:T:2 (never written) = %+v", q)
	}
	a := all.Points[4]
	if a.Type != "A" || a.Min == nil || *a.Min != 0 || a.Max == nil || *a.Max != 100 {
		t.Fatalf("1:A:1 limits = %+v", a)
	}
	var only struct{ Points []struct{ Type string } }
	g.expect(g.do("GET", "/channels/1/points?type=S", tok, nil), 200).decode(t, &only)
	if len(only.Points) != 1 || only.Points[0].Type != "S" {
		t.Fatalf("type=S: %+v", only)
	}
	g.expect(g.do("GET", "/channels/9/points", tok, nil), 404)
	g.expect(g.do("GET", "/channels/1/points?type=X", tok, nil), 422)
}

// A command sent with the client's own id runs once however often it is sent
// again (a retry after a lost answer); the id cannot be reused for another
// command.
func TestCommandWithClientID(t *testing.T) {
	g := newGateway(t)
	op := g.user("olga", "operator")
	rdb := g.site.RDB
	send := map[string]any{"channel": 1, "type": "C", "point": 1, "value": 1, "id": "olga-0001"}
	var first, again struct{ ID, Status string }
	g.expect(g.do("POST", "/commands", op, send), 202).decode(t, &first)
	g.expect(g.do("POST", "/commands", op, send), 202).decode(t, &again)
	if first.ID != "olga-0001" || again.ID != first.ID || again.Status == "" {
		t.Fatalf("answers %+v and %+v; want the client's id in both", first, again)
	}
	if n := rdb.XLen(t.Context(), keyspace.ChannelCommands(1)).Val(); n != 1 {
		t.Errorf("%s holds %d entries after one command sent twice, want 1", keyspace.ChannelCommands(1), n)
	}
	audits := 0
	for _, m := range rdb.XRange(t.Context(), keyspace.Audit, "-", "+").Val() {
		if m.Values["action"] == "command_submitted" && m.Values["id"] == "olga-0001" {
			audits++
		}
	}
	if audits != 1 {
		t.Errorf("audit:log has %d command_submitted entries for the id, want 1", audits)
	}

	// The same id for another value, or by another user: a clash, nothing sent.
	other := map[string]any{"channel": 1, "type": "C", "point": 1, "value": 0, "id": "olga-0001"}
	g.expect(g.do("POST", "/commands", op, other), 409)
	g.expect(g.do("POST", "/commands", g.user("oskar", "operator"), send), 409)
	if n := rdb.XLen(t.Context(), keyspace.ChannelCommands(1)).Val(); n != 1 {
		t.Errorf("%s holds %d entries after refused clashes, want 1", keyspace.ChannelCommands(1), n)
	}

	// Ids the API does not take.
	for _, bad := range []string{"short", "has space 123", "x/../../etc", strings.Repeat("a", 65)} {
		g.expect(g.do("POST", "/commands", op, map[string]any{"channel": 1, "type": "C", "point": 1, "value": 1, "id": bad}), 422)
	}
}
