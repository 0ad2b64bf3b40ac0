package comsrv_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voltageems/voltage/services/comsrv/commands"
	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/testharness"
)

// commandSite is one device with a setpoint (float32 holding registers, limits),
// a coil control, a bit-in-register control, a pulse control and a telemetry point.
var commandSite = files{
	"comsrv/channels.yaml": `channels:
  - {id: 1, name: pcs, protocol: modbus_tcp, enabled: true, parameters: {host: 127.0.0.1, port: {{PORT1}}, poll_interval_ms: 100, timeout_ms: 500}}
  - {id: 2, name: spare, protocol: modbus_tcp, enabled: false, parameters: {host: 127.0.0.1, port: {{PORT2}}}}
`,
	"comsrv/1/telemetry.csv":                 pointHeader + "1,power,1,0,kW,0,float,\n",
	"comsrv/1/mapping/telemetry_mapping.csv": mappingHeader + "1,1,4,0,float32,ABCD,\n",
	"comsrv/1/adjustment.csv": "point_id,signal_name,scale,offset,unit,reverse,data_type,min_value,max_value,step\n" +
		"1,power_setpoint,0.1,0,kW,0,float,-100,100,\n2,mode,1,0,,0,int,0,4,1\n3,limit,1,0,,0,int,,,\n",
	"comsrv/1/mapping/adjustment_mapping.csv": mappingHeader + "1,1,16,100,int32,CDAB,\n2,1,6,110,uint16,,\n3,1,16,112,uint16,,\n",
	"comsrv/1/control.csv": "point_id,signal_name,scale,offset,unit,reverse,data_type,control_type,on_value,off_value,pulse_duration_ms\n" +
		"1,run,1,0,,0,bool,latching,,,\n2,breaker,1,0,,0,bool,latching,,,\n3,reset,1,0,,0,bool,pulse,,,200\n4,aux,1,0,,0,bool,latching,,,\n",
	"comsrv/1/mapping/control_mapping.csv":    mappingHeader + "1,1,5,0,bool,,\n2,1,3,120,bool,,4\n3,1,1,1,bool,,\n4,1,15,2,bool,,\n",
	"comsrv/2/telemetry.csv":                  pointHeader + "1,x,1,0,,0,float,\n",
	"comsrv/2/mapping/telemetry_mapping.csv":  mappingHeader + "1,1,3,0,uint16,,\n",
	"comsrv/2/adjustment.csv":                 "point_id,signal_name,scale,offset,unit,reverse,data_type\n1,sp,1,0,,0,float\n",
	"comsrv/2/mapping/adjustment_mapping.csv": mappingHeader + "1,1,6,1,uint16,,\n",
}

func submit(t *testing.T, s *stack, c command.Command) command.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := command.Submit(ctx, s.rdb, c)
	if err != nil {
		t.Fatal(err)
	}
	r, err := command.Wait(ctx, s.rdb, id)
	if err != nil {
		t.Fatalf("command %s: %v (status %+v)", id, err, r)
	}
	return r
}

