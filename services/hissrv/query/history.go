package query

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/voltageems/voltage/services/hissrv/sample"
	"github.com/voltageems/voltage/shared/point"
)

// Tier describes one downsampled tier for the query planner.
type Tier struct {
	Name      string
	Width     time.Duration
	Retention time.Duration // 0 = unbounded
}

// Store is what the query API reads: the embedded store.
type Store interface {
	storage.Queryable
}

// ErrNotFound marks a point without any history.
var ErrNotFound = errors.New("no history")

// errTooMany marks a request that would return too many samples.
type errTooMany struct{ msg string }

func (e errTooMany) Error() string { return e.msg }

// Series is one point's answer.
type Series struct {
	Point  string       `json:"point"`
	Agg    string       `json:"agg,omitempty"`
	Tier   string       `json:"tier"`
	StepMS int64        `json:"step_ms,omitempty"`
	Values [][2]float64 `json:"values"` // [unix ms, value]
}

// Latest is the newest stored sample of a point.
type Latest struct {
	Point   string  `json:"point"`
	TS      int64   `json:"ts"`
	Value   float64 `json:"value"`
	Quality string  `json:"quality"`
}

// History answers range and latest requests from a store.
type History struct {
	Store        Store
	Site         string
	Tiers        []Tier
	RawRetention time.Duration
	Now          func() time.Time
}

func (h *History) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// TierNames lists the tiers a request may name.
func (h *History) TierNames() []string {
	out := make([]string, len(h.Tiers))
	for i, t := range h.Tiers {
		out[i] = t.Name
	}
	return out
}

// rawSpanLimit is the longest range tier=auto answers from raw samples: beyond it
// a tier is cheaper (a week of 1 s data is ~600,000 samples per point).
const rawSpanLimit = 7 * 24 * time.Hour

// Pick chooses the store a range request reads (tier=auto): the raw samples while
// they still cover the start and the range is at most a week (or no step is
// given); else the coarsest tier that covers the start with a width that fits the
// step; else the finest tier that covers the start.
func (h *History) Pick(r RangeRequest) (tier string) {
	if r.Tier != "auto" {
		return r.Tier
	}
	now := h.now()
	covers := func(retention time.Duration) bool {
		return retention == 0 || !r.Start.Before(now.Add(-retention))
	}
	if r.Step == 0 || (covers(h.RawRetention) && r.End.Sub(r.Start) <= rawSpanLimit) || len(h.Tiers) == 0 {
		return "raw"
	}
	best, finest := "", ""
	for _, t := range h.Tiers {
		if !covers(t.Retention) {
			continue
		}
		if finest == "" {
			finest = t.Name
		}
		if t.Width <= r.Step {
			best = t.Name
		}
	}
	switch {
	case best != "":
		return best
	case finest != "":
		return finest
	case covers(h.RawRetention):
		return "raw"
	}
	return h.Tiers[len(h.Tiers)-1].Name
}

