package point

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestEngineering(t *testing.T) {
	cases := []struct {
		raw, scale, offset float64
		reverse            bool
		want               float64
	}{
		{100, 1, 0, false, 100},
		{100, 0.1, 0, false, 10},
		{1234, 0.01, -5, false, 7.34},
		{-40, 0.5, 273.15, false, 253.15},
		{65535, 1, -32768, false, 32767},
		{7, -2, 1, false, -13},
		// reverse inverts the boolean that raw × scale + offset gives
		{0, 1, 0, true, 1},
		{1, 1, 0, true, 0},
		{5, 1, 0, true, 0}, // any non-zero is true
		{1, 1, -1, true, 1},
		{0, 1, 1, true, 0},
		// a zero scale maps every raw value to the offset
		{1234, 0, 0, false, 0},
		{1234, 0, 7, false, 7},
	}
	for _, c := range cases {
		got := Engineering(c.raw, c.scale, c.offset, c.reverse)
		if !closeTo(got, c.want, 1e-12*math.Max(1, math.Abs(c.want))) {
			t.Errorf("Engineering(%v, scale %v, offset %v, reverse %v) = %v, want %v",
				c.raw, c.scale, c.offset, c.reverse, got, c.want)
		}
	}
}

func TestRawFromEngineering(t *testing.T) {
	cases := []struct {
		v, scale, offset float64
		reverse          bool
		want             float64
	}{
		{100, 1, 0, false, 100},
		{10, 0.1, 0, false, 100},
		{7.34, 0.01, -5, false, 1234},
		{253.15, 0.5, 273.15, false, -40},
		{-13, -2, 1, false, 7},
		{1, 1, 0, true, 0},
		{0, 1, 0, true, 1},
		{42, 1, 0, true, 0}, // any non-zero engineering value is "on", reversed to off
		// A zero scale cannot be inverted; RawFromEngineering treats it as 1 instead
		// of dividing by zero, so a command never sends ±Inf or NaN to a device.
		{50, 0, 0, false, 50},
		{50, 0, 8, false, 42},
		{1, 0, 0, true, 0},
	}
	for _, c := range cases {
		got := RawFromEngineering(c.v, c.scale, c.offset, c.reverse)
		if !closeTo(got, c.want, 1e-9*math.Max(1, math.Abs(c.want))) {
			t.Errorf("RawFromEngineering(%v, scale %v, offset %v, reverse %v) = %v, want %v",
				c.v, c.scale, c.offset, c.reverse, got, c.want)
		}
	}
}

// TestEngineeringInverseTable walks a grid of realistic point-table settings.
func TestEngineeringInverseTable(t *testing.T) {
	scales := []float64{1, 0.1, 0.01, 0.001, 10, 1000, -1, -0.5, 1.0 / 3, 0.0625}
	offsets := []float64{0, 1, -1, 273.15, -40, -32768, 0.001, 1e6}
	raws := []float64{0, 1, -1, 100, 65535, -32768, 2147483647, 12.5, 1e-3}
	for _, s := range scales {
		for _, o := range offsets {
			for _, raw := range raws {
				checkInverse(t, raw, s, o)
			}
		}
	}
}

// TestEngineeringInverseProperty checks the inverse on many random (but
// reproducible) combinations spanning several orders of magnitude.
func TestEngineeringInverseProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(20240601, 7))
	magnitude := func(lo, hi float64) float64 {
		m := math.Pow(10, lo+rng.Float64()*(hi-lo)) * (1 + rng.Float64()*9)
		if rng.IntN(2) == 0 {
			return -m
		}
		return m
	}
	for range 20000 {
		s := magnitude(-4, 4)
		o := 0.0
		if rng.IntN(4) != 0 {
			o = magnitude(-3, 6)
		}
		raw := magnitude(-3, 9)
		if rng.IntN(2) == 0 {
			raw = float64(rng.IntN(1<<16) - 1<<15) // register-sized integers
		}
		checkInverse(t, raw, s, o)
		if t.Failed() {
			return // one reproducible counterexample is enough
		}
	}
}

// checkInverse checks both directions for one (raw, scale, offset). The tolerance is
// a few ulps of the magnitudes involved: raw × scale + offset loses the low bits of
// raw when offset dominates, and no conversion can bring them back.
func checkInverse(t *testing.T, raw, s, o float64) {
	t.Helper()
	const eps = 0x1p-52
	e := Engineering(raw, s, o, false)
	back := RawFromEngineering(e, s, o, false)
	// Engineering rounds to 15 significant digits: up to 5e-15 of |e|, divided by s on the way back.
	if tol := 8*eps*(math.Abs(raw)+math.Abs(o/s)) + 1e-14*math.Abs(e/s); !closeTo(back, raw, tol) {
		t.Errorf("raw %v, scale %v, offset %v: engineering %v converts back to %v (off by %g, tolerance %g)",
			raw, s, o, e, back, back-raw, tol)
	}
	r := RawFromEngineering(raw, s, o, false) // raw used as an engineering value here
	again := Engineering(r, s, o, false)
	if tol := 8*eps*(math.Abs(raw)+math.Abs(o)) + 1e-14*math.Abs(raw); !closeTo(again, raw, tol) {
		t.Errorf("engineering %v, scale %v, offset %v: raw %v converts to %v (off by %g, tolerance %g)",
			raw, s, o, r, again, again-raw, tol)
	}
}

// TestReverseInverse checks digital points: for the 0/1 values a signal or control
// carries, RawFromEngineering and Engineering undo each other with reverse set, and
// reverse really flips the value compared with the same point without it.
func TestReverseInverse(t *testing.T) {
	for _, s := range []float64{1, 2, 0.5, -1} {
		for _, o := range []float64{0, 1, -1} {
			for _, v := range []float64{0, 1} {
				raw := RawFromEngineering(v, s, o, true)
				if got := Engineering(raw, s, o, true); got != v {
					t.Errorf("scale %v offset %v: engineering %v → raw %v → %v", s, o, v, raw, got)
				}
				plain := Engineering(raw, s, o, false)
				if (plain != 0) == (v != 0) {
					t.Errorf("scale %v offset %v: raw %v gives %v both with and without reverse", s, o, raw, v)
				}
			}
		}
	}
}

func TestZeroScaleNeverDivides(t *testing.T) {
	for _, v := range []float64{0, 1, -1, 1e300, -1e-300} {
		for _, o := range []float64{0, 5, -5} {
			for _, rev := range []bool{false, true} {
				if r := RawFromEngineering(v, 0, o, rev); math.IsInf(r, 0) || math.IsNaN(r) {
					t.Errorf("RawFromEngineering(%v, scale 0, offset %v, reverse %v) = %v", v, o, rev, r)
				}
			}
		}
	}
}

func closeTo(got, want, tol float64) bool {
	if got == want {
		return true
	}
	return math.Abs(got-want) <= tol
}

func TestEngineeringHasNoFloatNoise(t *testing.T) {
	cases := []struct {
		raw, scale, offset float64
		want               string
	}{
		{2296, 0.1, 0, "229.6"},
		{3, 0.1, 0, "0.3"},
		{-1234, 0.1, 5, "-118.4"},
		{123456789, 0.001, 0, "123456.789"},
		{12345678901234, 0.5, 0, "6172839450617"},
	}
	for _, c := range cases {
		if got := FormatValue(Engineering(c.raw, c.scale, c.offset, false)); got != c.want {
			t.Errorf("Engineering(%v, %v, %v) = %s, want %s", c.raw, c.scale, c.offset, got, c.want)
		}
	}
}
