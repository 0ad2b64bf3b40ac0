package comsrv_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/services/comsrv/commands"
	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/tools/voltsim"
	"github.com/voltageems/voltage/tools/voltsim/iec104"
)

const iecMapHeader = "point_id,common_address,ioa,type_id,cot,sbo\n"

// iec104Site is one controlled station (common address 7) with every monitoring
// family and every command type. params are extra channel parameters.
func iec104Site(params string) files {
	return files{
		"comsrv/channels.yaml": `channels:
  - {id: 1, name: rtu, protocol: iec104, enabled: true, parameters: {host: 127.0.0.1, port: {{PORT1}}` + params + `}}
`,
		"comsrv/1/telemetry.csv": pointHeader +
			"1,f1,1,0,,0,float,\n2,s1,0.1,0,,0,float,\n3,n1,100,0,,0,float,\n4,f2,1,0,,0,float,\n" +
			"5,e1,1,0,,0,float,\n6,st,1,0,,0,int,\n7,bits,1,0,,0,int,\n",
		"comsrv/1/mapping/telemetry_mapping.csv": iecMapHeader +
			"1,7,100,M_ME_NC_1,,\n2,7,101,11,,\n3,7,102,M_ME_NA_1,,\n4,7,103,M_ME_TF_1,,\n" +
			"5,7,104,M_IT_NA_1,,\n6,7,105,M_ST_NA_1,,\n7,7,106,M_BO_NA_1,,\n",
		"comsrv/1/signal.csv":                     pointHeader + "1,sp,1,0,,0,bool,\n2,dp,1,0,,0,bool,\n3,sp_rev,1,0,,1,bool,\n",
		"comsrv/1/mapping/signal_mapping.csv":     iecMapHeader + "1,7,200,M_SP_NA_1,,\n2,7,201,M_DP_TB_1,,\n3,7,202,M_SP_TB_1,,\n",
		"comsrv/1/control.csv":                    "point_id,signal_name,scale,offset,unit,reverse,data_type,control_type\n1,sc,1,0,,0,bool,latching\n2,dc,1,0,,0,bool,\n3,rc,1,0,,0,int,\n",
		"comsrv/1/mapping/control_mapping.csv":    iecMapHeader + "1,7,300,C_SC_NA_1,,\n2,7,301,C_DC_NA_1,,1\n3,7,302,C_RC_NA_1,,\n",
		"comsrv/1/adjustment.csv":                 "point_id,signal_name,scale,offset,unit,reverse,data_type,min_value,max_value\n1,spf,1,0,kW,0,float,,\n2,sps,0.1,0,,0,float,,\n3,spn,100,0,,0,float,-100,99\n",
		"comsrv/1/mapping/adjustment_mapping.csv": iecMapHeader + "1,7,400,C_SE_NC_1,,\n2,7,401,C_SE_NB_1,,\n3,7,402,C_SE_NA_1,,yes\n",
	}
}

func setValues(t *testing.T, sim *voltsim.Sim, typ point.Type, vals map[point.ID]float64) {
	t.Helper()
	for id, v := range vals {
		if err := sim.SetValue(1, typ, id, v); err != nil {
			t.Fatalf("set %s%d: %v", typ, id, err)
		}
	}
}

