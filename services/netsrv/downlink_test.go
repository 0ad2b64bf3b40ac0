package netsrv_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/services/comsrv"
	"github.com/voltageems/voltage/services/modsrv"
	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/tools/sitetest"
	"github.com/voltageems/voltage/tools/voltsim"
)

const (
	pointHeader   = "point_id,signal_name,scale,offset,unit,reverse,data_type\n"
	mappingHeader = "point_id,slave_id,function_code,register_address,data_type,byte_order,bit_position\n"
)

// deviceSite adds a Modbus device (channel 1) with a setpoint A1 in -100..100 and
// a mode A2 to the site, and runs voltsim and comsrv in this process.
func (s *site) startDevice() *voltsim.Sim {
	s.t.Helper()
	port := testharness.FreePort(s.t)
	s.write("comsrv/channels.yaml", fmt.Sprintf(`channels:
  - {id: 1, name: pcs, protocol: modbus_tcp, enabled: true, parameters: {host: 127.0.0.1, port: %d, poll_interval_ms: 100, timeout_ms: 500}}
`, port))
	s.write("comsrv/1/telemetry.csv", pointHeader+"1,power,1,0,kW,0,float\n")
	s.write("comsrv/1/mapping/telemetry_mapping.csv", mappingHeader+"1,1,4,0,float32,ABCD,\n")
	s.write("comsrv/1/adjustment.csv", "point_id,signal_name,scale,offset,unit,reverse,data_type,min_value,max_value,step\n"+
		"1,power_setpoint,1,0,kW,0,float,-100,100,\n2,mode,1,0,,0,int,0,4,1\n")
	s.write("comsrv/1/mapping/adjustment_mapping.csv", mappingHeader+"1,1,16,100,float32,ABCD,\n2,1,6,110,uint16,,\n")
	// The thing model: instance 5 is a PCS whose actions are routed to channel 1.
	s.write("modsrv/products/test_pcs.yaml", `id: test_pcs
name: Test PCS
actions:
  - {id: 1, name: power_setpoint, type: float, unit: kW, min: -100, max: 100}
  - {id: 2, name: charge, type: int, min: 0, max: 4, step: 1}
  - {id: 3, name: discharge, type: int, min: 0, max: 4, step: 1}
`)
	s.write("modsrv/instances.yaml", "instances:\n  - {id: 5, name: pcs5, product: test_pcs}\n")
	s.write("modsrv/instances/pcs5/channel_routing.csv", "channel_id,channel_type,channel_point_id,instance_type,instance_point_id\n"+
		"1,A,1,A,power_setpoint\n1,A,2,A,charge\n")
	cfg, err := config.Load(s.dir)
	if err != nil {
		s.t.Fatalf("load site: %v", err)
	}
	// modsrv turns instance actions into channel commands (DESIGN §5).
	sitetest.Run(s.t.(*testing.T), "modsrv", "/readyz", func(ctx context.Context, bound func(net.Addr)) error {
		return modsrv.Run(ctx, modsrv.Config{Site: cfg, ConfigDir: s.dir, HTTPAddr: "127.0.0.1:0", Log: testLogger(s.t),
			ConsumerName: "modsrv-test", Bound: bound})
	})
	sim, err := voltsim.New(cfg, voltsim.Options{Logger: testLogger(s.t), Seed: 1})
	if err != nil {
		s.t.Fatalf("voltsim: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	simDone, comDone := make(chan error, 1), make(chan error, 1)
	go func() { simDone <- sim.Run(ctx) }()
	bound := make(chan net.Addr, 1)
	go func() {
		comDone <- comsrv.Run(ctx, comsrv.Config{Site: cfg, HTTPAddr: "127.0.0.1:0", Log: testLogger(s.t),
			ConsumerName: "comsrv-test", Bound: func(a net.Addr) { bound <- a }})
	}()
	s.t.Cleanup(func() {
		cancel()
		for _, c := range []chan error{comDone, simDone} {
			select {
			case <-c:
			case <-time.After(10 * time.Second):
				s.t.Error("comsrv or voltsim did not stop within 10 s")
			}
		}
	})
	select {
	case <-bound:
	case err := <-comDone:
		s.t.Fatalf("comsrv stopped at start: %v", err)
	case <-time.After(15 * time.Second):
		s.t.Fatal("comsrv did not start within 15 s")
	}
	testharness.Eventually(s.t, 15*time.Second, func() error {
		if st, _ := s.rdb.HGet(context.Background(), keyspace.ChannelStatus(1), "state").Result(); st != "up" {
			return fmt.Errorf("channel 1 is %q, want up", st)
		}
		return nil
	})
	return sim
}

// Cloud writes through the command path: an allowed point reaches the simulated
// device and the reply says ok; a point not on the allow-list and a malformed
// write are rejected with a reason and submit nothing; a write comsrv refuses
// (out of range) comes back with comsrv's verdict. The Aliyun property set takes
// the same path.
func TestDownlinkWritesThroughTheCommandPath(t *testing.T) {
	s := newSite(t)
	sim := s.startDevice()
	broker := testharness.StartMosquitto(t)
	sub := subscribe(t, broker.Addr, "#")
	sub.ready(broker.Addr, "probe/probe")
	s.links(fmt.Sprintf(`
links:
  - name: cloud
    type: mqtt
    broker: %[1]s
    topic: "up/{{.Source}}/{{.Type}}"
    downlink: {topic: "down/write"}
    allow_write:
      - {channel: 1, types: [A], points: [1]}
  - name: act
    type: mqtt
    broker: %[1]s
    topic: "act/{{.Source}}"
    select: [{channel: 99}]
    downlink: {topic: "down/act"}
    write_timeout_s: 1
    aliases: {Charge: "inst:5:A:charge"}
    allow_write:
      - {instance: 5, actions: [charge]}
  - name: ali
    type: aliyun
    broker: %[1]s
    aliyun: {product_key: pk1, device_name: dev1, device_secret: s}
    aliases: {PowerSetpoint: "1:A:1"}
    allow_write:
      - {channel: 1, types: [A], points: [1]}
`, broker.URL()))
	s.start()
	pub := testharness.Binary(t, "mosquitto_pub", "mosquitto-clients")
	send := func(topic, payload string) {
		t.Helper()
		out, err := exec.Command(pub, "-h", "127.0.0.1", "-p", broker.Port(), "-t", topic, "-m", payload, "-q", "1").CombinedOutput()
		if err != nil {
			t.Fatalf("mosquitto_pub: %v: %s", err, out)
		}
	}
	reply := func(topic, id string) map[string]any {
		t.Helper()
		var got map[string]any
		testharness.Eventually(t, 20*time.Second, func() error {
			for _, m := range sub.on(topic) {
				var r map[string]any
				if json.Unmarshal([]byte(m.Payload), &r) == nil && r["id"] == id {
					got = r
					return nil
				}
			}
			return fmt.Errorf("no reply %q on %s", id, topic)
		})
		return got
	}
	commands := func() int64 {
		n, err := s.rdb.XLen(context.Background(), keyspace.ChannelCommands(1)).Result()
		must(t, err)
		return n
	}
	// Wait until both links subscribed: a write before that would go unanswered.
	testharness.Eventually(t, 20*time.Second, func() error {
		send("down/write", `{"id":"w0","point":"9:T:1","value":1}`)
		for _, m := range sub.on("down/write/reply") {
			if strings.Contains(m.Payload, `"w0"`) {
				return nil
			}
		}
		return fmt.Errorf("downlink not subscribed yet")
	})

	sim.ResetWrites(1)
	send("down/write", `{"id":"w1","point":"1:A:1","value":42.5}`)
	if r := reply("down/write/reply", "w1"); r["status"] != "ok" || r["command_id"] == "" {
		t.Fatalf("allowed write: reply %v", r)
	}
	if w := sim.Writes(1); len(w) != 1 || w[0].Type != point.Adjustment || w[0].PointID != 1 || w[0].Value != 42.5 {
		t.Fatalf("device saw %+v, want one write A1 = 42.5", w)
	}
	before := commands()

	send("down/write", `{"id":"w2","point":"1:A:2","value":3}`)
	if r := reply("down/write/reply", "w2"); r["status"] != "rejected" || !strings.Contains(fmt.Sprint(r["error"]), "allow_write") {
		t.Errorf("write of a point not on the allow-list: reply %v", r)
	}
	send("down/write", `{"id":"w3","point":"1:A:1","value":"lots"}`)
	if r := reply("down/write/reply", "w3"); r["status"] != "rejected" || !strings.Contains(fmt.Sprint(r["error"]), "malformed") {
		t.Errorf("malformed write: reply %v", r)
	}
	send("down/write", `{"id":"w4","value":1}`)
	if r := reply("down/write/reply", "w4"); r["status"] != "rejected" || !strings.Contains(fmt.Sprint(r["error"]), "point is missing") {
		t.Errorf("write without point: reply %v", r)
	}
	send("down/write", `definitely not json`)
	testharness.Eventually(t, 10*time.Second, func() error {
		for _, m := range sub.on("down/write/reply") {
			if strings.Contains(m.Payload, `"rejected"`) && strings.Contains(m.Payload, "not a JSON write") {
				return nil
			}
		}
		return fmt.Errorf("no rejection of a non-JSON write")
	})
	if n := commands(); n != before {
		t.Errorf("refused writes submitted %d commands", n-before)
	}
	if w := sim.Writes(1); len(w) != 1 {
		t.Errorf("refused writes reached the device: %+v", w)
	}

	// comsrv's own checks still apply and their verdict is the reply.
	send("down/write", `{"id":"w5","point":"1:A:1","value":500}`)
	if r := reply("down/write/reply", "w5"); r["status"] != "rejected" || r["error"] == "" {
		t.Errorf("out-of-range write: reply %v", r)
	}

	// Instance actions go through modsrv, which checks the product's limits and
	// commands the routed channel point; actions not allowed are rejected.
	sim.ResetWrites(1)
	send("down/act", `{"id":"a1","point":"Charge","value":3}`)
	if r := reply("down/act/reply", "a1"); r["status"] != "ok" || r["command_id"] == "" {
		t.Errorf("allowed instance action: reply %v", r)
	}
	if w := sim.Writes(1); len(w) != 1 || w[0].Type != point.Adjustment || w[0].PointID != 2 || w[0].Value != 3 {
		t.Errorf("device saw %+v, want one write A2 = 3 (instance 5's charge action)", w)
	}
	send("down/act", `{"id":"a2","point":"inst:5:A:discharge","value":1}`)
	if r := reply("down/act/reply", "a2"); r["status"] != "rejected" {
		t.Errorf("instance action not on the allow-list: reply %v", r)
	}
	entries, err := s.rdb.XRange(context.Background(), keyspace.InstanceActionStream, "-", "+").Result()
	must(t, err)
	if len(entries) != 1 {
		t.Fatalf("inst:actions has %d entries, want the one allowed action", len(entries))
	}
	a, err := command.ParseAction(entries[0].ID, entries[0].Values)
	if err != nil || a.Instance != 5 || a.Action != "charge" || a.Value != 3 || a.Source != "cloud" || a.User != "netsrv:act" {
		t.Errorf("action %+v, %v", a, err)
	}

	// Aliyun property set → command → device; the reply has code 200.
	set := "/sys/pk1/dev1/thing/service/property/set"
	send(set, `{"id":"77","version":"1.0","params":{"PowerSetpoint":-12.5},"method":"thing.service.property.set"}`)
	if r := reply(set+"_reply", "77"); r["code"] != 200.0 {
		t.Fatalf("aliyun property set: reply %v", r)
	}
	testharness.Eventually(t, 10*time.Second, func() error {
		w := sim.Writes(1)
		if len(w) == 0 || w[len(w)-1].Value != -12.5 {
			return fmt.Errorf("device writes %+v, want the last to be -12.5", w)
		}
		return nil
	})
}