// Range answers a range request, one Series per point in the order asked.
func (h *History) Range(ctx context.Context, r RangeRequest) ([]Series, error) {
	tier := h.Pick(r)
	mint, maxt := r.Start.UnixMilli(), r.End.UnixMilli()
	if r.Step > 0 {
		maxt = mint + r.Buckets()*r.Step.Milliseconds() - 1
	}
	q, err := h.Store.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	out := make([]Series, 0, len(r.Points))
	for _, p := range r.Points {
		s := Series{Point: p.String(), Agg: r.Agg, Tier: tier, StepMS: r.Step.Milliseconds()}
		var err error
		if tier == "raw" {
			s.Values, err = h.rangeRaw(ctx, q, p, r, mint, maxt)
		} else {
			s.Values, err = h.rangeTier(ctx, q, p, r, tier, mint, maxt)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (h *History) matchers(p sample.Point, metric string) []*labels.Matcher {
	ls := p.Labels(metric, h.Site)
	ms := make([]*labels.Matcher, 0, ls.Len())
	ls.Range(func(l labels.Label) {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, l.Name, l.Value))
	})
	return ms
}

// bucketAgg accumulates one bucket.
type bucketAgg struct {
	min, max, sum, last, count float64
}

func (b *bucketAgg) add(min, max, sum, last, count float64) {
	if b.count == 0 {
		*b = bucketAgg{min, max, sum, last, count}
		return
	}
	b.min, b.max = math.Min(b.min, min), math.Max(b.max, max)
	b.sum += sum
	b.last = last
	b.count += count
}

func (b *bucketAgg) value(agg string) float64 {
	switch agg {
	case "min":
		return b.min
	case "max":
		return b.max
	case "sum":
		return b.sum
	case "last":
		return b.last
	case "count":
		return b.count
	}
	return b.sum / b.count
}

func (h *History) rangeRaw(ctx context.Context, q storage.Querier, p sample.Point, r RangeRequest, mint, maxt int64) ([][2]float64, error) {
	set := q.Select(ctx, false, &storage.SelectHints{Start: mint, End: maxt}, h.matchers(p, sample.Metric)...)
	values := [][2]float64{}
	step := r.Step.Milliseconds()
	var cur bucketAgg
	curIdx := int64(-1)
	flush := func() {
		if cur.count > 0 {
			values = append(values, [2]float64{float64(mint + curIdx*step), cur.value(r.Agg)})
		}
		cur = bucketAgg{}
	}
	found := false
	var it chunkenc.Iterator
	for set.Next() {
		found = true
		it = set.At().Iterator(it)
		for vt := it.Seek(mint); vt == chunkenc.ValFloat; vt = it.Next() {
			t, v := it.At()
			if t > maxt {
				break
			}
			if step == 0 {
				if len(values) == MaxPoints {
					return nil, errTooMany{fmt.Sprintf("%s has more than %d samples in the range: give a step (and an agg)", p, MaxPoints)}
				}
				values = append(values, [2]float64{float64(t), v})
				continue
			}
			idx := (t - mint) / step
			if idx != curIdx {
				flush()
				curIdx = idx
			}
			cur.add(v, v, v, v, 1)
		}
		if err := it.Err(); err != nil {
			return nil, err
		}
	}
	if err := set.Err(); err != nil {
		return nil, err
	}
	if step > 0 {
		flush()
	}
	if !found {
		if ok, err := h.exists(ctx, p); err != nil || !ok {
			return nil, errors.Join(err, fmt.Errorf("%w for point %s", ErrNotFound, p))
		}
	}
	return values, nil
}

// rangeTier aggregates a tier's buckets into the request's buckets.
func (h *History) rangeTier(ctx context.Context, q storage.Querier, p sample.Point, r RangeRequest, tier string, mint, maxt int64) ([][2]float64, error) {
	need := map[string]bool{}
	switch r.Agg {
	case "avg", "sum":
		need["avg"], need["count"] = true, true
	default:
		need[r.Agg] = true
	}
	step := r.Step.Milliseconds()
	buckets := map[int64]*[5]float64{} // request bucket → min, max, sum, last, count
	order := []int64{}
	found := false
	for agg := range need {
		metric := sample.Metric + ":" + agg + "_" + tier
		set := q.Select(ctx, false, nil, h.matchers(p, metric)...)
		var it chunkenc.Iterator
		for set.Next() {
			found = true
			it = set.At().Iterator(it)
			// Tier samples inside one request bucket, kept per tier bucket start.
			for vt := it.Seek(mint); vt == chunkenc.ValFloat; vt = it.Next() {
				t, v := it.At()
				if t > maxt {
					break
				}
				b := buckets[t]
				if b == nil {
					b = &[5]float64{math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()}
					buckets[t] = b
					order = append(order, t)
				}
				switch agg {
				case "min":
					b[0] = v
				case "max":
					b[1] = v
				case "avg":
					b[2] = v
				case "last":
					b[3] = v
				case "count":
					b[4] = v
				}
			}
			if err := it.Err(); err != nil {
				return nil, err
			}
		}
		if err := set.Err(); err != nil {
			return nil, err
		}
	}
	if !found {
		if ok, err := h.exists(ctx, p); err != nil || !ok {
			return nil, errors.Join(err, fmt.Errorf("%w for point %s", ErrNotFound, p))
		}
	}
	slices.Sort(order)
	values := [][2]float64{}
	var cur bucketAgg
	curIdx := int64(-1)
	for _, t := range order {
		b := buckets[t]
		idx := (t - mint) / step
		if idx != curIdx && cur.count > 0 {
			values = append(values, [2]float64{float64(mint + curIdx*step), cur.value(r.Agg)})
			cur = bucketAgg{}
		}
		curIdx = idx
		count := b[4]
		if math.IsNaN(count) {
			count = 1
		}
		cur.add(b[0], b[1], b[2]*count, b[3], count)
	}
	if cur.count > 0 {
		values = append(values, [2]float64{float64(mint + curIdx*step), cur.value(r.Agg)})
	}
	return values, nil
}

// exists reports whether the point has any history at all, in any store.
func (h *History) exists(ctx context.Context, p sample.Point) (bool, error) {
	q, err := h.Store.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		return false, err
	}
	defer q.Close()
	var ms []*labels.Matcher // every metric of the point: all labels but the name
	for _, m := range h.matchers(p, sample.Metric) {
		if m.Name != labels.MetricName {
			ms = append(ms, m)
		}
	}
	vals, _, err := q.LabelValues(ctx, labels.MetricName, nil, ms...)
	return len(vals) > 0, err
}