func TestIEC104InterrogationFillsHashes(t *testing.T) {
	s := startSite(t, iec104Site(", poll_interval_ms: 200"))
	setValues(t, s.sim, point.Telemetry, map[point.ID]float64{1: 12.5, 2: -230.4, 3: 50, 4: 0.1, 5: 123456, 6: -5, 7: 3735928559})
	setValues(t, s.sim, point.Signal, map[point.ID]float64{1: 1, 2: 1, 3: 0})
	st := s.sim.IEC104Station(1)
	if err := s.sim.SetIEC104Quality(1, point.Telemetry, 6, iec104.QualityNotTopical); err != nil {
		t.Fatal(err)
	}
	if err := s.sim.SetIEC104Quality(1, point.Telemetry, 7, iec104.QualityInvalid); err != nil {
		t.Fatal(err)
	}
	if err := s.sim.SetIEC104Quality(1, point.Signal, 1, iec104.QualityBlocked|iec104.QualitySubstituted); err != nil {
		t.Fatal(err)
	}
	s.startComsrv(commands.Hooks{})
	s.waitField(keyspace.ChannelStatus(1), "state", "up")

	T := keyspace.ChannelPoints(1, point.Telemetry)
	want := map[string]string{"1": "12.5", "2": "-230.4", "3": "50", "4": "0.1", "5": "123456", "6": "-5", "7": "3735928559"}
	for id, v := range want {
		s.waitField(T, id, v)
	}
	// Raw values as the station sent them: the scaled integer, the normalized fraction.
	raw := keyspace.ChannelRaw(1, point.Telemetry)
	for id, v := range map[string]string{"2": "-2304", "3": "0.5", "1": "12.5"} {
		s.waitField(raw, id, v)
	}
	S := keyspace.ChannelPoints(1, point.Signal)
	for id, v := range map[string]string{"1": "1", "2": "1", "3": "0"} {
		s.waitField(S, id, v)
	}
	// S3 has reverse: engineering 0 is the station's ON (raw 1); S2 is DPI 2 (ON).
	s.waitField(keyspace.ChannelRaw(1, point.Signal), "3", "1")
	s.waitField(keyspace.ChannelRaw(1, point.Signal), "2", "2")
	// IEC quality descriptors: NT → stale, IV → invalid, BL (+SB) → stale; the rest good.
	s.waitField(keyspace.ChannelQuality(1, point.Telemetry), "6", "stale")
	s.waitField(keyspace.ChannelQuality(1, point.Telemetry), "7", "invalid")
	s.waitField(keyspace.ChannelQuality(1, point.Signal), "1", "stale")
	for _, id := range []string{"1", "2", "3", "4", "5"} {
		if q := s.hget(keyspace.ChannelQuality(1, point.Telemetry), id); q != "" {
			t.Errorf("T%s quality %q, want good", id, q)
		}
	}
	// Good again when the station clears the flag.
	if err := s.sim.SetIEC104Quality(1, point.Telemetry, 6, 0); err != nil {
		t.Fatal(err)
	}
	testharness.WaitFor(t, 10*time.Second, "T6 good again", func() bool {
		return s.hget(keyspace.ChannelQuality(1, point.Telemetry), "6") == ""
	})

	c := st.Counters()
	if c.Interrogations < 1 || c.CounterInterrogations < 1 || c.ClockSyncs < 1 {
		t.Errorf("station counters %+v: want a general interrogation, a counter interrogation and a clock sync at connect", c)
	}
	if syncs := st.ClockSyncs(); len(syncs) == 0 || time.Since(syncs[0]).Abs() > time.Minute {
		t.Errorf("clock sync carried %v, want about now", syncs)
	}
	// Values the station keeps quiet about stay good: poll re-confirms them.
	s.waitField(keyspace.ChannelStatus(1), "state", "up")
	polls := s.hget(keyspace.ChannelStatus(1), "polls")
	testharness.WaitFor(t, 10*time.Second, "several more polls", func() bool {
		return s.hget(keyspace.ChannelStatus(1), "polls") != polls
	})
	if q := s.hget(keyspace.ChannelQuality(1, point.Telemetry), "1"); q != "" {
		t.Errorf("T1 quality %q after polls without a change, want good", q)
	}
}