func TestCommandsReachTheDevice(t *testing.T) {
	s := startStack(t, commandSite)
	s.waitField(keyspace.ChannelStatus(1), "state", "up")

	cases := []struct {
		name string
		c    command.Command
		want float64 // engineering value the device decodes
	}{
		{"setpoint int32 CDAB with scale", command.Command{Channel: 1, Type: point.Adjustment, Point: 1, Value: -42.5, User: "op"}, -42.5},
		{"setpoint single register", command.Command{Channel: 1, Type: point.Adjustment, Point: 2, Value: 3}, 3},
		{"coil", command.Command{Channel: 1, Type: point.Control, Point: 1, Value: 1}, 1},
		{"bit in holding register", command.Command{Channel: 1, Type: point.Control, Point: 2, Value: 1}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(s.sim.Writes(1))
			r := submit(t, s, tc.c)
			if r.Status != command.OK {
				t.Fatalf("status %s (%s), want ok", r.Status, r.Error)
			}
			w := s.sim.Writes(1)[before:]
			if len(w) != 1 || w[0].Type != tc.c.Type || w[0].PointID != tc.c.Point || w[0].Value != tc.want {
				t.Fatalf("device saw writes %+v, want one write of %s%d = %g", w, tc.c.Type, tc.c.Point, tc.want)
			}
			// The point is read back from the device into its hash.
			s.waitField(keyspace.ChannelPoints(1, tc.c.Type), itoa(tc.c.Point), point.FormatValue(tc.want))
		})
	}

	t.Run("the write function code the mapping names", func(t *testing.T) {
		cases := []struct {
			c      command.Command
			wantFC uint8
		}{
			{command.Command{Channel: 1, Type: point.Control, Point: 1, Value: 1}, 5},     // read code 1 → FC 5
			{command.Command{Channel: 1, Type: point.Control, Point: 4, Value: 1}, 15},    // row says 15
			{command.Command{Channel: 1, Type: point.Adjustment, Point: 2, Value: 1}, 6},  // row says 6
			{command.Command{Channel: 1, Type: point.Adjustment, Point: 3, Value: 9}, 16}, // row says 16 for one register
			{command.Command{Channel: 1, Type: point.Adjustment, Point: 1, Value: 2}, 16}, // two registers
		}
		for _, tc := range cases {
			s.sim.ResetRequests(1)
			if r := submit(t, s, tc.c); r.Status != command.OK {
				t.Fatalf("%s%d: %s %s", tc.c.Type, tc.c.Point, r.Status, r.Error)
			}
			var fcs []uint8
			for _, req := range s.sim.Requests(1) {
				if req.Function >= 5 {
					fcs = append(fcs, req.Function)
				}
			}
			if len(fcs) != 1 || fcs[0] != tc.wantFC {
				t.Errorf("%s%d written with function codes %v, want [%d]", tc.c.Type, tc.c.Point, fcs, tc.wantFC)
			}
		}
	})

	t.Run("pulse writes on then off", func(t *testing.T) {
		before := len(s.sim.Writes(1))
		r := submit(t, s, command.Command{Channel: 1, Type: point.Control, Point: 3, Value: 1})
		if r.Status != command.OK {
			t.Fatalf("status %s (%s)", r.Status, r.Error)
		}
		w := s.sim.Writes(1)[before:]
		if len(w) != 2 || w[0].Value != 1 || w[1].Value != 0 || w[1].At.Sub(w[0].At) < 150*time.Millisecond {
			t.Fatalf("pulse writes %+v, want 1 then 0 about 200 ms apart", w)
		}
	})

	t.Run("audit log and result hash", func(t *testing.T) {
		r := submit(t, s, command.Command{Channel: 1, Type: point.Adjustment, Point: 2, Value: 4, User: "alice", Source: "test"})
		h, err := s.rdb.HGetAll(context.Background(), keyspace.Command(r.ID)).Result()
		if err != nil || h["status"] != "ok" || h["done_ts"] == "" || h["user"] != "alice" {
			t.Fatalf("cmd:%s = %v (%v)", r.ID, h, err)
		}
		if ttl := s.rdb.TTL(context.Background(), keyspace.Command(r.ID)).Val(); ttl <= 23*time.Hour {
			t.Errorf("result TTL %s, want 24 h", ttl)
		}
		entries, err := s.rdb.XRange(context.Background(), keyspace.Audit, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range entries {
			if e.Values["id"] == r.ID && e.Values["user"] == "alice" && e.Values["result"] == "ok" && e.Values["action"] == "command" {
				found = true
			}
		}
		if !found {
			t.Errorf("command %s not in audit:log (%d entries)", r.ID, len(entries))
		}
	})
}

