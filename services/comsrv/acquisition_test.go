package comsrv_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/tools/voltsim"
)

const pointHeader = "point_id,signal_name,scale,offset,unit,reverse,data_type,description\n"
const mappingHeader = "point_id,slave_id,function_code,register_address,data_type,byte_order,bit_position\n"

// typeCase is one point of the every-type-and-order table.
type typeCase struct {
	id            point.ID
	dataType      string
	order         string
	raw           float64 // the raw value the device holds
	scale, offset float64
	reverse       bool
}

func everyTypeAndOrder() []typeCase {
	var cases []typeCase
	add := func(dt string, orders []string, raw, scale, offset float64) {
		for _, o := range orders {
			cases = append(cases, typeCase{dataType: dt, order: o, raw: raw, scale: scale, offset: offset})
		}
	}
	o16 := []string{"AB", "BA"}
	o32 := []string{"ABCD", "DCBA", "BADC", "CDAB"}
	o64 := []string{"ABCDEFGH", "HGFEDCBA", "BADCFEHG", "GHEFCDAB"}
	add("int16", o16, -1234, 0.1, 5)
	add("uint16", o16, 54321, 0.01, 0)
	add("int32", o32, -123456789, 0.001, 0)
	add("uint32", o32, 4000000000, 1, -10)
	add("float32", o32, float64(float32(123.456)), 1, 0)
	add("int64", o64, -1234567890123, 1, 0)
	add("uint64", o64, 12345678901234, 0.5, 0)
	add("float64", o64, -9876.54321, 2, 1)
	for i := range cases {
		cases[i].id = point.ID(i + 1)
	}
	return cases
}