func TestIEC104SpontaneousChangeReachesHashAndPubSub(t *testing.T) {
	// A long poll interval: the change must come by spontaneous transmission.
	s := startStack(t, iec104Site(", poll_interval_ms: 30000"))
	s.waitField(keyspace.ChannelStatus(1), "state", "up")
	T := keyspace.ChannelPoints(1, point.Telemetry)
	s.waitField(T, "4", "0")

	ctx := context.Background()
	sub := s.rdb.Subscribe(ctx, T)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	before := time.Now().UnixMilli()
	if err := s.sim.SetValue(1, point.Telemetry, 4, 42.25); err != nil {
		t.Fatal(err)
	}
	var dm statestore.Message
	testharness.WaitFor(t, 10*time.Second, "the change on pub/sub", func() bool {
		select {
		case m := <-sub.Channel():
			var err error
			dm, err = statestore.DecodeMessage([]byte(m.Payload))
			return err == nil && dm.V["4"] == 42.25
		case <-time.After(100 * time.Millisecond):
			return false
		}
	})
	s.waitField(T, "4", "42.25")
	// M_ME_TF_1 carries the station's CP56Time2a: the sample time is the device's.
	ts := s.hget(keyspace.ChannelTimestamps(1, point.Telemetry), "4")
	var tsMS int64
	fmt.Sscan(ts, &tsMS)
	if tsMS < before-1000 || tsMS > time.Now().UnixMilli()+1000 {
		t.Errorf("timestamp %s not around the change at %d", ts, before)
	}
	// A double point, with time tag, via spontaneous transmission too.
	if err := s.sim.SetValue(1, point.Signal, 2, 1); err != nil {
		t.Fatal(err)
	}
	s.waitField(keyspace.ChannelPoints(1, point.Signal), "2", "1")
	s.waitField(keyspace.ChannelRaw(1, point.Signal), "2", "2") // DPI 2 = ON
}

func TestIEC104CommandsConfirmed(t *testing.T) {
	s := startStack(t, iec104Site(", poll_interval_ms: 200"))
	s.waitField(keyspace.ChannelStatus(1), "state", "up")
	st := s.sim.IEC104Station(1)
	cases := []struct {
		name string
		c    command.Command
		want float64
	}{
		{"float set-point", command.Command{Channel: 1, Type: point.Adjustment, Point: 1, Value: 1234.5}, 1234.5},
		{"scaled set-point with scale", command.Command{Channel: 1, Type: point.Adjustment, Point: 2, Value: -12.3}, -12.3},
		{"normalized set-point, select before operate", command.Command{Channel: 1, Type: point.Adjustment, Point: 3, Value: 25}, 25},
		{"single command", command.Command{Channel: 1, Type: point.Control, Point: 1, Value: 1}, 1},
		{"double command, select before operate", command.Command{Channel: 1, Type: point.Control, Point: 2, Value: 1}, 1},
		{"regulating step higher", command.Command{Channel: 1, Type: point.Control, Point: 3, Value: 1}, 1},
		{"regulating step lower", command.Command{Channel: 1, Type: point.Control, Point: 3, Value: 0}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := st.Counters().Commands
			r := submit(t, s, tc.c)
			if r.Status != command.OK {
				t.Fatalf("status %s (%s), want ok", r.Status, r.Error)
			}
			if got := st.Counters().Commands; got != before+1 {
				t.Errorf("station executed %d commands, want 1", got-before)
			}
			v, err := s.sim.Value(1, tc.c.Type, tc.c.Point)
			if err != nil || v != tc.want {
				t.Errorf("device value %v (%v), want %v", v, err, tc.want)
			}
		})
	}
	// C2 and A3 need a select first (the station refuses an execute without one):
	// none was refused, so the driver selected before it operated.
	if got := st.Counters().Rejected; got != 0 {
		t.Errorf("station refused %d commands, want 0", got)
	}
}

