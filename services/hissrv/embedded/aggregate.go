package embedded

import (
	"math"
	"sync/atomic"

	"github.com/voltageems/voltage/services/hissrv/sample"
)

// Agg is a partial aggregate: what one sample or one closed bucket contributes.
type Agg struct {
	Min, Max, Sum, Last float64
	Count               float64
}

// single is the aggregate of one value.
func single(v float64) Agg { return Agg{Min: v, Max: v, Sum: v, Last: v, Count: 1} }

func (a *Agg) merge(b Agg) {
	if a.Count == 0 {
		*a = b
		return
	}
	a.Min = math.Min(a.Min, b.Min)
	a.Max = math.Max(a.Max, b.Max)
	a.Sum += b.Sum
	a.Last = b.Last
	a.Count += b.Count
}

// Avg is the mean of the aggregated values.
func (a Agg) Avg() float64 {
	if a.Count == 0 {
		return math.NaN()
	}
	return a.Sum / a.Count
}

// Bucket is a closed bucket of one point: the aggregate of every input whose
// time is in [Start, Start+width).
type Bucket struct {
	Point sample.Point
	Start int64
	Agg   Agg
}

// aggState is the open bucket of one point.
type aggState struct {
	lastIn int64 // time of the last input taken; older or equal inputs are repeats
	open   bool
	start  int64 // of the open bucket
	agg    Agg
	closed int64 // start of the last bucket closed (written)
}

// aggregator computes fixed-width buckets of many points incrementally. A bucket
// closes when an input of a later bucket arrives for its point, or when the
// watermark passes its end (Close). It is owned by one goroutine.
type aggregator struct {
	width  int64 // ms
	series map[sample.Point]*aggState
	late   atomic.Uint64 // inputs for a bucket already closed, dropped
}

func newAggregator(width int64) *aggregator {
	return &aggregator{width: width, series: map[sample.Point]*aggState{}}
}

func (g *aggregator) bucketStart(ts int64) int64 {
	s := ts - ts%g.width
	if ts < 0 && ts%g.width != 0 {
		s -= g.width
	}
	return s
}

// add takes one input at time ts and appends the buckets it closes to out.
func (g *aggregator) add(p sample.Point, ts int64, a Agg, out []Bucket) []Bucket {
	st := g.series[p]
	if st == nil {
		st = &aggState{lastIn: math.MinInt64, closed: math.MinInt64}
		g.series[p] = st
	}
	if ts <= st.lastIn {
		return out // a repeat (re-delivery) or out of order: the raw store rejected it too
	}
	st.lastIn = ts
	start := g.bucketStart(ts)
	if st.open && start != st.start {
		if start < st.start { // cannot happen with ts > lastIn; kept for safety
			g.late.Add(1)
			return out
		}
		out = append(out, Bucket{Point: p, Start: st.start, Agg: st.agg})
		st.open, st.closed = false, st.start
	}
	if !st.open {
		if start <= st.closed {
			g.late.Add(1)
			return out
		}
		st.open, st.start, st.agg = true, start, Agg{}
	}
	st.agg.merge(a)
	return out
}

// close closes every open bucket that ends at or before watermark, and forgets
// points idle for two buckets past it, so memory follows the active points.
func (g *aggregator) close(watermark int64, out []Bucket) []Bucket {
	for p, st := range g.series {
		switch {
		case st.open && st.start+g.width <= watermark:
			out = append(out, Bucket{Point: p, Start: st.start, Agg: st.agg})
			st.open, st.closed = false, st.start
		case !st.open && st.lastIn < watermark-2*g.width:
			delete(g.series, p)
		}
	}
	return out
}