// typesSite builds channel 1 with every data type × byte order as telemetry on
// holding registers, and bools from all four areas as signals.
var registers = map[string]int{"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "int64": 4, "uint64": 4, "float64": 4}

func typesSite(cases []typeCase) files {
	var tel, telMap strings.Builder
	tel.WriteString(pointHeader)
	telMap.WriteString(mappingHeader)
	addr := 0
	for _, c := range cases {
		fmt.Fprintf(&tel, "%d,%s_%s,%g,%g,,0,float,\n", c.id, c.dataType, c.order, c.scale, c.offset)
		fmt.Fprintf(&telMap, "%d,1,3,%d,%s,%s,\n", c.id, addr, c.dataType, c.order)
		addr += registers[c.dataType]
	}
	return files{
		"comsrv/channels.yaml": `channels:
  - {id: 1, name: dev1, protocol: modbus_tcp, enabled: true,
     parameters: {host: 127.0.0.1, port: {{PORT1}}, poll_interval_ms: 100, timeout_ms: 500, max_gap: 200}}
`,
		"comsrv/1/telemetry.csv":                 tel.String(),
		"comsrv/1/mapping/telemetry_mapping.csv": telMap.String(),
		"comsrv/1/signal.csv": pointHeader + `1,coil_on,1,0,,0,bool,
2,di_on,1,0,,0,bool,
3,reg_bit3,1,0,,0,bool,
4,input_bit15_reversed,1,0,,1,bool,
`,
		"comsrv/1/mapping/signal_mapping.csv": mappingHeader + `1,1,1,10,bool,,
2,1,2,20,bool,,
3,1,3,500,bool,,3
4,1,4,30,bool,,15
`,
	}
}

func TestEveryDataTypeAndByteOrderDecodes(t *testing.T) {
	cases := everyTypeAndOrder()
	s := startStack(t, typesSite(cases))
	for _, c := range cases {
		eng := point.Engineering(c.raw, c.scale, c.offset, c.reverse)
		if err := s.sim.SetValue(1, point.Telemetry, c.id, eng); err != nil {
			t.Fatalf("set %s %s: %v", c.dataType, c.order, err)
		}
	}
	signals := map[point.ID]float64{1: 1, 2: 1, 3: 1, 4: 0} // 4 is reversed: device bit 1 → 0
	for id, v := range signals {
		if err := s.sim.SetValue(1, point.Signal, id, v); err != nil {
			t.Fatalf("set signal %d: %v", id, err)
		}
	}

	vals := keyspace.ChannelPoints(1, point.Telemetry)
	for _, c := range cases {
		name := c.dataType + "/" + c.order
		want := point.FormatValue(point.Engineering(c.raw, c.scale, c.offset, c.reverse))
		testharness.Eventually(t, 10*time.Second, func() error {
			if got := s.hget(vals, fmt.Sprint(c.id)); got != want {
				return fmt.Errorf("%s: value %q, want %q", name, got, want)
			}
			return nil
		})
		if got, want := s.hget(keyspace.ChannelRaw(1, point.Telemetry), fmt.Sprint(c.id)), point.FormatValue(c.raw); got != want {
			t.Errorf("%s: raw %q, want %q (the device value before scale/offset)", name, got, want)
		}
	}
	for id, v := range signals {
		s.waitField(keyspace.ChannelPoints(1, point.Signal), fmt.Sprint(id), point.FormatValue(v))
	}
	if got := s.hget(keyspace.ChannelRaw(1, point.Signal), "4"); got != "1" {
		t.Errorf("reversed signal raw = %q, want 1 (the device bit)", got)
	}
	checkTimestamps(t, s, keyspace.ChannelTimestamps(1, point.Telemetry), len(cases))
}

// checkTimestamps checks every point of a hash has a recent Unix ms timestamp.
func checkTimestamps(t *testing.T, s *stack, key string, n int) {
	t.Helper()
	tss, err := s.rdb.HGetAll(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(tss) != n {
		t.Fatalf("%s has %d timestamps, want %d", key, len(tss), n)
	}
	now := time.Now().UnixMilli()
	for id, ts := range tss {
		var ms int64
		if _, err := fmt.Sscan(ts, &ms); err != nil || ms > now || now-ms > 60_000 {
			t.Errorf("%s point %s: timestamp %q is not a recent Unix ms", key, id, ts)
		}
	}
}

func TestEachBatchIsOneMessageAndOneStreamEntry(t *testing.T) {
	cases := everyTypeAndOrder()[:4]
	s := startStack(t, typesSite(cases))
	ctx := context.Background()
	key := keyspace.ChannelPoints(1, point.Telemetry)
	for _, c := range cases {
		_ = s.sim.SetValue(1, point.Telemetry, c.id, 1)
	}
	s.waitField(key, fmt.Sprint(cases[3].id), "1")

	sub := s.rdb.Subscribe(ctx, key)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	last, err := s.rdb.XRevRangeN(ctx, keyspace.Changes, "+", "-", 1).Result()
	if err != nil || len(last) == 0 {
		t.Fatalf("voltage:changes is empty after the first values: %v", err)
	}
	start := last[0].ID

	// Three changes, each waited for, so they land in three different polls.
	for i, v := range []float64{2, 3, 4} {
		_ = s.sim.SetValue(1, point.Telemetry, cases[i].id, v)
		s.waitField(key, fmt.Sprint(cases[i].id), point.FormatValue(v))
	}
	var msgs []string
	testharness.WaitFor(t, 5*time.Second, "three pub/sub messages", func() bool {
		select {
		case m := <-sub.Channel():
			msgs = append(msgs, m.Payload)
		case <-time.After(50 * time.Millisecond):
		}
		return len(msgs) >= 3
	})
	entries, err := s.rdb.XRange(ctx, keyspace.Changes, "("+start, "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var mine []string
	for _, e := range entries {
		if e.Values["key"] == key {
			mine = append(mine, e.Values["m"].(string))
		}
	}
	if !slices.Equal(mine, msgs) {
		t.Fatalf("pub/sub messages and stream entries differ:\npub/sub: %q\nstream:  %q", msgs, mine)
	}
	for i, m := range msgs {
		dm, err := statestore.DecodeMessage([]byte(m))
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if len(dm.V) != 1 || dm.V[fmt.Sprint(cases[i].id)] != float64(i+2) {
			t.Errorf("message %d = %s, want only point %d = %d", i, m, cases[i].id, i+2)
		}
	}
}

func TestBlockPlanningRequestsCountedAtTheDevice(t *testing.T) {
	tel := pointHeader + "1,a,1,0,,0,float,\n2,b,1,0,,0,float,\n3,c,1,0,,0,float,\n4,d,1,0,,0,float,\n5,e,1,0,,0,float,\n6,f,1,0,,0,float,\n"
	// Slave 1: 0-1 (float32), 5 (3 gap), 30-31 (24 gap), 40 ; slave 2: 0.
	mapping := mappingHeader + "1,1,4,0,float32,ABCD,\n2,1,4,5,uint16,,\n3,1,4,30,uint16,,\n4,1,4,31,uint16,,\n5,1,4,40,uint16,,\n6,2,4,0,uint16,,\n"
	fs := files{"comsrv/channels.yaml": `channels:
  - {id: 1, name: gap10, protocol: modbus_tcp, enabled: true, parameters: {host: 127.0.0.1, port: {{PORT1}}, poll_interval_ms: 50}}
  - {id: 2, name: nogap, protocol: modbus_tcp, enabled: true, parameters: {host: 127.0.0.1, port: {{PORT2}}, poll_interval_ms: 50, max_gap: 0}}
  - {id: 3, name: perpoint, protocol: modbus_tcp, enabled: true, parameters: {host: 127.0.0.1, port: {{PORT3}}, poll_interval_ms: 50, per_point_requests: true}}
  - {id: 4, name: small, protocol: modbus_tcp, enabled: true, parameters: {host: 127.0.0.1, port: {{PORT4}}, poll_interval_ms: 50, max_gap: 50, max_registers: 20}}
`}
	for ch := 1; ch <= 4; ch++ {
		fs[fmt.Sprintf("comsrv/%d/telemetry.csv", ch)] = tel
		fs[fmt.Sprintf("comsrv/%d/mapping/telemetry_mapping.csv", ch)] = mapping
	}
	s := startStack(t, fs)
	want := map[uint32][]voltsim.RequestLog{
		1: {{Slave: 1, Function: 4, Address: 0, Count: 6}, {Slave: 1, Function: 4, Address: 30, Count: 11}, {Slave: 2, Function: 4, Address: 0, Count: 1}},
		2: {{Slave: 1, Function: 4, Address: 0, Count: 2}, {Slave: 1, Function: 4, Address: 5, Count: 1}, {Slave: 1, Function: 4, Address: 30, Count: 2}, {Slave: 1, Function: 4, Address: 40, Count: 1}, {Slave: 2, Function: 4, Address: 0, Count: 1}},
		3: {{Slave: 1, Function: 4, Address: 0, Count: 2}, {Slave: 1, Function: 4, Address: 5, Count: 1}, {Slave: 1, Function: 4, Address: 30, Count: 1}, {Slave: 1, Function: 4, Address: 31, Count: 1}, {Slave: 1, Function: 4, Address: 40, Count: 1}, {Slave: 2, Function: 4, Address: 0, Count: 1}},
		4: {{Slave: 1, Function: 4, Address: 0, Count: 6}, {Slave: 1, Function: 4, Address: 30, Count: 11}, {Slave: 2, Function: 4, Address: 0, Count: 1}},
	}
	for ch, w := range want {
		testharness.Eventually(t, 10*time.Second, func() error {
			got := s.sim.Requests(ch)
			if len(got) < 2*len(w) {
				return fmt.Errorf("channel %d: %d requests so far", ch, len(got))
			}
			// Every poll sends exactly the planned requests, in order.
			for poll := 0; poll < 2; poll++ {
				if seq := got[poll*len(w) : (poll+1)*len(w)]; !slices.Equal(seq, w) {
					return fmt.Errorf("channel %d poll %d requests %v, want %v", ch, poll, seq, w)
				}
			}
			return nil
		})
	}
	// The gaps read across must not turn into values: only mapped points are stored.
	n, err := s.rdb.HLen(context.Background(), keyspace.ChannelPoints(1, point.Telemetry)).Result()
	if err != nil || n != 6 {
		t.Errorf("channel 1 stores %d telemetry points, want 6 (%v)", n, err)
	}
}

func TestQualityTurnsCommLostAndRecovers(t *testing.T) {
	tel := pointHeader + "1,p,1,0,,0,float,\n"
	mapping := mappingHeader + "1,1,3,0,uint16,,\n"
	fs := files{"comsrv/channels.yaml": `channels:
  - {id: 1, name: flaky, protocol: modbus_tcp, enabled: true, parameters: {host: 127.0.0.1, port: {{PORT1}}, poll_interval_ms: 100, timeout_ms: 200}}
  - {id: 2, name: steady, protocol: modbus_tcp, enabled: true, parameters: {host: 127.0.0.1, port: {{PORT2}}, poll_interval_ms: 100, timeout_ms: 200}}
`,
		"comsrv/1/telemetry.csv": tel, "comsrv/1/mapping/telemetry_mapping.csv": mapping,
		"comsrv/2/telemetry.csv": tel, "comsrv/2/mapping/telemetry_mapping.csv": mapping,
	}
	s := startStack(t, fs)
	_ = s.sim.SetValue(1, point.Telemetry, 1, 7)
	s.waitField(keyspace.ChannelPoints(1, point.Telemetry), "1", "7")
	s.waitField(keyspace.ChannelStatus(1), "state", "up")

	for _, mode := range []voltsim.FaultMode{voltsim.FaultTimeout, voltsim.FaultException, voltsim.FaultDrop} {
		t.Run(string(mode), func(t *testing.T) {
			polls := s.hget(keyspace.ChannelStatus(2), "polls")
			if err := s.sim.SetFault(1, voltsim.Fault{Mode: mode, ExceptionCode: 4}); err != nil {
				t.Fatal(err)
			}
			faultAt := time.Now()
			s.waitField(keyspace.ChannelStatus(1), "state", "down")
			s.waitField(keyspace.ChannelQuality(1, point.Telemetry), "1", "comm_lost")
			// Two poll intervals plus one request timeout: DESIGN's "within two poll intervals" of the failure showing.
			if d := time.Since(faultAt); d > 2*time.Second {
				t.Errorf("comm_lost after %s", d)
			}
			if got := s.hget(keyspace.ChannelPoints(1, point.Telemetry), "1"); got != "7" {
				t.Errorf("value changed to %q while the link was down; the last value must stay, marked comm_lost", got)
			}
			if e := s.hget(keyspace.ChannelStatus(1), "last_error"); e == "" {
				t.Error("status has no last_error")
			}
			// The other channel keeps polling and stays good.
			testharness.WaitFor(t, 5*time.Second, "channel 2 to keep polling", func() bool {
				return s.hget(keyspace.ChannelStatus(2), "polls") != polls && s.hget(keyspace.ChannelStatus(2), "state") == "up"
			})
			if q := s.hget(keyspace.ChannelQuality(2, point.Telemetry), "1"); q != "" {
				t.Errorf("channel 2 quality %q, want good", q)
			}

			if err := s.sim.SetFault(1, voltsim.Fault{Mode: voltsim.FaultNone}); err != nil {
				t.Fatal(err)
			}
			s.waitField(keyspace.ChannelStatus(1), "state", "up")
			testharness.WaitFor(t, 10*time.Second, "quality good again", func() bool {
				return s.hget(keyspace.ChannelQuality(1, point.Telemetry), "1") == ""
			})
		})
	}
	// Reconnects back off: the link error counter grew, but not once per poll.
	var errs int
	fmt.Sscan(s.hget(keyspace.ChannelStatus(1), "errors"), &errs)
	if errs < 3 {
		t.Errorf("status errors = %d, want at least one per fault", errs)
	}
}

func TestComsrvResumesAfterRedisRestart(t *testing.T) {
	tel := pointHeader + "1,p,1,0,,0,float,\n"
	fs := files{"comsrv/channels.yaml": `channels:
  - {id: 1, name: dev, protocol: modbus_tcp, enabled: true, parameters: {host: 127.0.0.1, port: {{PORT1}}, poll_interval_ms: 100}}
`, "comsrv/1/telemetry.csv": tel, "comsrv/1/mapping/telemetry_mapping.csv": mappingHeader + "1,1,3,0,uint16,,\n"}
	s := startStack(t, fs)
	_ = s.sim.SetValue(1, point.Telemetry, 1, 11)
	s.waitField(keyspace.ChannelPoints(1, point.Telemetry), "1", "11")

	s.redis.Restart(t) // no persistence: Redis comes back empty
	// The unchanged value must be rewritten without a device change.
	s.waitField(keyspace.ChannelPoints(1, point.Telemetry), "1", "11")
	_ = s.sim.SetValue(1, point.Telemetry, 1, 12)
	s.waitField(keyspace.ChannelPoints(1, point.Telemetry), "1", "12")
	s.waitField(keyspace.ChannelStatus(1), "state", "up")
}

func TestIntegrityWriteRefreshesUnchangedValues(t *testing.T) {
	fs := files{"comsrv/channels.yaml": `channels:
  - {id: 1, name: dev, protocol: modbus_tcp, enabled: true, parameters: {host: 127.0.0.1, port: {{PORT1}}, poll_interval_ms: 50, integrity_interval_ms: 300, deadband: 5}}
`, "comsrv/1/telemetry.csv": pointHeader + "1,p,1,0,,0,float,\n", "comsrv/1/mapping/telemetry_mapping.csv": mappingHeader + "1,1,3,0,uint16,,\n"}
	s := startStack(t, fs)
	key := keyspace.ChannelPoints(1, point.Telemetry)
	_ = s.sim.SetValue(1, point.Telemetry, 1, 100)
	s.waitField(key, "1", "100")
	ts1 := s.hget(keyspace.ChannelTimestamps(1, point.Telemetry), "1")

	// A change inside the deadband is not reported at once, but the integrity
	// write brings the current value within its interval.
	_ = s.sim.SetValue(1, point.Telemetry, 1, 103)
	s.waitField(key, "1", "103")
	if ts2 := s.hget(keyspace.ChannelTimestamps(1, point.Telemetry), "1"); ts2 == ts1 {
		t.Error("integrity write did not refresh the timestamp")
	}
	// A change beyond the deadband is reported.
	_ = s.sim.SetValue(1, point.Telemetry, 1, 120)
	s.waitField(key, "1", "120")
}

func TestFailingSlaveIsBackedOffWithoutStallingTheOthers(t *testing.T) {
	fs := files{"comsrv/channels.yaml": `channels:
  - {id: 1, name: gateway, protocol: modbus_tcp, enabled: true, parameters: {host: 127.0.0.1, port: {{PORT1}}, poll_interval_ms: 100, timeout_ms: 300, slave_backoff_ms: 1000}}
`,
		"comsrv/1/telemetry.csv":                 pointHeader + "1,a,1,0,,0,float,\n2,b,1,0,,0,float,\n",
		"comsrv/1/mapping/telemetry_mapping.csv": mappingHeader + "1,1,3,0,uint16,,\n2,2,3,0,uint16,,\n",
	}
	s := startStack(t, fs)
	key := keyspace.ChannelPoints(1, point.Telemetry)
	_ = s.sim.SetValue(1, point.Telemetry, 1, 1)
	_ = s.sim.SetValue(1, point.Telemetry, 2, 1)
	s.waitField(key, "2", "1")

	slave2 := uint8(2)
	if err := s.sim.SetFault(1, voltsim.Fault{Mode: voltsim.FaultTimeout, Slave: &slave2}); err != nil {
		t.Fatal(err)
	}
	s.waitField(keyspace.ChannelQuality(1, point.Telemetry), "2", "comm_lost")
	// Slave 1 keeps being read at the poll rate while slave 2 is backed off.
	for v := 2.0; v <= 4; v++ {
		_ = s.sim.SetValue(1, point.Telemetry, 1, v)
		s.waitField(key, "1", point.FormatValue(v))
	}
	if st := s.hget(keyspace.ChannelStatus(1), "state"); st != "up" {
		t.Errorf("link state %q while one slave fails, want up", st)
	}
	if q := s.hget(keyspace.ChannelQuality(1, point.Telemetry), "1"); q != "" {
		t.Errorf("slave 1 quality %q, want good", q)
	}
	// Backed off: slave 2 is asked far less often than slave 1.
	s.sim.ResetRequests(1)
	testharness.WaitFor(t, 20*time.Second, "20 requests to slave 1", func() bool {
		n := 0
		for _, r := range s.sim.Requests(1) {
			if r.Slave == 1 {
				n++
			}
		}
		return n >= 20
	})
	n2 := 0
	for _, r := range s.sim.Requests(1) {
		if r.Slave == 2 {
			n2++
		}
	}
	if n2 > 3 {
		t.Errorf("slave 2 asked %d times while slave 1 was asked 20 times; it should be backed off", n2)
	}

	// Recovery: the slave answers again and its points turn good.
	if err := s.sim.SetFault(1, voltsim.Fault{Mode: voltsim.FaultNone}); err != nil {
		t.Fatal(err)
	}
	_ = s.sim.SetValue(1, point.Telemetry, 2, 9)
	s.waitField(key, "2", "9")
	testharness.WaitFor(t, 20*time.Second, "slave 2 good again", func() bool {
		return s.hget(keyspace.ChannelQuality(1, point.Telemetry), "2") == ""
	})
}
