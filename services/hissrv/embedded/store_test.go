package embedded_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/voltageems/voltage/services/hissrv/embedded"
	"github.com/voltageems/voltage/services/hissrv/sample"
	"github.com/voltageems/voltage/shared/point"
)

func openStore(t *testing.T, dir string) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(embedded.Options{
		Dir: dir, Site: "test", SyncWAL: true,
		Tiers: []embedded.TierOptions{{Name: "1m", Width: time.Minute}, {Name: "1h", Width: time.Hour}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type fpoint struct {
	t int64
	v float64
}

// series reads every sample of metric per point.
func series(t *testing.T, db storage.Queryable, metric string) map[string][]fpoint {
	t.Helper()
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	out := map[string][]fpoint{}
	set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, metric))
	for set.Next() {
		p, ok := sample.FromLabels(set.At().Labels())
		if !ok {
			t.Fatalf("series without point labels: %s", set.At().Labels())
		}
		it := set.At().Iterator(nil)
		for it.Next() == chunkenc.ValFloat {
			ts, v := it.At()
			out[p.String()] = append(out[p.String()], fpoint{ts, v})
		}
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func gen(start int64, n int, step int64) []sample.Sample {
	var out []sample.Sample
	for i := range n {
		for pt := range 3 {
			out = append(out, sample.Sample{
				Point: sample.Point{ID: 1, Family: "T", Field: string(rune('1' + pt))},
				TS:    start + int64(i)*step, Value: float64(i*10 + pt),
			})
		}
	}
	return out
}

// TestRepeatedSamplesAreStoredOnce writes the same samples again, in the same
// process and after a reopen (what a re-delivery after kill -9 does), and counts.
func TestRepeatedSamplesAreStoredOnce(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	start := time.Now().Add(-time.Hour).Truncate(time.Hour).UnixMilli()
	all := gen(start, 600, 1000) // 10 minutes of 1 s data, 3 points

	s := openStore(t, dir)
	st, err := s.Write(ctx, all[:900])
	if err != nil || st.Appended != 900 {
		t.Fatalf("first write: %+v %v", st, err)
	}
	st, err = s.Write(ctx, all[:900])
	if err != nil || st.Appended != 0 || st.Repeats+st.Rejected != 900 {
		t.Fatalf("repeat in the same process: %+v %v", st, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	defer s.Close()
	st, err = s.Write(ctx, all[600:]) // overlaps 300 already stored
	if err != nil || st.Appended != 900 || st.Repeats+st.Rejected != 300 {
		t.Fatalf("after reopen: %+v %v", st, err)
	}
	got := series(t, s.RawQueryable(), sample.Metric)
	if len(got) != 3 {
		t.Fatalf("%d series, want 3", len(got))
	}
	for p, pts := range got {
		if len(pts) != 600 {
			t.Errorf("%s: %d samples, want 600", p, len(pts))
		}
		for i, fp := range pts {
			if fp.t != start+int64(i)*1000 {
				t.Fatalf("%s sample %d at %d", p, i, fp.t)
			}
		}
	}
}

// TestTiersSurviveAReopenMidBucket checks the 1-minute buckets are complete and
// counted once when the store is closed (as by a crash) in the middle of a bucket.
func TestTiersSurviveAReopenMidBucket(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	start := time.Now().Add(-3 * time.Hour).Truncate(time.Hour).UnixMilli()
	all := gen(start, 300, 1000) // 5 minutes

	s := openStore(t, dir)
	// Stop 30 s into the third minute.
	if _, err := s.Write(ctx, all[:3*150]); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	s = openStore(t, dir)
	defer s.Close()
	if _, err := s.Write(ctx, all[3*100:]); err != nil { // re-delivers 50 s of samples
		t.Fatal(err)
	}
	if _, err := s.Tick(ctx, time.Now(), true); err != nil {
		t.Fatal(err)
	}
	counts := series(t, s.TierDB("1m"), embedded.TierMetric("count", "1m"))
	avgs := series(t, s.TierDB("1m"), embedded.TierMetric("avg", "1m"))
	for p, pts := range counts {
		if len(pts) != 5 {
			t.Fatalf("%s: %d buckets, want 5: %v", p, len(pts), pts)
		}
		for i, b := range pts {
			if b.v != 60 || b.t != start+int64(i)*60_000 {
				t.Errorf("%s bucket %d: %v, want 60 samples at %d", p, i, b, start+int64(i)*60_000)
			}
		}
		// values are i*10+pt: the mean of i in [60k, 60k+60) is 60k+29.5
		for i, b := range avgs[p] {
			pt := float64(p[len(p)-1] - '1')
			if want := (float64(i*60)+29.5)*10 + pt; b.v != want {
				t.Errorf("%s bucket %d avg %g, want %g", p, i, b.v, want)
			}
		}
	}
	hours := series(t, s.TierDB("1h"), embedded.TierMetric("count", "1h"))
	for p, pts := range hours {
		if len(pts) != 1 || pts[0].v != 300 {
			t.Errorf("%s hour buckets %v, want one of 300 samples", p, pts)
		}
	}
	if len(hours) != 3 {
		t.Errorf("%d hour series, want 3", len(hours))
	}
}

func TestQualitySeriesRecordsBadSamplesAndTheReturnToGood(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	p := sample.Point{ID: 2, Family: "S", Field: "7"}
	qs := []point.Quality{point.Good, point.Stale, point.Stale, point.Good, point.Good, point.CommLost}
	s := openStore(t, dir)
	for i, q := range qs[:3] {
		if _, err := s.Write(ctx, []sample.Sample{{Point: p, TS: int64(1000 * (i + 1)), Value: 1, Quality: q}}); err != nil {
			t.Fatal(err)
		}
	}
	_ = s.Close()
	s = openStore(t, dir) // must remember the point is stale
	defer s.Close()
	for i, q := range qs[3:] {
		if _, err := s.Write(ctx, []sample.Sample{{Point: p, TS: int64(1000 * (i + 4)), Value: 1, Quality: q}}); err != nil {
			t.Fatal(err)
		}
	}
	got := series(t, s.RawQueryable(), sample.QualityMetric)[p.String()]
	want := []fpoint{{2000, 1}, {3000, 1}, {4000, 0}, {6000, 3}}
	if len(got) != len(want) {
		t.Fatalf("quality series %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("quality series %v, want %v", got, want)
		}
	}
}