// Latest returns the newest stored sample of each point, with its quality.
func (h *History) Latest(ctx context.Context, pts []sample.Point) ([]Latest, error) {
	out := make([]Latest, 0, len(pts))
	for _, p := range pts {
		l, err := h.latest(ctx, p)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// latestWindows are the spans searched for the newest sample, shortest first, so
// a point that changes often costs one chunk, not its whole history.
var latestWindows = []time.Duration{time.Hour, 24 * time.Hour, 31 * 24 * time.Hour, 0}

func (h *History) latest(ctx context.Context, p sample.Point) (Latest, error) {
	now := h.now().UnixMilli()
	for _, w := range latestWindows {
		mint := int64(math.MinInt64)
		if w > 0 {
			mint = now - w.Milliseconds()
		}
		q, err := h.Store.Querier(mint, math.MaxInt64)
		if err != nil {
			return Latest{}, err
		}
		t, v, ok, err := last(ctx, q, h.matchers(p, sample.Metric))
		if err != nil || !ok {
			_ = q.Close()
			if err != nil {
				return Latest{}, err
			}
			continue
		}
		l := Latest{Point: p.String(), TS: t, Value: v, Quality: point.Good.String()}
		qt, qv, ok, err := last(ctx, q, h.matchers(p, sample.QualityMetric))
		_ = q.Close()
		if err != nil {
			return Latest{}, err
		}
		if ok && qt == t && qv >= 0 && qv <= float64(point.CommLost) {
			l.Quality = point.Quality(qv).String()
		}
		return l, nil
	}
	return Latest{}, fmt.Errorf("%w for point %s", ErrNotFound, p)
}

func last(ctx context.Context, q storage.Querier, ms []*labels.Matcher) (int64, float64, bool, error) {
	set := q.Select(ctx, false, nil, ms...)
	var t int64
	var v float64
	found := false
	for set.Next() {
		it := set.At().Iterator(nil)
		for it.Next() == chunkenc.ValFloat {
			t, v = it.At()
			found = true
		}
		if err := it.Err(); err != nil {
			return 0, 0, false, err
		}
	}
	return t, v, found, set.Err()
}
