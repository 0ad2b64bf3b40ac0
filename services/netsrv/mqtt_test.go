package netsrv_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
)

// Three links at once on one broker, each with its own selection, topic template
// and format; mosquitto_sub reads what arrives.
func TestMQTTPayloadsMatchTemplates(t *testing.T) {
	s := newSite(t)
	broker := testharness.StartMosquitto(t)
	sub := subscribe(t, broker.Addr, "t/#")
	sub.ready(broker.Addr, "t/probe")
	s.links(fmt.Sprintf(`
links:
  - name: j
    type: mqtt
    broker: %[1]s
    topic: "t/json/{{.Kind}}/{{.Source}}/{{.Type}}"
    select:
      - {channel: 1, types: [T]}
  - name: c
    type: mqtt
    protocol: "3.1.1"
    broker: %[1]s
    topic: "t/compact/{{.Site}}"
    format: compact
    select:
      - {channel: 2}
  - name: tpl
    type: mqtt
    broker: %[1]s
    qos: 0
    retain: true
    topic: "t/tpl/{{.Name}}"
    template: '{{range .Points}}{{.Name}}={{.Value}}@{{.TS}} q={{.Quality}};{{end}}'
    aliases: {pv_power: "1:T:2"}
    select:
      - {channel: 1, types: [YC], points: [2]}
`, broker.URL()))
	s.start()

	ts := int64(1_732_573_200_000)
	ctx := context.Background()
	must(t, s.store.Write(ctx,
		statestore.ChannelBatch(1, point.Telemetry, ts, []point.Sample{{ID: 1, Value: 1.5, TS: ts}, {ID: 2, Value: 230.25, TS: ts}}),
		statestore.ChannelBatch(1, point.Signal, ts, []point.Sample{{ID: 7, Value: 1, TS: ts}}),
		statestore.ChannelBatch(2, point.Telemetry, ts, []point.Sample{{ID: 3, Value: -4, TS: ts, Quality: point.Stale}}),
	))

	testharness.Eventually(t, 20*time.Second, func() error {
		if n := len(sub.on("t/json/")) + len(sub.on("t/compact/")) + len(sub.on("t/tpl/")); n < 3 {
			return fmt.Errorf("%d of 3 messages received", n)
		}
		return nil
	})

	js := sub.on("t/json/")
	if len(js) != 1 || js[0].Topic != "t/json/channel/1/T" {
		t.Fatalf("json link: got %+v, want one message on t/json/channel/1/T (channel 1 S and channel 2 are not selected)", js)
	}
	var p jsonPayload
	must(t, json.Unmarshal([]byte(js[0].Payload), &p))
	if p.Site != "test-site" || p.Link != "j" || p.TS != ts || p.ID == "" || len(p.Points) != 2 {
		t.Fatalf("json payload header: %s", js[0].Payload)
	}
	want := []string{"c1_T_1 channel 1 T 1 1.5 good", "c1_T_2 channel 1 T 2 230.25 good"}
	for i, pt := range p.Points {
		got := fmt.Sprintf("%s %s %d %s %d %v %s", pt.Name, pt.Kind, pt.Source, pt.Type, pt.Point, pt.V, pt.Quality)
		if got != want[i] || pt.TS != ts {
			t.Errorf("json point %d = %q ts %d, want %q ts %d", i, got, pt.TS, want[i], ts)
		}
	}

	cs := sub.on("t/compact/")
	if len(cs) != 1 || cs[0].Topic != "t/compact/test-site" {
		t.Fatalf("compact link: got %+v", cs)
	}
	var c struct {
		Site string             `json:"site"`
		TS   int64              `json:"ts"`
		V    map[string]float64 `json:"v"`
		Q    map[string]string  `json:"q"`
	}
	must(t, json.Unmarshal([]byte(cs[0].Payload), &c))
	if c.Site != "test-site" || c.TS != ts || len(c.V) != 1 || c.V["c2_T_3"] != -4 || c.Q["c2_T_3"] != "stale" {
		t.Fatalf("compact payload: %s", cs[0].Payload)
	}

	tp := sub.on("t/tpl/")
	wantTpl := fmt.Sprintf("pv_power=230.25@%d q=good;", ts)
	if len(tp) != 1 || tp[0].Topic != "t/tpl/pv_power" || tp[0].Payload != wantTpl {
		t.Fatalf("template link: got %+v, want %q on t/tpl/pv_power", tp, wantTpl)
	}
	// retain: a subscriber that comes later still gets the last value.
	bin := testharness.Binary(t, "mosquitto_sub", "mosquitto-clients")
	out, err := exec.Command(bin, "-h", "127.0.0.1", "-p", broker.Port(), "-t", "t/tpl/#", "-C", "1", "-W", "10", "-F", "%r %t %p").Output()
	if got := strings.TrimSpace(string(out)); err != nil || got != "1 t/tpl/pv_power "+wantTpl {
		t.Errorf("late subscriber got %q (%v), want the retained message", got, err)
	}
}

