package bridge

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/shared/uplink"
	"github.com/voltageems/voltage/tools/sitetest"
)

const (
	pointHeader   = "point_id,signal_name,scale,offset,unit,reverse,data_type\n"
	mappingHeader = "point_id,slave_id,function_code,register_address,data_type,byte_order,bit_position\n"
)

// modbusSite is one Modbus TCP channel served by voltsim: a power reading and two
// setpoints.
var modbusSite = sitetest.Files{
	"site.yaml": "site: {id: " + siteID + ", name: Site A}\nredis: {url: \"{{REDIS}}\"}\n",
	"comsrv/channels.yaml": `channels:
  - {id: 1, name: pcs, protocol: modbus_tcp, enabled: true, parameters: {host: 127.0.0.1, port: {{PORT}}, poll_interval_ms: 100, timeout_ms: 500}}
`,
	"comsrv/1/telemetry.csv":                  pointHeader + "1,power,1,0,kW,0,float\n",
	"comsrv/1/mapping/telemetry_mapping.csv":  mappingHeader + "1,1,4,0,float32,ABCD,\n",
	"comsrv/1/adjustment.csv":                 "point_id,signal_name,scale,offset,unit,reverse,data_type,min_value,max_value\n1,power_setpoint,1,0,kW,0,float,-100,100\n2,mode,1,0,,0,int,0,4\n",
	"comsrv/1/mapping/adjustment_mapping.csv": mappingHeader + "1,1,16,100,float32,ABCD,\n2,1,6,110,uint16,,\n",
}

const modbusUplink = `
stream: {max_mb: 64}
downlink:
  default_wait_ms: 3000
  max_wait_ms: 10000
  allow:
    - {channel: 1, type: A, points: [1]}
    - {instance: 5, actions: [charge]}
`

// request sends a downlink command as the hub would, and decodes the reply.
func request(t *testing.T, e *env, body string) command.Result {
	t.Helper()
	m, err := e.nc.Request(subjects.DownCommand(siteID), []byte(body), 15*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", body, err)
	}
	var r uplink.CommandReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		t.Fatalf("reply %s: %v", m.Data, err)
	}
	if r.Site != siteID {
		t.Errorf("reply site = %q, want %q", r.Site, siteID)
	}
	return r.Result
}

// auditEntries are the audit:log entries written with source cloud.
func auditEntries(t *testing.T, rdb *redis.Client) []map[string]any {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), keyspace.Audit, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, m := range msgs {
		if m.Values["source"] == Source {
			out = append(out, m.Values)
		}
	}
	return out
}

