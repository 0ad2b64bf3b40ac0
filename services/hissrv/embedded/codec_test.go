package embedded

import (
	"math"
	"math/bits"
	"testing"
)

func sameBits(a, b float64) bool {
	if math.IsNaN(a) && math.IsNaN(b) {
		return true
	}
	return math.Float64bits(a) == math.Float64bits(b)
}

func TestBoxedValuesRoundTripExactly(t *testing.T) {
	for _, v := range []float64{0, math.Copysign(0, -1), 1, -1, 229.6, -229.6, 229.60000000000002, 123456.789012,
		1e-7, 1.5e-300, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(1), math.Inf(-1),
		math.NaN(), 1 << 47, 1<<48 - 1, 1 << 48, 1e15, 3.14159265358979, 99.99999, 0.000001, 0.0000015} {
		e := encodeValue(v)
		if got := decodeValue(e); !sameBits(got, v) {
			t.Errorf("%v (%#x): encoded %#x, decoded %v (%#x)", v, math.Float64bits(v), math.Float64bits(e), got, math.Float64bits(got))
		}
		if math.Float64bits(e) == 0x7ff0000000000002 {
			t.Errorf("%v encodes as Prometheus' stale marker", v)
		}
	}
	// Short decimals are boxed; the rest is stored as it is.
	if b := math.Float64bits(encodeValue(229.6)); b&boxMask != boxMask {
		t.Errorf("229.6 not boxed: %#x", b)
	}
	x := 0.1
	if v := x + 0.2; encodeValue(v) != v {
		t.Errorf("0.1+0.2 boxed: it has no short decimal form")
	}
}

// FuzzBoxing checks decode(encode(v)) keeps v's exact bits for every float.
func FuzzBoxing(f *testing.F) {
	for _, v := range []float64{0, 229.6, -0.5, 1e300, 1 << 50} {
		f.Add(math.Float64bits(v))
	}
	f.Fuzz(func(t *testing.T, bits uint64) {
		v := math.Float64frombits(bits)
		e := encodeValue(v)
		if got := decodeValue(e); !sameBits(got, v) {
			t.Fatalf("%#x: decoded %#x", bits, math.Float64bits(got))
		}
		if !math.IsNaN(v) && math.IsNaN(e) && math.Float64bits(e)&boxMask != boxMask {
			t.Fatalf("%#x encoded as a NaN outside the box", bits)
		}
		// With any previous decimals, the value still comes back bit-exact.
		for prev := -1; prev <= 7; prev++ {
			e, d := encodeValueLike(v, prev)
			if got := decodeValue(e); !sameBits(got, v) {
				t.Fatalf("%#x after decimals %d: decoded %#x", bits, prev, math.Float64bits(got))
			}
			if d >= 0 && (math.Float64bits(e)>>boxDShift)&7 != uint64(d) {
				t.Fatalf("%#x: reported decimals %d, boxed %#x", bits, d, math.Float64bits(e))
			}
		}
	})
}

func TestDecimalsAreKeptAcrossWholeNumbers(t *testing.T) {
	// 229.9 → 230 → 230.1 stays at one decimal: only the low bits of n change.
	prev := -1
	var boxed []uint64
	for _, v := range []float64{229.9, 230, 230.1} {
		e, d := encodeValueLike(v, prev)
		if d != 1 {
			t.Fatalf("%v boxed with %d decimals, want 1 (kept from %v)", v, d, prev)
		}
		if decodeValue(e) != v {
			t.Fatalf("%v decoded as %v", v, decodeValue(e))
		}
		boxed, prev = append(boxed, math.Float64bits(e)), d
	}
	for i := 1; i < len(boxed); i++ {
		if x := boxed[i] ^ boxed[i-1]; bits.OnesCount64(x) > 8 {
			t.Errorf("XOR of neighbours has %d bits set; want only n's low bits", bits.OnesCount64(x))
		}
	}
	// A value the kept decimals cannot hold takes the fewest that can.
	if _, d := encodeValueLike(230.25, 1); d != 2 {
		t.Errorf("230.25 after one decimal: %d decimals, want 2", d)
	}
}
