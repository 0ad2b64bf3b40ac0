package embedded

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/voltageems/voltage/services/hissrv/sample"
	"github.com/voltageems/voltage/shared/point"
)

// replayMargin is how far before the newest stored data the tiers are rebuilt,
// beyond a bucket and the grace: buckets open at a crash started after it.
const replayMargin = 10 * time.Minute

// recover rebuilds the in-memory state after Open: the newest time of every raw
// series (so repeats are recognised), the last quality of every point, and the
// open buckets of every tier.
func (s *Store) recover(ctx context.Context) error {
	head := s.raw.Head()
	if head.NumSeries() > 0 {
		err := eachLast(ctx, s.raw, head.MinTime(), math.MaxInt64, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+"),
			func(ls labels.Labels, t int64, _ float64) {
				p, ok := sample.FromLabels(ls)
				if !ok {
					return
				}
				r := &seriesRef{lset: ls, last: t}
				switch ls.Get(labels.MetricName) {
				case sample.Metric:
					s.refs[p] = r
				case sample.QualityMetric:
					s.qrefs[p] = r
				}
			})
		if err != nil {
			return err
		}
	}
	// The last quality of every point, also of those whose quality changed before
	// the head's span: a point that went bad a week ago and is still bad.
	err := eachLast(ctx, s.raw, math.MinInt64, math.MaxInt64, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, sample.QualityMetric),
		func(ls labels.Labels, _ int64, v float64) {
			if p, ok := sample.FromLabels(ls); ok && v != 0 && v == math.Trunc(v) && v <= float64(point.CommLost) {
				s.quality[p] = point.Quality(v)
			}
		})
	if err != nil {
		return err
	}
	if len(s.tiers) == 0 || head.NumSeries() == 0 {
		return nil
	}
	now := time.Now().UnixMilli()
	rawMax := min(head.MaxTime(), now)
	s.maxData = rawMax
	// Coarse tiers first: each is primed from the finer tier's stored buckets, so
	// that rebuilding the finer tier afterwards does not feed them twice (an
	// aggregator ignores inputs at or before the last one it took).
	for i := len(s.tiers) - 1; i >= 0; i-- {
		t := s.tiers[i]
		width := t.opts.Width
		srcMax := rawMax
		if i > 0 {
			srcMax = min(s.tiers[i-1].db.Head().MaxTime(), now)
			width += s.tiers[i-1].opts.Width
		}
		from := t.agg.bucketStart(srcMax - (width + s.opts.Grace + replayMargin).Milliseconds())
		s.buckets = s.buckets[:0]
		var err error
		if i == 0 {
			err = s.replayRaw(ctx, t, from)
		} else {
			err = s.replayTier(ctx, s.tiers[i-1], t, from)
		}
		if err != nil {
			return fmt.Errorf("tier %s: %w", t.opts.Name, err)
		}
		if _, err := s.flushBuckets(ctx, i, math.MinInt64); err != nil {
			return err
		}
	}
	return nil
}

// replayRaw feeds raw samples from `from` on into tier t's aggregator.
func (s *Store) replayRaw(ctx context.Context, t *tier, from int64) error {
	q, err := s.RawQueryable().Querier(from, math.MaxInt64)
	if err != nil {
		return err
	}
	defer q.Close()
	set := q.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, sample.Metric))
	var it chunkenc.Iterator
	for set.Next() {
		series := set.At()
		p, ok := sample.FromLabels(series.Labels())
		if !ok {
			continue
		}
		it = series.Iterator(it)
		for it.Next() == chunkenc.ValFloat {
			ts, v := it.At()
			s.buckets = t.agg.add(p, ts, single(v), s.buckets)
		}
		if err := it.Err(); err != nil {
			return err
		}
	}
	return set.Err()
}

// replayTier feeds the stored buckets of tier src from `from` on into tier t's aggregator.
func (s *Store) replayTier(ctx context.Context, src, t *tier, from int64) error {
	q, err := src.db.Querier(from, math.MaxInt64)
	if err != nil {
		return err
	}
	defer q.Close()
	// One aggregation at a time; join them by point and bucket start.
	buckets := map[sample.Point]map[int64]*Agg{}
	for k, agg := range Aggregations {
		set := q.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, TierMetric(agg, src.opts.Name)))
		var it chunkenc.Iterator
		for set.Next() {
			series := set.At()
			p, ok := sample.FromLabels(series.Labels())
			if !ok {
				continue
			}
			m := buckets[p]
			if m == nil {
				m = map[int64]*Agg{}
				buckets[p] = m
			}
			it = series.Iterator(it)
			for it.Next() == chunkenc.ValFloat {
				ts, v := it.At()
				a := m[ts]
				if a == nil {
					a = &Agg{}
					m[ts] = a
				}
				switch k {
				case 0:
					a.Min = v
				case 1:
					a.Max = v
				case 2:
					a.Sum = v // the average until the count is known
				case 3:
					a.Last = v
				case 4:
					a.Count = v
				}
			}
			if err := it.Err(); err != nil {
				return err
			}
		}
		if err := set.Err(); err != nil {
			return err
		}
	}
	for _, p := range sortedPoints(buckets) {
		m := buckets[p]
		starts := make([]int64, 0, len(m))
		for ts := range m {
			starts = append(starts, ts)
		}
		slices.Sort(starts)
		for _, ts := range starts {
			a := *m[ts]
			a.Sum *= a.Count
			s.buckets = t.agg.add(p, ts, a, s.buckets)
		}
	}
	return nil
}

// eachLast calls f with the newest sample of every series matching m in [mint, maxt],
// reading only each series' last chunk.
func eachLast(ctx context.Context, db *tsdb.DB, mint, maxt int64, m *labels.Matcher, f func(labels.Labels, int64, float64)) error {
	q, err := db.ChunkQuerier(mint, maxt)
	if err != nil {
		return err
	}
	defer q.Close()
	set := q.Select(ctx, false, nil, m)
	for set.Next() {
		series := set.At()
		cit := series.Iterator(nil)
		var last chunkenc.Chunk
		for cit.Next() {
			last = cit.At().Chunk
		}
		if err := cit.Err(); err != nil {
			return err
		}
		if last == nil {
			continue
		}
		it := last.Iterator(nil)
		var t int64 = math.MinInt64
		var v float64
		for it.Next() == chunkenc.ValFloat {
			t, v = it.At()
		}
		if t != math.MinInt64 {
			f(series.Labels(), t, v)
		}
	}
	return set.Err()
}