// The broker goes away for a while: nothing is lost, nothing arrives twice, and
// the order of one point's values is kept.
func TestMQTTBrokerOutageLosesNothing(t *testing.T) {
	s := newSite(t)
	broker := testharness.StartMosquittoWith(t, testharness.MosquittoOptions{PersistenceDir: t.TempDir()})
	sub := subscribe(t, broker.Addr, "#")
	sub.ready(broker.Addr, "o/probe")
	s.links(fmt.Sprintf(`
links:
  - name: o
    type: mqtt
    broker: %[1]s
    topic: "o/{{.Source}}"
    spool: {after_s: 1}
    replay_rate: 1000
  - name: o2
    type: mqtt
    broker: %[1]s
    topic: "o2/{{.Source}}"
    spool: {after_s: 3600, after_entries: 20}
`, broker.URL()))
	r := s.start()
	s.changes(1, 0, 50)
	waitValues(t, sub, "o/", "c1_T_1", 0, 50, 20*time.Second)
	waitValues(t, sub, "o2/", "c1_T_1", 0, 50, 20*time.Second)
	testharness.Eventually(t, 10*time.Second, func() error { // every PUBACK in before the stop
		for _, name := range []string{"o", "o2"} {
			if ls := r.linkStatus(t, name); ls.SentPoints < 50 {
				return fmt.Errorf("link %s: %d points acknowledged", name, ls.SentPoints)
			}
		}
		return nil
	})
	sub.ready(broker.Addr, "o/probe")

	broker.Stop(t)
	s.changes(1, 50, 100) // queued in the stream, then spooled (after_s: 1)
	testharness.Eventually(t, 20*time.Second, func() error {
		for _, name := range []string{"o", "o2"} {
			if ls := r.linkStatus(t, name); ls.Connected || ls.Queued.Spool == 0 {
				return fmt.Errorf("link %s still connected or nothing spooled yet: %+v", name, ls)
			}
		}
		return nil
	})
	s.changes(1, 150, 50) // appended behind the spool
	broker.Start(t)
	for _, prefix := range []string{"o/", "o2/"} {
		waitValues(t, sub, prefix, "c1_T_1", 0, 200, 30*time.Second)
		msgs := sub.on(prefix)
		checkExactlyOnce(t, valueCounts(t, msgs, "c1_T_1"), 0, 200)
		checkOrder(t, msgs, "c1_T_1")
	}
	testharness.Eventually(t, 10*time.Second, func() error {
		ls := r.linkStatus(t, "o")
		if !ls.Connected || ls.Queued.Spool != 0 || ls.SentPoints < 200 || ls.Dropped != 0 {
			return fmt.Errorf("status after recovery: %+v", ls)
		}
		return nil
	})
}

// checkOrder fails unless the values of name arrived in increasing order.
func checkOrder(t testing.TB, msgs []subMsg, name string) {
	t.Helper()
	last := -1.0
	for _, m := range msgs {
		var p jsonPayload
		must(t, json.Unmarshal([]byte(m.Payload), &p))
		for _, pt := range p.Points {
			if pt.Name != name {
				continue
			}
			if pt.V <= last {
				t.Fatalf("%s: %v arrived after %v", name, pt.V, last)
			}
			last = pt.V
		}
	}
}

