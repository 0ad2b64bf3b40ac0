package sample

import (
	"testing"

	"github.com/voltageems/voltage/shared/changefeed"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
)

func TestPointNamesRoundTrip(t *testing.T) {
	for _, s := range []string{"comsrv:1:T:5", "comsrv:4294967295:A:0", "inst:3:M:12", "inst:3:A:power_set"} {
		p, err := ParsePoint(s)
		if err != nil || p.String() != s {
			t.Errorf("%s: %+v %v", s, p, err)
		}
		back, ok := FromLabels(p.Labels(Metric, "site"))
		if !ok || back != p {
			t.Errorf("%s: labels round trip %+v", s, back)
		}
	}
	for _, s := range []string{"", "comsrv:1:T", "comsrv:1:X:1", "comsrv:01:T:1", "inst:1:T:1", "comsrv:1:T:", "foo:1:T:1"} {
		if _, err := ParsePoint(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestFromEntryUsesEachPointsSampleTime(t *testing.T) {
	e := changefeed.Entry{ID: "1-0", Key: "comsrv:2:T", Message: statestore.Message{
		TS: 1000, V: map[string]float64{"10": 1.5, "9": 2, "x": 3}, T: map[string]int64{"9": 990}, Q: map[string]string{"10": "stale"},
	}}
	got, err := FromEntry(e, nil)
	if err != nil || len(got) != 3 {
		t.Fatalf("%v %v", got, err)
	}
	if got[0].Point.Field != "9" || got[0].TS != 990 || got[1].Point.Field != "10" || got[1].TS != 1000 ||
		got[1].Quality != point.Stale || got[2].Point.Field != "x" {
		t.Errorf("%+v", got)
	}
	if _, err := FromEntry(changefeed.Entry{Key: "alarm:active"}, nil); err == nil {
		t.Error("an entry of an unknown hash was accepted")
	}
}