func TestIEC104NegativeConfirmation(t *testing.T) {
	s := startStack(t, iec104Site(", poll_interval_ms: 200"))
	s.waitField(keyspace.ChannelStatus(1), "state", "up")
	c := command.Command{Channel: 1, Type: point.Adjustment, Point: 1, Value: 10}

	if err := s.sim.RejectNextCommand(1, point.Adjustment, 1, 0); err != nil {
		t.Fatal(err)
	}
	r := submit(t, s, c)
	if r.Status != command.Failed || !strings.Contains(r.Error, "negative confirmation") || !strings.Contains(r.Error, "cause of transmission 7 (ActivationCon)") {
		t.Fatalf("result %s %q, want failed with the negative ActCon", r.Status, r.Error)
	}
	if v, _ := s.sim.Value(1, point.Adjustment, 1); v == 10 {
		t.Error("a refused set-point changed the device")
	}

	// Through the control API's fault, with the cause the station names.
	if err := s.sim.SetFault(1, voltsim.Fault{Mode: voltsim.FaultNegative, ExceptionCode: 47}); err != nil {
		t.Fatal(err)
	}
	r = submit(t, s, c)
	if r.Status != command.Failed || !strings.Contains(r.Error, "cause of transmission 47 (UnknownIOA)") {
		t.Fatalf("result %s %q, want failed with cause 47", r.Status, r.Error)
	}
	// A select refused fails the command before any execute.
	if err := s.sim.RejectNextCommand(1, point.Control, 2, 0); err != nil {
		t.Fatal(err)
	}
	r = submit(t, s, command.Command{Channel: 1, Type: point.Control, Point: 2, Value: 1})
	if r.Status != command.Failed || !strings.Contains(r.Error, "refused the select") {
		t.Fatalf("result %s %q, want the select refused", r.Status, r.Error)
	}
	// The fault is one-shot: the next command goes through.
	if r := submit(t, s, c); r.Status != command.OK {
		t.Fatalf("after the fault: %s %q", r.Status, r.Error)
	}
}

func TestIEC104LinkLossReconnectsAndInterrogatesAgain(t *testing.T) {
	s := startStack(t, iec104Site(", poll_interval_ms: 200"))
	s.waitField(keyspace.ChannelStatus(1), "state", "up")
	if err := s.sim.SetValue(1, point.Telemetry, 1, 5); err != nil {
		t.Fatal(err)
	}
	T := keyspace.ChannelPoints(1, point.Telemetry)
	s.waitField(T, "1", "5")
	st := s.sim.IEC104Station(1)
	gis := st.Counters().Interrogations

	if err := s.sim.SetFault(1, voltsim.Fault{Mode: voltsim.FaultDrop}); err != nil {
		t.Fatal(err)
	}
	s.waitField(keyspace.ChannelStatus(1), "state", "down")
	s.waitField(keyspace.ChannelQuality(1, point.Telemetry), "1", "comm_lost")
	if e := s.hget(keyspace.ChannelStatus(1), "last_error"); e == "" {
		t.Error("status has no last_error")
	}
	// A command to the down channel fails at once.
	if r := submit(t, s, command.Command{Channel: 1, Type: point.Adjustment, Point: 1, Value: 1}); r.Status != command.Failed {
		t.Errorf("command while down: %s %q, want failed", r.Status, r.Error)
	}
	// The value changes while the link is down: the fresh interrogation brings it.
	if err := s.sim.SetValue(1, point.Telemetry, 1, 6); err != nil {
		t.Fatal(err)
	}
	if err := s.sim.SetFault(1, voltsim.Fault{Mode: voltsim.FaultNone}); err != nil {
		t.Fatal(err)
	}
	s.waitField(keyspace.ChannelStatus(1), "state", "up")
	s.waitField(T, "1", "6")
	testharness.WaitFor(t, 10*time.Second, "quality good again", func() bool {
		return s.hget(keyspace.ChannelQuality(1, point.Telemetry), "1") == ""
	})
	if got := st.Counters().Interrogations; got <= gis {
		t.Errorf("interrogations %d after reconnect, want more than %d", got, gis)
	}
}

func TestIEC104KeepAliveOnAnIdleLink(t *testing.T) {
	// t3 of 1 s: an idle link is tested every second and stays up.
	s := startStack(t, iec104Site(", poll_interval_ms: 200, t1_ms: 2000, t2_ms: 1000, t3_ms: 1000"))
	s.waitField(keyspace.ChannelStatus(1), "state", "up")
	st := s.sim.IEC104Station(1)
	testharness.WaitFor(t, 15*time.Second, "two TESTFR from comsrv", func() bool { return st.Counters().TestFrames >= 2 })
	if state, errs := s.hget(keyspace.ChannelStatus(1), "state"), s.hget(keyspace.ChannelStatus(1), "errors"); state != "up" || errs != "0" {
		t.Errorf("state %s errors %s, want up without errors", state, errs)
	}
	if c := st.Counters(); c.Connections != 1 {
		t.Errorf("%d connections, want the first one kept", c.Connections)
	}
}
