package alarmsrv_test

import (
	"context"
	"encoding/csv"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/services/alarmsrv"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/notify"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/testharness"
)

// The whole path: a change on pub/sub raises an alarm (alarm:active,
// alarm:events, a signed webhook), an operator acknowledges it over the API (who
// and when in the event and in audit:log), shelving is checked, the clear
// removes the acknowledged alarm, and history answers by filter, as CSV and as
// counts.
func TestAlarmLifecycleOverTheAPI(t *testing.T) {
	rcv := newReceiver(t)
	s := newStack(t, webhookChannel(rcv.srv.URL)+"alarms:\n"+tempRule)
	s.start()

	s.temp(80)
	s.temp(95)
	raised := s.waitEvents(alarmsrv.EventRaised, "temp:h", 1)
	if a := raised.Alarm; !a.Active || a.Acked || a.Severity != "major" || a.Message != "comsrv:1:T:1 at 95degC over 90degC" || a.Instance != "" {
		t.Fatalf("raised alarm: %+v", a)
	}
	if a, ok := s.active()["temp:h"]; !ok || a.ID != raised.Alarm.ID {
		t.Fatalf("alarm:active: %+v", s.active())
	}
	testharness.WaitFor(t, 20*time.Second, "the webhook", func() bool { return rcv.count("raised", "temp:h") == 1 })
	ds, _ := rcv.got()
	if ds[0].sigs != nil || ds[0].id == "" || ds[0].n.Site != "test-site" || !strings.Contains(ds[0].n.Title, "MAJOR") {
		t.Fatalf("delivery: %+v", ds[0])
	}

	var list []alarmsrv.Alarm
	if code, _, body := s.do("GET", "/alarms?state=active_unacked", "", nil, &list); code != 200 || len(list) != 1 {
		t.Fatalf("GET /alarms: %d %s", code, body)
	}

	// Acknowledge, as olga; a second acknowledgement is a conflict.
	var acked alarmsrv.Alarm
	if code, _, body := s.do("POST", "/alarms/temp:h/ack", "olga", map[string]string{"comment": "crew on the way"}, &acked); code != 200 || !acked.Acked || acked.AckedBy != "olga" {
		t.Fatalf("ack: %d %s", code, body)
	}
	ev := s.waitEvents(alarmsrv.EventAcknowledged, "temp:h", 1)
	if ev.User != "olga" || ev.Comment != "crew on the way" || ev.TS == 0 {
		t.Fatalf("ack event %+v", ev)
	}
	code, hdr, body := s.do("POST", "/alarms/temp:h/ack", "olga", nil, nil)
	if code != http.StatusConflict || hdr.Get("Content-Type") != "application/problem+json" || !strings.Contains(body, "already acknowledged") {
		t.Fatalf("second ack: %d %s %s", code, hdr.Get("Content-Type"), body)
	}
	audit, err := s.rdb.XRange(context.Background(), keyspace.Audit, "-", "+").Result()
	if err != nil || len(audit) == 0 || audit[len(audit)-1].Values["user"] != "olga" || audit[len(audit)-1].Values["action"] != "alarm_acknowledged" {
		t.Fatalf("audit:log %v %v", audit, err)
	}

	// Bad bodies and unknown alarms.
	for _, c := range []struct {
		path string
		body any
		code int
	}{
		{"/alarms/temp:h/shelve", map[string]string{"duration": "forever"}, 400},
		{"/alarms/temp:h/shelve", map[string]string{"duration": "-5m"}, 400},
		{"/alarms/temp:h/ack", map[string]any{"comment": 5}, 400},
		{"/alarms/temp:h/ack", map[string]any{"whatever": "x"}, 400},
		{"/alarms/nope/ack", nil, 404},
		{"/alarms/temp:h/unshelve", nil, 409},
	} {
		if code, hdr, body := s.do("POST", c.path, "olga", c.body, nil); code != c.code || hdr.Get("Content-Type") != "application/problem+json" {
			t.Errorf("POST %s %v: %d %s, want %d", c.path, c.body, code, body, c.code)
		}
	}

	// Shelve and unshelve by an engineer.
	var shelved alarmsrv.Alarm
	if code, _, body := s.do("POST", "/alarms/temp:h/shelve", "erik", map[string]string{"duration": "1h", "comment": "sensor swap"}, &shelved); code != 200 || !shelved.Shelved || shelved.ShelvedBy != "erik" {
		t.Fatalf("shelve: %d %s", code, body)
	}
	if code, _, body := s.do("POST", "/alarms/temp:h/unshelve", "erik", nil, nil); code != 200 {
		t.Fatalf("unshelve: %d %s", code, body)
	}
	if ev := s.waitEvents(alarmsrv.EventUnshelved, "temp:h", 1); ev.User != "erik" {
		t.Fatalf("unshelve event %+v", ev)
	}

	// Oscillating inside the deadband changes nothing; below it clears, and the
	// acknowledged, cleared alarm leaves alarm:active.
	for _, v := range []float64{89, 91, 88, 92} {
		s.temp(v)
	}
	s.temp(84)
	s.waitEvents(alarmsrv.EventCleared, "temp:h", 1)
	if n := s.countEvents(alarmsrv.EventRaised, "temp:h"); n != 1 {
		t.Fatalf("%d raises", n)
	}
	if _, ok := s.active()["temp:h"]; ok {
		t.Fatal("the cleared, acknowledged alarm is still in alarm:active")
	}

	// History: filters, CSV, counts.
	var hist []alarmsrv.Event
	from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	if code, _, body := s.do("GET", "/history?type=acknowledged&from="+from, "", nil, &hist); code != 200 || len(hist) != 1 || hist[0].User != "olga" {
		t.Fatalf("history: %d %s", code, body)
	}
	if code, _, body := s.do("GET", "/history?severity=critical", "", nil, &hist); code != 200 || len(hist) != 0 {
		t.Fatalf("history of critical: %d %s", code, body)
	}
	if code, _, body := s.do("GET", "/history?to=1000", "", nil, &hist); code != 200 || len(hist) != 0 {
		t.Fatalf("history before 1970+1s: %d %s", code, body)
	}
	code, hdr, body = s.do("GET", "/history?format=csv&key=temp:h", "", nil, nil)
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") || err != nil || len(rows) != 6 || rows[0][1] != "event" || rows[1][1] != "raised" {
		t.Fatalf("csv: %d %v\n%s", code, err, body)
	}
	var counts map[string]int
	if code, _, body := s.do("GET", "/history/counts", "", nil, &counts); code != 200 || counts["major"] != 1 || len(counts) != 1 {
		t.Fatalf("counts: %d %s", code, body)
	}
	if code, _, _ := s.do("GET", "/history?from=yesterday", "", nil, nil); code != 400 {
		t.Fatalf("bad from: %d", code)
	}

	// A notification request from another service goes the same way.
	if _, err := notify.Send(context.Background(), s.rdb, notify.Request{Severity: notify.Major, Title: "peak shaving failed", Message: "m", Source: "rule:peak"}); err != nil {
		t.Fatal(err)
	}
	testharness.WaitFor(t, 20*time.Second, "the requested notification", func() bool { return rcv.count("request", "") == 1 })
	testharness.WaitFor(t, 20*time.Second, "the cleared notification", func() bool { return rcv.count("cleared", "temp:h") == 1 })
}

