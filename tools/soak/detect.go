package soak

import (
	"math"
	"slices"
)

// Point is one sample of a series: seconds since the run began, and the value.
type Point struct {
	T, V float64
}

// Rule says how much a series may grow over the judged window before it counts as
// a leak: it is flagged only when the growth exceeds both Rel (a fraction of the
// fitted starting value) and Abs (in the series' own unit). Rel 0 leaves only Abs.
type Rule struct {
	Rel float64
	Abs float64
}

// Trend is what the detector found in one series after the warm-up.
type Trend struct {
	Samples     int     // samples judged (after the warm-up)
	SlopePerSec float64 // least-squares slope, unit per second
	Growth      float64 // slope × judged window: the fitted rise from its first to its last sample
	Start       float64 // the fitted value at the window's first sample
	Flagged     bool
	Judged      bool // false: too few samples after the warm-up to say anything
}

// minJudgedSamples is the fewest samples after the warm-up that a trend is fitted to.
const minJudgedSamples = 6

// Judge fits a least-squares line to the samples at or after warmup (seconds) and
// flags the series when the line rises over the window by more than the rule
// allows and the rise is steady: the median of the window's last quarter must
// also exceed the median of its first quarter by at least half the allowed growth.
// The second test keeps a single spike at either end, which pulls a least-squares
// line hard, from flagging a flat series; a GC sawtooth fits a near-flat line over
// a few of its periods and its quarter medians agree, so it is not flagged either.
// Judge is pure: it reads pts and changes nothing.
func Judge(pts []Point, warmup float64, r Rule) Trend {
	var w []Point
	for _, p := range pts {
		if p.T >= warmup && !math.IsNaN(p.V) {
			w = append(w, p)
		}
	}
	tr := Trend{Samples: len(w)}
	if len(w) < minJudgedSamples {
		return tr
	}
	tr.Judged = true
	slope, intercept := leastSquares(w)
	span := w[len(w)-1].T - w[0].T
	tr.SlopePerSec = slope
	tr.Growth = slope * span
	tr.Start = intercept + slope*w[0].T
	allowed := r.Abs
	if rel := r.Rel * math.Abs(tr.Start); rel > allowed {
		allowed = rel
	}
	if tr.Growth <= allowed {
		return tr
	}
	q := len(w) / 4
	if q < 1 {
		q = 1
	}
	if median(w[len(w)-q:])-median(w[:q]) < allowed/2 {
		return tr
	}
	tr.Flagged = true
	return tr
}

// leastSquares is the slope and intercept of the line through pts (len ≥ 2) that
// minimises the squared error. Times are centred first, so hour-long runs in
// seconds lose no precision.
func leastSquares(pts []Point) (slope, intercept float64) {
	var mt, mv float64
	for _, p := range pts {
		mt += p.T
		mv += p.V
	}
	n := float64(len(pts))
	mt /= n
	mv /= n
	var sxy, sxx float64
	for _, p := range pts {
		dt := p.T - mt
		sxy += dt * (p.V - mv)
		sxx += dt * dt
	}
	if sxx == 0 {
		return 0, mv
	}
	slope = sxy / sxx
	return slope, mv - slope*mt
}

func median(pts []Point) float64 {
	vs := make([]float64, len(pts))
	for i, p := range pts {
		vs[i] = p.V
	}
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2]
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
}

// Warmup is the part of a run that is not judged: 10 % of it or 5 minutes,
// whichever is smaller. Caches fill, pools grow and the stream reaches its cap
// then; growth during it is not a leak.
func Warmup(run float64) float64 {
	return math.Min(run/10, 300)
}