// An allowed command from the cloud goes through comsrv to the simulated device
// and the reply is its result; the command and the rejections land in audit:log.
// A point outside the allow-list, a malformed or invalid request are rejected at
// the edge with a reason and nothing is submitted. A retried id is not executed
// twice.
func TestDownlinkCommandReachesTheDevice(t *testing.T) {
	s := sitetest.New(t, modbusSite)
	s.StartDevices()
	s.WaitValue(keyspace.ChannelStatus(1), "state", "up")
	e := &env{t: t, site: s, rdb: s.RDB, store: s.Store}
	e.nats = testharness.StartNATS(t, func(o *server.Options) { o.JetStreamDomain = siteID })
	e.nc = e.nats.Conn(t)
	cfg, errs := ParseConfig("uplink.yaml", []byte(modbusUplink), s.Config)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	e.start(cfg, e.nc, nil)

	// A plain publish (no reply subject) is not a request: not executed.
	if err := e.nc.Publish(subjects.DownCommand(siteID), []byte(`{"id":"fire-and-forget","channel":1,"type":"A","point":1,"value":7,"user":"alice@fleet"}`)); err != nil {
		t.Fatal(err)
	}
	r := request(t, e, `{"id":"cloud-1","channel":1,"type":"A","point":1,"value":42.5,"user":"alice@fleet","wait_ms":5000}`)
	if r.Status != command.OK || r.ID != "cloud-1" || r.Channel != 1 || r.Point != 1 {
		t.Fatalf("reply = %+v, want ok for cloud-1", r)
	}
	if got, err := s.Sim.Value(1, point.Adjustment, 1); err != nil || got != 42.5 {
		t.Errorf("device setpoint = %v (%v), want 42.5", got, err)
	}
	writes := len(s.Sim.Writes(1))
	if n, _ := s.RDB.Exists(context.Background(), keyspace.Command("fire-and-forget")).Result(); n != 0 {
		t.Error("a command published without a reply subject was executed")
	}

	// The cloud retries the same id (its reply was lost): answered, not executed again.
	r = request(t, e, `{"id":"cloud-1","channel":1,"type":"A","point":1,"value":42.5,"user":"alice@fleet"}`)
	if r.Status != command.OK || r.ID != "cloud-1" {
		t.Errorf("retried reply = %+v, want the first result", r)
	}
	if got := len(s.Sim.Writes(1)); got != writes {
		t.Errorf("the device got %d writes after the retry, want %d: executed twice", got, writes)
	}

	// comsrv's own checks still apply: out of range comes back rejected by it.
	r = request(t, e, `{"channel":1,"type":"A","point":1,"value":1000,"user":"alice@fleet"}`)
	if r.Status != command.Rejected || r.ID == "" {
		t.Errorf("out-of-range reply = %+v, want rejected by comsrv with the command id", r)
	}

	before, _ := s.RDB.XLen(context.Background(), keyspace.ChannelCommands(1)).Result()
	for _, c := range []struct{ body, reason string }{
		{`{"channel":1,"type":"A","point":2,"value":1,"user":"alice@fleet"}`, "not on this site's allow-list"},
		{`{"channel":1,"type":"C","point":1,"value":1,"user":"alice@fleet"}`, "not on this site's allow-list"},
		{`{"instance":5,"action":"discharge","value":1,"user":"alice@fleet"}`, "not on this site's allow-list"},
		{`{not json`, "malformed request"},
		{`{"channel":1,"type":"A","point":1,"value":1,"user":"a","colour":"red"}`, "malformed request"},
		{`{"channel":1,"type":"A","point":1,"value":"high","user":"a"}`, "malformed request"},
		{`{"channel":1,"type":"A","point":1,"value":1}{}`, "malformed request"},
		{`{"channel":1,"type":"A","point":1,"value":1}`, "user is required"},
		{`{"channel":1,"type":"T","point":1,"value":1,"user":"a"}`, "commands go to C (control) or A (adjustment)"},
		{`{"channel":1,"type":"A","point":1,"value":1,"user":"a","wait_ms":-1}`, "negative"},
		{`{"id":"no spaces","channel":1,"type":"A","point":1,"value":1,"user":"a"}`, "invalid command: id"},
		{`{"channel":1,"type":"A","point":1,"instance":5,"action":"charge","value":1,"user":"a"}`, "not both"},
		{`{"value":1,"user":"a"}`, "give channel"},
	} {
		r := request(t, e, c.body)
		if r.Status != command.Rejected || !strings.Contains(r.Error, c.reason) {
			t.Errorf("%s: reply = %+v, want rejected with %q", c.body, r, c.reason)
		}
	}
	if after, _ := s.RDB.XLen(context.Background(), keyspace.ChannelCommands(1)).Result(); after != before {
		t.Errorf("rejected requests reached comsrv: %s grew from %d to %d", keyspace.ChannelCommands(1), before, after)
	}
	if n, _ := s.RDB.XLen(context.Background(), keyspace.InstanceActionStream).Result(); n != 0 {
		t.Errorf("a rejected action reached %s", keyspace.InstanceActionStream)
	}

	// An allowed action is written for modsrv (not running here): pending after the wait.
	r = request(t, e, `{"instance":5,"action":"charge","value":2,"user":"bob","wait_ms":100}`)
	if r.Status != command.Pending || r.ID == "" {
		t.Errorf("action reply = %+v, want pending with an id", r)
	}
	if n, _ := s.RDB.XLen(context.Background(), keyspace.InstanceActionStream).Result(); n != 1 {
		t.Errorf("%s holds %d actions, want 1", keyspace.InstanceActionStream, n)
	}

	audit := auditEntries(t, s.RDB)
	var submitted, rejected int
	var first map[string]any // comsrv records its execution beside it, in either order
	for _, a := range audit {
		switch a["action"] {
		case "command_submitted":
			if first == nil {
				first = a
			}
			submitted++
		case "command_rejected":
			rejected++
		}
	}
	// cloud-1 once (not for the retry), the out-of-range one, the action.
	if submitted != 3 || rejected != 13 {
		t.Errorf("audit:log has %d submitted and %d rejected cloud commands, want 3 and 13: %v", submitted, rejected, audit)
	}
	if first == nil || first["user"] != "alice@fleet" || first["id"] != "cloud-1" || first["target"] != "1:A:1" || first["value"] != "42.5" {
		t.Errorf("first audit entry = %v", first)
	}
}

// Reload puts a new allow-list and selection in force without a restart.
func TestReloadChangesAllowListAndSelection(t *testing.T) {
	e := newEnv(t)
	r := e.start(testConfig(), e.nc, nil)
	body := `{"channel":1,"type":"A","point":1,"value":5,"user":"ops","wait_ms":50}`
	if res := request(t, e, body); res.Status != command.Rejected {
		t.Fatalf("before the reload: %+v, want rejected", res)
	}
	cfg, errs := ParseConfig("uplink.yaml", []byte(`
uplink: {channels: [{channels: [2]}]}
stream: {max_mb: 32}
downlink: {allow: [{channel: 1, type: A, points: [1]}]}
`), e.site.Config)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if err := r.Reload(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	// No comsrv runs here: the command is queued and still pending after the wait.
	if res := request(t, e, body); res.Status != command.Pending {
		t.Errorf("after the reload: %+v, want pending (allowed and queued)", res)
	}
	e.writeChannel(1, point.Telemetry, 1_700_000_000_000, v(1, 1)) // channel 1 is no longer selected
	e.writeChannel(2, point.Telemetry, 1_700_000_000_000, v(1, 2))
	e.waitAcked(keyspace.Changes)
	msgs := uplinkMsgs(t, e.js)
	if len(msgs) != 1 || msgs[0].Subject != subjects.ChannelUp(siteID, 2, point.Telemetry) {
		t.Errorf("after the reload UPLINK holds %d messages (%v), want only channel 2's", len(msgs), entries(msgs))
	}
	s, err := e.js.Stream(context.Background(), subjects.UplinkStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxBytes != 32<<20 {
		t.Errorf("stream max_bytes after the reload = %d, want 32 MiB", info.Config.MaxBytes)
	}
}
