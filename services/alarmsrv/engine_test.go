package alarmsrv

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
)

// testSite is a site with one virtual channel: telemetry 1-3, signal 1.
func testSite(t *testing.T) *config.Config {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"site.yaml":              "site: {id: test-site, name: Test}\n",
		"comsrv/channels.yaml":   "channels:\n  - {id: 1, name: dev, protocol: virtual}\n",
		"comsrv/1/telemetry.csv": "point_id,signal_name,scale,offset,unit,reverse,data_type\n1,temp,1,0,degC,0,float\n2,power,1,0,kW,0,float\n3,volt,1,0,V,0,float\n",
		"comsrv/1/signal.csv":    "point_id,signal_name,scale,offset,unit,reverse,data_type\n1,fault,1,0,,0,bool\n",
	})
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// harness drives an evaluator with a clock the test moves.
type harness struct {
	t      *testing.T
	ev     *evaluator
	now    time.Time
	events []op
}

func newHarness(t *testing.T, rules string) *harness {
	t.Helper()
	rs, err := ParseRules("alarms.yaml", []byte(rules), testSite(t), nil)
	if err != nil {
		t.Fatalf("rules: %v", err)
	}
	h := &harness{t: t, now: time.Unix(1_700_000_000, 0)}
	h.ev = newEvaluator(rs, nil, func() time.Time { return h.now })
	return h
}

// value feeds temp (channel 1 T 1) at the current time.
func (h *harness) value(hash, field string, v float64) {
	h.ev.sample(hash, field, v, point.Good, h.now.UnixMilli(), h.now)
	h.collect()
}

func (h *harness) temp(v float64) { h.value("comsrv:1:T", "1", v) }

// advance moves the clock, firing timers on the way.
func (h *harness) advance(d time.Duration) {
	end := h.now.Add(d)
	for {
		next := h.ev.next()
		if next.IsZero() || next.After(end) {
			break
		}
		h.now = next
		h.ev.fire(h.now)
		h.collect()
	}
	h.now = end
}

func (h *harness) collect() { h.events = append(h.events, h.ev.take()...) }

// types lists the event types so far as "type key".
func (h *harness) types() []string {
	var out []string
	for _, o := range h.events {
		out = append(out, o.event.Type+" "+o.event.Key)
	}
	return out
}