func TestInvalidCommandsNeverReachTheDevice(t *testing.T) {
	s := startStack(t, commandSite)
	s.waitField(keyspace.ChannelStatus(1), "state", "up")
	ctx := context.Background()
	now := time.Now().UnixMilli()

	cases := []struct {
		name   string
		c      command.Command
		status command.Status
		reason string
	}{
		{"read-only point", command.Command{Channel: 1, Type: point.Adjustment, Point: 99, Value: 1}, command.Rejected, "no adjustment point 99"},
		{"above max", command.Command{Channel: 1, Type: point.Adjustment, Point: 1, Value: 250}, command.Rejected, "above the maximum 100"},
		{"below min", command.Command{Channel: 1, Type: point.Adjustment, Point: 1, Value: -101}, command.Rejected, "below the minimum -100"},
		{"off step", command.Command{Channel: 1, Type: point.Adjustment, Point: 2, Value: 2.5}, command.Rejected, "not a multiple of step 1"},
		{"control not 0/1", command.Command{Channel: 1, Type: point.Control, Point: 1, Value: 2}, command.Rejected, "takes 0 or 1"},
		{"expired", command.Command{Channel: 1, Type: point.Adjustment, Point: 1, Value: 5, TS: now - 120_000, Expires: now - 60_000}, command.Expired, "expired"},
		{"too old without expiry", command.Command{Channel: 1, Type: point.Adjustment, Point: 1, Value: 5, TS: now - 10*60_000}, command.Expired, "expired"},
		{"disabled channel", command.Command{Channel: 2, Type: point.Adjustment, Point: 1, Value: 5}, command.Rejected, "disabled"},
	}
	before := len(s.sim.Writes(1))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := submit(t, s, tc.c)
			if r.Status != tc.status || !strings.Contains(r.Error, tc.reason) {
				t.Fatalf("got %s %q, want %s containing %q", r.Status, r.Error, tc.status, tc.reason)
			}
		})
	}
	t.Run("read-only type written straight to the stream", func(t *testing.T) {
		// Producers use command.Submit, which refuses T; a hand-written entry is still checked.
		id := "raw-telemetry-cmd"
		if err := s.rdb.XAdd(ctx, xadd(keyspace.ChannelCommands(1), map[string]any{"id": id, "type": "T", "point": "1", "value": "5"})).Err(); err != nil {
			t.Fatal(err)
		}
		r, err := command.Wait(ctxTimeout(t), s.rdb, id)
		if err != nil || r.Status != command.Rejected || !strings.Contains(r.Error, "read-only") {
			t.Fatalf("got %+v %v, want rejected as read-only", r, err)
		}
	})
	t.Run("malformed entry", func(t *testing.T) {
		id := "malformed-cmd"
		if err := s.rdb.XAdd(ctx, xadd(keyspace.ChannelCommands(1), map[string]any{"id": id, "type": "A", "point": "one", "value": "5"})).Err(); err != nil {
			t.Fatal(err)
		}
		r, err := command.Wait(ctxTimeout(t), s.rdb, id)
		if err != nil || r.Status != command.Rejected || !strings.Contains(r.Error, "field point") {
			t.Fatalf("got %+v %v, want rejected naming the field", r, err)
		}
	})
	if w := s.sim.Writes(1)[before:]; len(w) != 0 {
		t.Fatalf("invalid commands reached the device: %+v", w)
	}
	// Everything was acknowledged: nothing pending in the group.
	p, err := s.rdb.XPending(ctx, keyspace.ChannelCommands(1), keyspace.CommandGroup).Result()
	if err != nil || p.Count != 0 {
		t.Fatalf("pending entries %+v (%v), want none", p, err)
	}
}

func TestCommandToADownChannelFailsFast(t *testing.T) {
	s := startStack(t, commandSite)
	s.waitField(keyspace.ChannelStatus(1), "state", "up")
	s.stopSimulator()
	s.waitField(keyspace.ChannelStatus(1), "state", "down")
	start := time.Now()
	r := submit(t, s, command.Command{Channel: 1, Type: point.Adjustment, Point: 1, Value: 5})
	if r.Status != command.Failed || !strings.Contains(r.Error, "not connected") {
		t.Fatalf("got %s %q, want failed: not connected", r.Status, r.Error)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s to fail", d)
	}
}