// A broker that drops the connection again and again: every value arrives, and
// the few duplicates a lost PUBACK may cause stay bounded by the number of flaps.
func TestMQTTFlappingBrokerNoDuplicateStorm(t *testing.T) {
	s := newSite(t)
	broker := testharness.StartMosquittoWith(t, testharness.MosquittoOptions{PersistenceDir: t.TempDir()})
	sub := subscribe(t, broker.Addr, "f/#")
	sub.ready(broker.Addr, "f/probe")
	s.links(fmt.Sprintf(`
links:
  - name: f
    type: mqtt
    broker: %s
    topic: "f/{{.Source}}"
`, broker.URL()))
	s.start()
	const flaps, total = 5, 400
	written := make(chan struct{})
	go func() {
		defer close(written)
		for i := range total {
			s.change(1, point.Telemetry, 1, float64(i))
			time.Sleep(3 * time.Millisecond) // a steady source, not synchronisation
		}
	}()
	for range flaps {
		testharness.Eventually(t, 20*time.Second, func() error {
			if len(sub.on("f/")) == 0 {
				return fmt.Errorf("nothing received yet")
			}
			return nil
		})
		broker.Stop(t)
		broker.Start(t)
		time.Sleep(150 * time.Millisecond) // let the link reconnect and publish before the next flap
	}
	<-written
	waitValues(t, sub, "f/", "c1_T_1", 0, total, 40*time.Second)
	msgs := sub.on("f/")
	seen := map[string]int{}
	dupMsgs := 0
	for _, m := range msgs {
		var p jsonPayload
		must(t, json.Unmarshal([]byte(m.Payload), &p))
		k := m.Topic + " " + p.ID
		if seen[k]++; seen[k] > 1 {
			dupMsgs++
		}
	}
	counts := valueCounts(t, msgs, "c1_T_1")
	dupValues := 0
	for _, c := range counts {
		dupValues += c - 1
	}
	// At most the one message in flight when each connection dropped is sent again.
	if dupMsgs > flaps {
		t.Fatalf("%d duplicate messages (%d duplicate values) over %d flaps: a duplicate storm", dupMsgs, dupValues, flaps)
	}
	t.Logf("%d values in %d messages, %d duplicate messages (%d values) over %d flaps", total, len(msgs), dupMsgs, dupValues, flaps)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// window_ms forwards the newest value of a point once per window; deadband drops
// changes smaller than it.
func TestMQTTWindowAndDeadband(t *testing.T) {
	s := newSite(t)
	broker := testharness.StartMosquitto(t)
	sub := subscribe(t, broker.Addr, "w/#")
	sub.ready(broker.Addr, "w/probe")
	s.links(fmt.Sprintf(`
links:
  - name: w
    type: mqtt
    broker: %s
    topic: "w/{{.Source}}"
    window_ms: 1000
    deadband: 5
`, broker.URL()))
	s.start()
	s.changes(1, 0, 20)
	waitValues(t, sub, "w/", "c1_T_1", 19, 1, 20*time.Second)
	counts := valueCounts(t, sub.on("w/"), "c1_T_1")
	if len(counts) > 3 {
		t.Fatalf("%d values forwarded for 20 changes inside about one window: %v", len(counts), counts)
	}
	s.change(1, point.Telemetry, 1, 21)                      // inside the deadband of 19
	testharness.Eventually(t, 20*time.Second, func() error { // read, windowed and acknowledged
		groups, err := s.rdb.XInfoGroups(context.Background(), keyspace.Changes).Result()
		if err != nil {
			return err
		}
		for _, g := range groups {
			if g.Name == keyspace.NetsrvGroup("w") && g.Lag == 0 && g.Pending == 0 {
				return nil
			}
		}
		return fmt.Errorf("group netsrv:w still has entries to handle: %+v", groups)
	})
	s.change(1, point.Telemetry, 1, 30)
	waitValues(t, sub, "w/", "c1_T_1", 30, 1, 20*time.Second)
	if n := valueCounts(t, sub.on("w/"), "c1_T_1")[21]; n != 0 {
		t.Errorf("21 was forwarded although inside the deadband of 19")
	}
}
