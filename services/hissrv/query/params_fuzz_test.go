package query_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/voltageems/voltage/services/hissrv/query"
	"github.com/voltageems/voltage/services/hissrv/sample"
)

// FuzzParseRange feeds arbitrary query strings to the range parameter parser: it
// must never panic, and an accepted request must be answerable within the caps.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{
		"point=comsrv:1:T:5&start=now-1h&step=60&agg=max",
		"point=comsrv:1:T:5,inst:3:M:12&start=1732573200&end=2024-11-26T00:00:00Z&step=1m&tier=1m",
		"point=comsrv:1:T:5&start=0&end=1e10&step=1ms",
		"point=inst:3:A:x&start=now-7d&end=now&step=1.5&agg=count&tier=raw",
		"point=comsrv:01:T:5&start=-1", "point=:&start=NaN&step=Inf",
	} {
		f.Add(s)
	}
	now := time.Unix(1_732_573_200, 0)
	f.Fuzz(func(t *testing.T, q string) {
		v, err := url.ParseQuery(q)
		if err != nil {
			return
		}
		r, err := query.ParseRange(v, now, []string{"1m", "1h"})
		if err != nil {
			return
		}
		if r.End.Before(r.Start) || r.Buckets() > query.MaxPoints || len(r.Points) == 0 || len(r.Points) > query.MaxSeries {
			t.Fatalf("accepted %q as %+v", q, r)
		}
		if r.Step > 0 && r.Agg == "" {
			t.Fatalf("accepted %q without an aggregation", q)
		}
		for _, p := range r.Points {
			back, err := sample.ParsePoint(p.String())
			if err != nil || back != p {
				t.Fatalf("point %+v does not round-trip: %v %+v", p, err, back)
			}
		}
	})
}

// FuzzParseTime checks time and duration parsing never panics and stays in range.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"now", "now-1h", "1732573200.123", "2024-11-26T00:00:00Z", "1e300", "-5", "now-99999y"} {
		f.Add(s)
	}
	now := time.Unix(1_732_573_200, 0)
	f.Fuzz(func(t *testing.T, s string) {
		if tm, err := query.ParseTime(s, now); err == nil && (tm.Year() < -300000 || tm.Year() > 300000) {
			t.Fatalf("%q parsed to %v", s, tm)
		}
		if d, err := query.ParseDuration(s); err == nil && d < 0 {
			t.Fatalf("%q parsed to negative %v", s, d)
		}
	})
}