// TestCommandSurvivesACrashExactlyOnce kills comsrv (stops it dead at a hook, so it
// writes nothing more to Redis) at the two moments that matter, then restarts it.
func TestCommandSurvivesACrashExactlyOnce(t *testing.T) {
	t.Run("between read and execute: executed once after restart", func(t *testing.T) {
		var crashed atomic.Bool
		s := startStackWith(t, commandSite, commands.Hooks{AfterRead: func(c command.Command) bool {
			return c.Type == point.Adjustment && crashed.CompareAndSwap(false, true)
		}})
		s.waitField(keyspace.ChannelStatus(1), "state", "up")
		id, err := command.Submit(context.Background(), s.rdb, command.Command{Channel: 1, Type: point.Adjustment, Point: 1, Value: 12.5})
		if err != nil {
			t.Fatal(err)
		}
		testharness.WaitFor(t, 10*time.Second, "comsrv to read the command", crashed.Load)
		s.stopComsrvNow()
		if n := len(s.sim.Writes(1)); n != 0 {
			t.Fatalf("device saw %d writes before the restart", n)
		}
		if st := s.hget(keyspace.Command(id), "status"); st != "pending" {
			t.Fatalf("status before restart %q, want pending", st)
		}

		s.startComsrv(commands.Hooks{})
		r, err := command.Wait(ctxTimeout(t), s.rdb, id)
		if err != nil || r.Status != command.OK {
			t.Fatalf("after restart: %+v %v, want ok", r, err)
		}
		if w := s.sim.Writes(1); len(w) != 1 || w[0].Value != 12.5 {
			t.Fatalf("device writes %+v, want exactly one of 12.5", w)
		}
	})

	t.Run("between execute and record: never executed twice", func(t *testing.T) {
		var crashed atomic.Bool
		s := startStackWith(t, commandSite, commands.Hooks{AfterExecute: func(c command.Command) bool {
			return crashed.CompareAndSwap(false, true)
		}})
		s.waitField(keyspace.ChannelStatus(1), "state", "up")
		id, err := command.Submit(context.Background(), s.rdb, command.Command{Channel: 1, Type: point.Adjustment, Point: 1, Value: 7})
		if err != nil {
			t.Fatal(err)
		}
		testharness.WaitFor(t, 10*time.Second, "comsrv to execute the command", crashed.Load)
		s.stopComsrvNow()
		s.startComsrv(commands.Hooks{})
		r, err := command.Wait(ctxTimeout(t), s.rdb, id)
		if err != nil || r.Status != command.Failed || !strings.Contains(r.Error, "outcome unknown") {
			t.Fatalf("after restart: %+v %v, want failed with outcome unknown", r, err)
		}
		if w := s.sim.Writes(1); len(w) != 1 {
			t.Fatalf("device writes %+v, want exactly one", w)
		}
	})

	t.Run("recorded but not acknowledged: acknowledged, not repeated", func(t *testing.T) {
		s := startStack(t, commandSite)
		s.waitField(keyspace.ChannelStatus(1), "state", "up")
		r := submit(t, s, command.Command{Channel: 1, Type: point.Adjustment, Point: 2, Value: 1})
		if r.Status != command.OK {
			t.Fatalf("status %s", r.Status)
		}
		s.stopComsrvNow()
		// Put the entry back into the pending list, as if XACK had been lost.
		ctx := context.Background()
		entries, _ := s.rdb.XRange(ctx, keyspace.ChannelCommands(1), "-", "+").Result()
		if len(entries) != 1 {
			t.Fatalf("stream has %d entries", len(entries))
		}
		s.rdb.XGroupDestroy(ctx, keyspace.ChannelCommands(1), keyspace.CommandGroup)
		s.rdb.XGroupCreate(ctx, keyspace.ChannelCommands(1), keyspace.CommandGroup, "0")
		s.rdb.XReadGroup(ctx, xread(keyspace.ChannelCommands(1), "comsrv-test"))
		writes := len(s.sim.Writes(1))
		s.startComsrv(commands.Hooks{})
		testharness.WaitFor(t, 10*time.Second, "the entry to be acknowledged", func() bool {
			p, err := s.rdb.XPending(ctx, keyspace.ChannelCommands(1), keyspace.CommandGroup).Result()
			return err == nil && p.Count == 0
		})
		if n := len(s.sim.Writes(1)); n != writes {
			t.Fatalf("the command was executed again (%d writes, had %d)", n, writes)
		}
	})
}

// TestCommandBurstLargerThanTheQueue sends more commands at once than a channel's
// queue holds: the ones the full queue turns away wait in Redis and are executed
// all the same, each once.
func TestCommandBurstLargerThanTheQueue(t *testing.T) {
	s := startStack(t, commandSite)
	s.waitField(keyspace.ChannelStatus(1), "state", "up")
	// Queue them while comsrv is stopped, so its reader gets a full batch at once.
	s.stopComsrvNow()
	ctx := context.Background()
	const n = 150
	var ids []string
	for i := range n {
		id, err := command.Submit(ctx, s.rdb, command.Command{Channel: 1, Type: point.Adjustment, Point: 2, Value: float64(i % 5)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	s.startComsrv(commands.Hooks{})
	for _, id := range ids {
		r, err := command.Wait(ctxTimeout(t), s.rdb, id)
		if err != nil || r.Status != command.OK {
			t.Fatalf("command %s: %+v %v", id, r, err)
		}
	}
	writes := 0
	for _, w := range s.sim.Writes(1) {
		if w.Type == point.Adjustment && w.PointID == 2 {
			writes++
		}
	}
	if writes != n {
		t.Fatalf("device saw %d writes, want %d", writes, n)
	}
}
