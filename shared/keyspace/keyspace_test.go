package keyspace

import (
	"testing"

	"github.com/voltageems/voltage/shared/point"
)

func TestKeysMatchDesign(t *testing.T) {
	cases := map[string]string{
		ChannelPoints(1, point.Telemetry):    "comsrv:1:T",
		ChannelTimestamps(12, point.Signal):  "comsrv:12:S:ts",
		ChannelRaw(3, point.Adjustment):      "comsrv:3:A:raw",
		ChannelQuality(4, point.Telemetry):   "comsrv:4:T:q",
		ChannelStatus(5):                     "comsrv:5:status",
		ChannelCommands(6):                   "comsrv:6:cmd",
		Command("abc"):                       "cmd:abc",
		InstanceMeasurements(7):              "inst:7:M",
		InstanceMeasurementTimestamps(7):     "inst:7:M:ts",
		InstanceActions(8):                   "inst:8:A",
		InstanceName(9):                      "inst:9:name",
		RuleExecution("r1"):                  "rule:r1:exec",
		ServiceHeartbeat("comsrv", "host-1"): "svc:comsrv:host-1",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func TestParseServiceHeartbeat(t *testing.T) {
	name, inst, ok := ParseServiceHeartbeat(ServiceHeartbeat("comsrv", "host-1:42"))
	if !ok || name != "comsrv" || inst != "host-1:42" {
		t.Fatalf("got %q %q %v", name, inst, ok)
	}
	if _, _, ok := ParseServiceHeartbeat(ChannelStatus(1)); ok {
		t.Fatal("a channel status key parsed as a heartbeat")
	}
}

func TestParseChangeKey(t *testing.T) {
	good := map[string]ChangeSource{
		ChannelPoints(1, point.Telemetry):        {ID: 1, Family: "T"},
		ChannelPoints(4294967295, point.Control): {ID: 4294967295, Family: "C"},
		InstanceMeasurements(5):                  {Instance: true, ID: 5, Family: "M"},
		InstanceActions(7):                       {Instance: true, ID: 7, Family: "A"},
	}
	for key, want := range good {
		got, ok := ParseChangeKey(key)
		if !ok || got != want {
			t.Errorf("ParseChangeKey(%q) = %+v, %v; want %+v", key, got, ok, want)
		}
	}
	for _, key := range []string{"", "comsrv", "comsrv:1", "comsrv:1:T:ts", "comsrv:x:T", "comsrv:01:T",
		"comsrv:+1:T", "comsrv:4294967296:T", "comsrv:1:M", "inst:1:T", "alarm:1:M", "comsrv::T"} {
		if got, ok := ParseChangeKey(key); ok {
			t.Errorf("ParseChangeKey(%q) = %+v, want not ok", key, got)
		}
	}
}