// Rules CRUD: an invalid rule is refused with its problems, a valid one is
// written to alarms.yaml atomically and evaluated at once; a deleted rule's alarm goes.
func TestRulesAPI(t *testing.T) {
	s := newStack(t, "alarms:\n"+tempRule)
	s.start()
	code, hdr, body := s.do("POST", "/rules", "erik", map[string]any{"id": "fault", "kind": "digital", "channel": 1, "type": "S", "point": 1}, nil)
	if code != http.StatusUnprocessableEntity || hdr.Get("Content-Type") != "application/problem+json" || !strings.Contains(body, "needs state") {
		t.Fatalf("invalid rule: %d %s", code, body)
	}
	if code, _, body := s.do("POST", "/rules", "erik", map[string]any{"id": "fault", "kind": "digital", "channel": 1, "type": "S", "point": 1, "state": 1, "severity": "critical"}, nil); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, _, _ := s.do("POST", "/rules", "erik", map[string]any{"id": "fault", "kind": "comm_loss", "channel": 1}, nil); code != http.StatusConflict {
		t.Fatalf("duplicate create: %d", code)
	}
	b, _ := os.ReadFile(filepath.Join(s.dir, "alarmsrv", "alarms.yaml"))
	if !strings.Contains(string(b), "id: fault") || !strings.Contains(string(b), "id: temp") {
		t.Fatalf("alarms.yaml:\n%s", b)
	}
	s.write(point.Signal, point.Sample{ID: 1, Value: 1})
	if ev := s.waitEvents(alarmsrv.EventRaised, "fault", 1); ev.Alarm.Severity != "critical" {
		t.Fatalf("fault: %+v", ev)
	}
	var rules []alarmsrv.RuleDoc
	if code, _, _ := s.do("GET", "/rules", "", nil, &rules); code != 200 || len(rules) != 2 {
		t.Fatalf("rules: %d %v", code, rules)
	}
	// PUT changes the severity; the running alarm keeps its occurrence.
	if code, _, body := s.do("PUT", "/rules/fault", "erik", map[string]any{"kind": "digital", "channel": 1, "type": "S", "point": 1, "state": 1, "severity": "minor"}, nil); code != 200 {
		t.Fatalf("put: %d %s", code, body)
	}
	if code, _, _ := s.do("PUT", "/rules/fault", "erik", map[string]any{"id": "other", "kind": "comm_loss", "channel": 1}, nil); code != 400 {
		t.Fatalf("put with another id: %d", code)
	}
	if code, _, _ := s.do("DELETE", "/rules/fault", "erik", nil, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	s.waitEvents(alarmsrv.EventRemoved, "fault", 1)
	if _, ok := s.active()["fault"]; ok {
		t.Fatal("the deleted rule's alarm is still active")
	}
	if code, _, _ := s.do("DELETE", "/rules/fault", "erik", nil, nil); code != http.StatusNotFound {
		t.Fatalf("second delete: %d", code)
	}
	if code, _, _ := s.do("GET", "/rules/temp", "", nil, nil); code != 200 {
		t.Fatalf("get rule: %d", code)
	}

	// POST /reload: a broken file is refused with its position, the rules keep running.
	path := filepath.Join(s.dir, "alarmsrv", "alarms.yaml")
	if err := os.WriteFile(path, []byte("alarms:\n  - {id: x, kind: nope}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, hdr, body := s.do("POST", "/reload", "", nil, nil); code != http.StatusUnprocessableEntity || hdr.Get("Content-Type") != "application/problem+json" || !strings.Contains(body, "alarms.yaml:2:19") {
		t.Fatalf("reload of a broken file: %d %s", code, body)
	}
	if err := os.WriteFile(path, []byte("alarms: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var res map[string]string
	if code, _, body := s.do("POST", "/reload", "", nil, &res); code != 200 || res["status"] != "reloaded" {
		t.Fatalf("reload: %d %s", code, body)
	}
}

// Values already in Redis before the start are evaluated by the resync, and a
// channel reported down in its status hash raises comm_loss.
func TestResyncAtStart(t *testing.T) {
	s := newStack(t, "alarms:\n"+tempRule+"  - {id: link, kind: comm_loss, channel: 1}\n  - {id: pv1_power, kind: limit, instance: pv1, measurement: active_power, limits: {l: {value: 5}}}\n")
	s.temp(99)
	if err := s.rdb.HSet(context.Background(), keyspace.ChannelStatus(1), "state", "down").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.HSet(context.Background(), keyspace.InstanceMeasurements(1), "1", "2").Err(); err != nil {
		t.Fatal(err)
	}
	s.start()
	s.waitEvents(alarmsrv.EventRaised, "temp:h", 1)
	s.waitEvents(alarmsrv.EventRaised, "link", 1)
	if ev := s.waitEvents(alarmsrv.EventRaised, "pv1_power:l", 1); ev.Alarm.Instance != "pv1" || ev.Alarm.Unit != "kW" {
		t.Fatalf("instance alarm %+v", ev.Alarm)
	}
	// A good value on the channel clears comm loss; comm_lost quality raises it again.
	s.write(point.Telemetry, point.Sample{ID: 3, Value: 230})
	s.waitEvents(alarmsrv.EventCleared, "link", 1)
	s.write(point.Telemetry, point.Sample{ID: 3, Value: 230, Quality: point.CommLost})
	s.waitEvents(alarmsrv.EventRaised, "link", 2)
}

// The webhook receiver is down: alarmsrv retries, and once it is back the
// notification arrives exactly once.
func TestWebhookDownRetriesThenDeliversOnce(t *testing.T) {
	rcv := newReceiver(t)
	rcv.setDown(true)
	s := newStack(t, webhookChannel(rcv.srv.URL)+"alarms:\n"+tempRule)
	s.start()
	s.temp(95)
	s.waitEvents(alarmsrv.EventRaised, "temp:h", 1)
	testharness.WaitFor(t, 30*time.Second, "three refused attempts", func() bool { _, n := rcv.got(); return n >= 3 })
	if rcv.count("raised", "temp:h") != 0 {
		t.Fatal("delivered while down")
	}
	rcv.setDown(false)
	testharness.WaitFor(t, 60*time.Second, "the delivery", func() bool { return rcv.count("raised", "temp:h") == 1 })
	testharness.WaitFor(t, 20*time.Second, "an empty outbox", func() bool {
		n, _ := s.rdb.XLen(context.Background(), keyspace.AlarmOutbox).Result()
		return n == 0
	})
	pend, err := s.rdb.XPending(context.Background(), keyspace.AlarmOutbox, keyspace.OutboxGroup).Result()
	if err != nil || pend.Count != 0 {
		t.Fatalf("pending %+v %v", pend, err)
	}
	if n := rcv.count("raised", "temp:h"); n != 1 {
		t.Fatalf("%d deliveries", n)
	}
}

// Redis goes away: alarmsrv reports not ready, keeps running, and once Redis is
// back (empty: no persistence) it resubscribes, writes its alarms back to
// alarm:active and evaluates new changes.
func TestRedisOutage(t *testing.T) {
	s := newStack(t, "alarms:\n"+tempRule)
	s.start()
	s.temp(95)
	raised := s.waitEvents(alarmsrv.EventRaised, "temp:h", 1)
	s.redis.Stop(t)
	testharness.WaitFor(t, 30*time.Second, "readyz to fail", func() bool {
		resp, err := http.Get(s.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode != http.StatusOK
	})
	s.redis.Restart(t)
	s.waitReady()
	testharness.WaitFor(t, 30*time.Second, "alarm:active written back", func() bool {
		n, _ := s.rdb.HLen(context.Background(), keyspace.AlarmActive).Result()
		return n == 1
	})
	if a := s.active()["temp:h"]; a.ID != raised.Alarm.ID || !a.Active {
		t.Fatalf("alarm after the outage: %+v", a)
	}
	s.temp(50)
	s.waitEvents(alarmsrv.EventCleared, "temp:h", 1)
}
