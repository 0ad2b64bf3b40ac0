package query_test

import (
	"context"
	"math"
	"net/url"
	"testing"
	"time"

	"github.com/voltageems/voltage/services/hissrv/embedded"
	"github.com/voltageems/voltage/services/hissrv/query"
	"github.com/voltageems/voltage/services/hissrv/sample"
)

var dayPoint = sample.Point{ID: 1, Family: "T", Field: "1"}

// dayStore holds one point's day of 1 s samples (values a sawtooth with a
// 0.1 resolution) ending an hour ago, with the 1 min and 1 h tiers closed.
func dayStore(tb testing.TB) (*embedded.Store, *query.History, time.Time) {
	tb.Helper()
	s, err := embedded.Open(embedded.Options{
		Dir: tb.TempDir(), Site: "test",
		Tiers: []embedded.TierOptions{{Name: "1m", Width: time.Minute}, {Name: "1h", Width: time.Hour}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	start := time.Now().Add(-25 * time.Hour).Truncate(time.Hour)
	ctx := context.Background()
	var buf []sample.Sample
	for i := range 86400 {
		buf = append(buf, sample.Sample{Point: dayPoint, TS: start.UnixMilli() + int64(i)*1000, Value: float64(i%600) * 0.1})
		if len(buf) == 10_000 {
			if _, err := s.Write(ctx, buf); err != nil {
				tb.Fatal(err)
			}
			buf = buf[:0]
		}
	}
	if _, err := s.Write(ctx, buf); err != nil {
		tb.Fatal(err)
	}
	if _, err := s.Tick(ctx, time.Now(), true); err != nil {
		tb.Fatal(err)
	}
	h := &query.History{Store: s, Site: "test", RawRetention: 30 * 24 * time.Hour,
		Tiers: []query.Tier{{Name: "1m", Width: time.Minute}, {Name: "1h", Width: time.Hour}}}
	return s, h, start
}

func dayRequest(tb testing.TB, h *query.History, start time.Time, step, agg, tier string) query.RangeRequest {
	tb.Helper()
	v := url.Values{"point": {dayPoint.String()}, "start": {formatUnix(start)}, "end": {formatUnix(start.Add(24*time.Hour - time.Second))},
		"step": {step}, "agg": {agg}, "tier": {tier}}
	r, err := query.ParseRange(v, time.Now(), h.TierNames())
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func formatUnix(t time.Time) string { return time.Unix(t.Unix(), 0).UTC().Format(time.RFC3339) }

// TestTiersAnswerLikeRawData asks the same day at a 1 h step from the raw samples,
// the 1 min tier and the 1 h tier: every aggregation must agree.
func TestTiersAnswerLikeRawData(t *testing.T) {
	_, h, start := dayStore(t)
	ctx := context.Background()
	for _, agg := range query.Aggregations {
		var answers [3][][2]float64
		for i, tier := range []string{"raw", "1m", "1h"} {
			out, err := h.Range(ctx, dayRequest(t, h, start, "1h", agg, tier))
			if err != nil {
				t.Fatal(err)
			}
			if out[0].Tier != tier {
				t.Fatalf("asked tier %s, answered from %s", tier, out[0].Tier)
			}
			answers[i] = out[0].Values
		}
		if len(answers[0]) != 24 {
			t.Fatalf("%s: %d hourly values, want 24", agg, len(answers[0]))
		}
		for i := 1; i < 3; i++ {
			if len(answers[i]) != len(answers[0]) {
				t.Fatalf("%s: tier %d gives %d values, raw %d", agg, i, len(answers[i]), len(answers[0]))
			}
			for k := range answers[0] {
				a, b := answers[0][k], answers[i][k]
				if a[0] != b[0] || math.Abs(a[1]-b[1]) > 1e-9*math.Max(1, math.Abs(a[1])) {
					t.Errorf("%s hour %d: raw %v, tier %d %v", agg, k, a, i, b)
				}
			}
		}
	}
	// An hour holds 3600 samples of a 60 s sawtooth 0..59.9: avg 29.95, max 59.9.
	out, _ := h.Range(ctx, dayRequest(t, h, start, "1h", "avg", "auto"))
	if v := out[0].Values[0][1]; math.Abs(v-29.95) > 1e-9 || out[0].Tier != "raw" {
		t.Errorf("hourly avg %g from %s, want 29.95 from raw", v, out[0].Tier)
	}
}

// BenchmarkOneDayAtOneMinute answers one day of 1 s data of one point at a 1 min
// step (1,440 averages of 60 samples) from the raw samples, and from the 1 min
// tier for comparison.
func BenchmarkOneDayAtOneMinute(b *testing.B) {
	_, h, start := dayStore(b)
	ctx := context.Background()
	for _, tier := range []string{"raw", "1m"} {
		b.Run(tier, func(b *testing.B) {
			r := dayRequest(b, h, start, "1m", "avg", tier)
			b.ResetTimer()
			for range b.N {
				out, err := h.Range(ctx, r)
				if err != nil || len(out[0].Values) != 1440 {
					b.Fatalf("%v %d", err, len(out[0].Values))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/query")
		})
	}
}

func TestAutoPicksTheCheapestStoreThatHoldsTheRange(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	h := &query.History{RawRetention: 30 * 24 * time.Hour, Now: func() time.Time { return now },
		Tiers: []query.Tier{{Name: "1m", Width: time.Minute, Retention: 365 * 24 * time.Hour}, {Name: "1h", Width: time.Hour}}}
	cases := []struct {
		start, step time.Duration // start before now
		want        string
		span        time.Duration // default one day
	}{
		{20 * 24 * time.Hour, time.Hour, "1h", 20 * 24 * time.Hour},
		{20 * 24 * time.Hour, 10 * time.Minute, "1m", 20 * 24 * time.Hour},
		{24 * time.Hour, time.Minute, "raw", 0},
		{24 * time.Hour, 0, "raw", 0},
		{20 * 24 * time.Hour, time.Hour, "raw", 0},        // one day: raw is cheap enough
		{400 * 24 * time.Hour, 30 * time.Second, "1h", 0}, // only the hour tier still holds it
		{60 * 24 * time.Hour, 10 * time.Minute, "1m", 0},
		{400 * 24 * time.Hour, time.Minute, "1h", 0},
		{400 * 24 * time.Hour, 24 * time.Hour, "1h", 0},
	}
	for _, c := range cases {
		v := url.Values{"point": {"comsrv:1:T:1"}, "start": {formatUnix(now.Add(-c.start))}, "end": {formatUnix(now.Add(-c.start + 24*time.Hour))}}
		if c.span > 0 {
			v.Set("end", formatUnix(now.Add(-c.start+c.span)))
		}
		if c.step > 0 {
			v.Set("step", c.step.String())
		}
		r, err := query.ParseRange(v, now, h.TierNames())
		if err != nil {
			t.Fatal(err)
		}
		if got := h.Pick(r); got != c.want {
			t.Errorf("start now-%s step %s: %s, want %s", c.start, c.step, got, c.want)
		}
	}
}
