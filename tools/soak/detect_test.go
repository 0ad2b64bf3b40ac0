package soak

import (
	"math"
	"math/rand/v2"
	"testing"
)

const mib = 1 << 20

// hourly is a one-hour series sampled every 10 s: f(t) plus uniform noise of ±noise.
func hourly(seed uint64, noise float64, f func(t float64) float64) []Point {
	rng := rand.New(rand.NewPCG(seed, 1))
	var pts []Point
	for t := 0.0; t <= 3600; t += 10 {
		pts = append(pts, Point{T: t, V: f(t) + (rng.Float64()*2-1)*noise})
	}
	return pts
}

var rssRule = Rule{Rel: 0.10, Abs: 10 * mib}

func TestJudgeFlagsALeak(t *testing.T) {
	// 100 MiB growing by 30 MiB over the hour, with ±3 MiB of noise.
	pts := hourly(1, 3*mib, func(t float64) float64 { return 100*mib + 30*mib*t/3600 })
	tr := Judge(pts, Warmup(3600), rssRule)
	if !tr.Judged || !tr.Flagged {
		t.Fatalf("a 30 MiB/h leak on 100 MiB was not flagged: %+v", tr)
	}
	perHour := tr.SlopePerSec * 3600 / mib
	if perHour < 27 || perHour > 33 {
		t.Errorf("slope %.1f MiB/h, want about 30", perHour)
	}
}

func TestJudgeFlagsASlowGoroutineLeak(t *testing.T) {
	// One goroutine more every minute on 200: +60 over the hour.
	pts := hourly(2, 5, func(t float64) float64 { return math.Round(200 + t/60) })
	if tr := Judge(pts, Warmup(3600), Rule{Rel: 0.10, Abs: 20}); !tr.Flagged {
		t.Fatalf("60 goroutines/h on 200 not flagged: %+v", tr)
	}
}

func TestJudgeKeepsAFlatNoisySeries(t *testing.T) {
	for seed := range uint64(20) {
		pts := hourly(seed, 8*mib, func(float64) float64 { return 120 * mib })
		if tr := Judge(pts, Warmup(3600), rssRule); tr.Flagged {
			t.Fatalf("seed %d: a flat series with ±8 MiB noise was flagged: %+v", seed, tr)
		}
	}
}

func TestJudgeKeepsAGCSawtooth(t *testing.T) {
	// The heap climbs by 40 MiB over 7 minutes, then the collector frees it.
	saw := func(t float64) float64 { return 80*mib + 40*mib*math.Mod(t, 420)/420 }
	for seed := range uint64(20) {
		pts := hourly(seed, 1*mib, saw)
		if tr := Judge(pts, Warmup(3600), rssRule); tr.Flagged {
			t.Fatalf("seed %d: a GC sawtooth was flagged: %+v", seed, tr)
		}
	}
}

func TestJudgeIgnoresTheWarmup(t *testing.T) {
	// Rises by 50 MiB in the first 5 minutes (caches filling), then flat.
	pts := hourly(3, 1*mib, func(t float64) float64 { return 100*mib + 50*mib*math.Min(t, 300)/300 })
	if tr := Judge(pts, Warmup(3600), rssRule); tr.Flagged {
		t.Fatalf("growth inside the warm-up was flagged: %+v", tr)
	}
	if tr := Judge(pts[:60], 0, rssRule); !tr.Flagged {
		t.Fatalf("judged from the start, the first 10 minutes' rise should count: %+v", tr)
	}
}

func TestJudgeKeepsALateSpike(t *testing.T) {
	// Flat, but the last two samples jump (a burst at the very end): least squares
	// tilts, the quarter medians do not.
	pts := hourly(4, 1*mib, func(float64) float64 { return 100 * mib })
	pts[len(pts)-1].V += 400 * mib
	pts[len(pts)-2].V += 400 * mib
	tr := Judge(pts, Warmup(3600), rssRule)
	if tr.Growth <= 10*mib {
		t.Fatalf("the spike should tilt the fitted line beyond the threshold: %+v", tr)
	}
	if tr.Flagged {
		t.Fatalf("a spike at the end was flagged as steady growth: %+v", tr)
	}
}

func TestJudgeNeedsBothThresholds(t *testing.T) {
	// fds: +8 on 20 is 40 % but below the absolute 10; +30 on 1000 is above 10 but only 3 %.
	fdRule := Rule{Rel: 0.10, Abs: 10}
	small := hourly(5, 0, func(t float64) float64 { return 20 + 8*t/3600 })
	if tr := Judge(small, 0, fdRule); tr.Flagged {
		t.Errorf("+8 fds flagged: %+v", tr)
	}
	big := hourly(6, 0, func(t float64) float64 { return 1000 + 30*t/3600 })
	if tr := Judge(big, 0, fdRule); tr.Flagged {
		t.Errorf("+3 %% fds flagged: %+v", tr)
	}
	both := hourly(7, 0, func(t float64) float64 { return 50 + 30*t/3600 })
	if tr := Judge(both, 0, fdRule); !tr.Flagged {
		t.Errorf("+30 fds on 50 not flagged: %+v", tr)
	}
}

func TestJudgeLagGrowingSteadily(t *testing.T) {
	lagRule := Rule{Abs: 1000}
	keepingUp := hourly(8, 0, func(float64) float64 { return 0 })
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range keepingUp {
		keepingUp[i].V = float64(rng.IntN(40)) // between reads: a batch or two behind
	}
	if tr := Judge(keepingUp, Warmup(3600), lagRule); tr.Flagged {
		t.Errorf("a consumer a batch behind was flagged: %+v", tr)
	}
	fallingBehind := hourly(10, 20, func(t float64) float64 { return 2 * t }) // 2 entries/s unread
	if tr := Judge(fallingBehind, Warmup(3600), lagRule); !tr.Flagged {
		t.Errorf("a consumer falling 2 entries/s behind was not flagged: %+v", tr)
	}
}

func TestJudgeTooFewSamples(t *testing.T) {
	pts := []Point{{0, 1}, {10, 100}, {20, 1000}}
	if tr := Judge(pts, 0, Rule{Abs: 1}); tr.Judged || tr.Flagged {
		t.Fatalf("3 samples were judged: %+v", tr)
	}
}

func TestWarmup(t *testing.T) {
	for _, c := range []struct{ run, want float64 }{{600, 60}, {3600, 300}, {30, 3}, {86400, 300}} {
		if got := Warmup(c.run); got != c.want {
			t.Errorf("Warmup(%v) = %v, want %v", c.run, got, c.want)
		}
	}
}