func (h *harness) want(want ...string) {
	h.t.Helper()
	if got := h.types(); !slices.Equal(got, want) {
		h.t.Fatalf("events:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

const tempHigh = `
alarms:
  - id: temp
    kind: limit
    channel: 1
    type: T
    point: 1
    limits: {h: {value: 90, severity: major}}
    deadband: 5
`

func TestDeadbandRaisesOnceClearsOnce(t *testing.T) {
	h := newHarness(t, tempHigh)
	for _, v := range []float64{80, 91, 89, 92, 86, 90.5, 85.5, 91, 87} {
		h.temp(v)
		h.advance(time.Second)
	}
	h.want("raised temp:h")
	h.temp(85) // at limit - deadband: clears
	h.want("raised temp:h", "cleared temp:h")
	for _, v := range []float64{89, 90, 88, 89.9} { // below the limit: nothing
		h.temp(v)
	}
	h.want("raised temp:h", "cleared temp:h")
	a := h.events[1].event.Alarm
	if a.Active || a.Acked || a.Value != 85 || *a.Limit != 90 || a.Unit != "degC" || a.Severity != "major" {
		t.Fatalf("cleared alarm: %+v", a)
	}
	if !strings.Contains(h.events[0].event.Alarm.Message, "91degC") {
		t.Fatalf("message %q", h.events[0].event.Alarm.Message)
	}
}

func TestOnDelaySuppressesSpike(t *testing.T) {
	h := newHarness(t, tempHigh+"    on_delay: 5s\n")
	h.temp(95)
	h.advance(3 * time.Second)
	h.temp(80)
	h.advance(10 * time.Second)
	h.want() // the spike never raised
	h.temp(95)
	h.advance(4999 * time.Millisecond)
	h.want()
	h.advance(time.Millisecond)
	h.want("raised temp:h")
}

func TestOffDelayKeepsDipFromClearing(t *testing.T) {
	h := newHarness(t, tempHigh+"    off_delay: 10s\n")
	h.temp(95)
	h.want("raised temp:h")
	h.temp(70)
	h.advance(4 * time.Second)
	h.temp(96) // back before the off-delay ended
	h.advance(time.Minute)
	h.want("raised temp:h")
	h.temp(70)
	h.advance(10 * time.Second)
	h.want("raised temp:h", "cleared temp:h")
}

func TestLimitLevelsAndLow(t *testing.T) {
	h := newHarness(t, `
alarms:
  - id: v
    kind: limit
    channel: 1
    type: T
    point: 3
    limits: {hh: {value: 250}, h: {value: 240}, l: {value: 200}, ll: {value: 190}}
    deadband: 2
`)
	for _, v := range []float64{230, 245, 255, 249, 237, 199, 189, 191.5, 192, 203} {
		h.value("comsrv:1:T", "3", v)
	}
	h.want("raised v:h", "raised v:hh", "cleared v:hh", "cleared v:h", "raised v:l", "raised v:ll", "cleared v:ll", "cleared v:l")
	if s := h.events[1].event.Alarm.Severity; s != "critical" {
		t.Fatalf("hh default severity %q", s)
	}
}

func TestLifecycle(t *testing.T) {
	h := newHarness(t, tempHigh+"    escalate_after: 10m\n")
	// raise → ack → clear: acknowledged and cleared leaves alarm:active.
	h.temp(95)
	a, err := h.ev.ack("temp:h", "olga", "looking", h.now)
	if err != nil || !a.Acked || a.AckedBy != "olga" {
		t.Fatalf("ack: %v %+v", err, a)
	}
	h.collect()
	if _, err := h.ev.ack("temp:h", "olga", "", h.now); err == nil {
		t.Fatal("second ack accepted")
	}
	h.temp(80)
	h.want("raised temp:h", "acknowledged temp:h", "cleared temp:h")
	if !h.events[2].del || h.ev.alarms["temp:h"] != nil {
		t.Fatal("cleared and acknowledged alarm was not removed")
	}
	if !h.events[1].audit || h.events[1].event.User != "olga" || h.events[1].event.Comment != "looking" {
		t.Fatalf("ack event %+v", h.events[1])
	}

	// raise → clear (unacked, stays) → raise again: a new occurrence.
	h.events = nil
	h.temp(95)
	first := h.ev.alarms["temp:h"].ID
	h.advance(time.Second)
	h.temp(80)
	if a := h.ev.alarms["temp:h"]; a == nil || a.Active || a.Acked {
		t.Fatalf("cleared unacknowledged alarm: %+v", a)
	}
	h.advance(time.Second)
	h.temp(95)
	a = h.ev.alarms["temp:h"]
	if a.Occurrence != 2 || a.ID == first || !a.Active || a.Acked {
		t.Fatalf("re-raised alarm: %+v", a)
	}
	h.want("raised temp:h", "cleared temp:h", "raised temp:h")
	if !h.events[0].notify || !h.events[2].notify {
		t.Fatal("raises are notified")
	}

	// escalation after 10 minutes unacknowledged: once, one step more severe.
	h.events = nil
	h.advance(10 * time.Minute)
	h.want("escalated temp:h")
	if a := h.ev.alarms["temp:h"]; !a.Escalated || a.Severity != "critical" || !h.events[0].notify {
		t.Fatalf("escalated: %+v", a)
	}
	h.advance(time.Hour)
	h.want("escalated temp:h")

	// shelve: no notification while shelved, unshelved by itself.
	h.events = nil
	if _, err := h.ev.shelve("temp:h", "eng", "maintenance", 30*time.Minute, h.now); err != nil {
		t.Fatal(err)
	}
	h.collect()
	h.temp(80)
	h.temp(95)
	h.advance(30 * time.Minute)
	h.want("shelved temp:h", "cleared temp:h", "raised temp:h", "unshelved temp:h")
	h.advance(10 * time.Minute) // the escalation clock starts again at the unshelve
	h.want("shelved temp:h", "cleared temp:h", "raised temp:h", "unshelved temp:h", "escalated temp:h")
	if h.events[1].notify || h.events[2].notify {
		t.Fatal("a shelved alarm was notified")
	}
	if h.events[3].event.User != SystemUser || h.ev.alarms["temp:h"].Shelved {
		t.Fatalf("unshelve: %+v", h.events[3].event)
	}
	if _, err := h.ev.shelve("nope", "eng", "", time.Minute, h.now); err != errNotFound {
		t.Fatalf("shelve of an unknown alarm: %v", err)
	}
}

func TestFlappingSuppression(t *testing.T) {
	h := newHarness(t, "flapping: {transitions: 4, window: 1m}\n"+tempHigh)
	for i := range 10 {
		h.temp(95)
		h.advance(2 * time.Second)
		h.temp(80)
		h.advance(2 * time.Second)
		_ = i
	}
	h.want("raised temp:h", "cleared temp:h", "raised temp:h", "flapping temp:h")
	notified := 0
	for _, o := range h.events {
		if o.notify && o.event.Type != EventCleared {
			notified++
		}
	}
	if !h.ev.alarms["temp:h"].Flapping {
		t.Fatal("not flapping")
	}
	// Quiet for a window: flapping ends, and the alarm follows the (cleared) value.
	h.advance(61 * time.Second)
	h.want("raised temp:h", "cleared temp:h", "raised temp:h", "flapping temp:h", "flapping_ended temp:h", "cleared temp:h")
	if notified != 3 { // two raises before it flapped, then one flapping notification
		t.Fatalf("%d notifications", notified)
	}
}

func TestDigitalRateStaleCommLoss(t *testing.T) {
	h := newHarness(t, `
alarms:
  - {id: fault, kind: digital, channel: 1, type: S, point: 1, state: 1, severity: critical}
  - {id: ramp, kind: rate, channel: 1, type: T, point: 2, rate: 10, deadband: 2}
  - {id: stale, kind: stale, channel: 1, type: T, point: 3, timeout: 30s}
  - {id: link, kind: comm_loss, channel: 1}
`)
	h.value("comsrv:1:S", "1", 1)
	h.value("comsrv:1:S", "1", 0)
	h.value("comsrv:1:T", "2", 100)
	h.advance(time.Second)
	h.value("comsrv:1:T", "2", 105) // 5/s
	h.advance(time.Second)
	h.value("comsrv:1:T", "2", 130) // 25/s
	h.advance(time.Second)
	h.value("comsrv:1:T", "2", 139) // 9/s: inside the deadband
	h.advance(time.Second)
	h.value("comsrv:1:T", "2", 140) // 1/s
	h.want("raised fault", "cleared fault", "raised ramp", "cleared ramp")

	h.events = nil
	h.value("comsrv:1:T", "3", 230)
	h.advance(29 * time.Second)
	h.value("comsrv:1:T", "3", 231)
	h.advance(29 * time.Second)
	h.want()
	h.advance(2 * time.Second)
	h.want("raised stale")
	h.value("comsrv:1:T", "3", 232)
	h.want("raised stale", "cleared stale")
	// A sample older than the pending deadline (a resync) brings it forward.
	h.events = nil
	h.ev.sample("comsrv:1:T", "3", 233, point.Good, h.now.Add(-20*time.Second).UnixMilli(), h.now)
	h.collect()
	h.advance(10 * time.Second)
	h.want("raised stale")
	if n := len(h.ev.timers); n > 2 {
		t.Fatalf("%d timers in the heap", n)
	}

	h.events = nil
	h.ev.message("comsrv:1:T", mustMsg(t, `{"ts":1,"v":{"1":5},"q":{"1":"comm_lost"}}`), h.now)
	h.collect()
	h.ev.message("comsrv:1:T", mustMsg(t, `{"ts":1,"v":{"1":5}}`), h.now)
	h.collect()
	h.ev.commState("comsrv:1:T", true, h.now)
	h.collect()
	h.want("raised link", "cleared link", "raised link")
}

func TestRestoredAlarmIsNotRaisedAgain(t *testing.T) {
	h := newHarness(t, tempHigh)
	h.temp(95)
	alarms := h.ev.alarms
	rs := h.ev.rs
	h.events = nil
	h.ev = newEvaluator(rs, alarms, func() time.Time { return h.now })
	h.temp(96)
	h.want()
	h.temp(80)
	h.want("cleared temp:h")
}

func mustMsg(t *testing.T, s string) *statestoreMessage {
	t.Helper()
	m, err := decodeMsg(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRender(t *testing.T) {
	lim := 90.0
	a := &Alarm{Name: "T", Value: 91.5, Unit: "kW", Instance: "pv1", Limit: &lim, Level: "h", Kind: KindLimit, Source: "s"}
	if got := render("{instance} {value}{unit} > {limit} ({level})", a); got != "pv1 91.5kW > 90 (H)" {
		t.Fatal(got)
	}
	if got := render("", a); got != "T: s = 91.5kW (H limit 90kW)" {
		t.Fatal(got)
	}
	_ = fmt.Sprint()
}

func TestRoutingQuietHoursRateLimit(t *testing.T) {
	rs, err := ParseRules("alarms.yaml", []byte(`notifications:
  - {name: all, type: webhook, url: 'http://x'}
  - {name: crit, type: webhook, url: 'http://x', severities: [critical], instances: [pv1]}
  - {name: night, type: webhook, url: 'http://x', quiet_hours: {from: '22:00', to: '06:00', timezone: UTC, except: [critical]}, rate_limit: {count: 2, per: 1m}}
alarms: []
`), testSite(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := newRouter(rs.Channels)
	names := func(n Notification, at time.Time) string {
		var out []string
		for _, c := range r.route(n, at) {
			out = append(out, c.Name)
		}
		return strings.Join(out, ",")
	}
	day := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	night := time.Date(2026, 1, 1, 23, 30, 0, 0, time.UTC)
	early := time.Date(2026, 1, 2, 5, 59, 0, 0, time.UTC)
	for _, c := range []struct {
		n    Notification
		at   time.Time
		want string
	}{
		{Notification{Event: EventRaised, Severity: "major", Instance: "pv1"}, day, "all,night"},
		{Notification{Event: EventRaised, Severity: "critical", Instance: "pv1"}, day, "all,crit,night"},
		{Notification{Event: EventRaised, Severity: "critical", Instance: "pv2"}, day, "all,night"},
		{Notification{Event: EventRaised, Severity: "major"}, night, "all"},
		{Notification{Event: EventRaised, Severity: "major"}, early, "all"},
		{Notification{Event: EventRaised, Severity: "critical"}, night, "all,night"},
		{Notification{Event: EventCleared, Severity: "major"}, day, ""}, // cleared is not in the default events
		{Notification{Event: EventRequest, Severity: "info"}, day, "all,night"},
	} {
		if got := names(c.n, c.at); got != c.want {
			t.Errorf("%+v at %s: %q, want %q", c.n, c.at.Format("15:04"), got, c.want)
		}
	}
	b := &bucket{count: 2, per: time.Minute}
	if !b.take(day) || !b.take(day) || b.take(day.Add(time.Second)) {
		t.Fatal("the rate limit lets a third through within the minute")
	}
	if !b.take(day.Add(31 * time.Second)) {
		t.Fatal("no token after half a minute")
	}
}

func TestMailBodyHeaders(t *testing.T) {
	b := string(mailBody("a@x", []string{"b@x", "c@x"}, Notification{Site: "s", Title: "evil\r\nBcc: all@x", Message: "line1\nline2", TS: 1, Event: "raised", Severity: "major"}))
	if strings.Contains(b, "\r\nBcc:") || !strings.Contains(b, "Subject: [s] evil  Bcc: all@x\r\n") || !strings.Contains(b, "line1\r\nline2\r\n") {
		t.Fatalf("mail:\n%q", b)
	}
}
