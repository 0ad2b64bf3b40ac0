package embedded

import (
	"context"
	"math"
	"math/bits"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/annotations"
)

// Why values are stored boxed.
//
// The TSDB compresses a value by XOR with the previous one (Gorilla). That
// works for counters and integers but not for the decimals of an EMS: 229.6
// and 229.7 have no short binary form, so their XOR keeps ~43 significant bits
// and a noisy measurement costs 6–7 bytes per sample. A point's value is almost
// always a short decimal (raw register × 0.1, 0.01, …), so the raw store keeps
// such a value as the decimal itself — its digits n and its number of decimals
// d — packed into the payload of a quiet NaN: two neighbouring values then
// differ only in the low bits of n, and the XOR is a few bits.
//
// Layout: sign bit = sign of the value; exponent all ones; quiet bit set;
// payload bits 50–48 = d (0–6; 7 = a real NaN); bits 47–0 = |n| (< 2^48) with
// its bit order reversed. The reversal matters: the chunk encoder counts at most
// 31 leading zero bits of an XOR, so a change in the low bits of n would still
// cost ~33 bits; reversed, the bits that change sit near the top and the
// trailing zeros are free.
// A value that is not exactly n/10^d for some d ≤ 6 and |n| < 2^48 is stored
// as it is; such a value is never a quiet NaN, so decoding is unambiguous. The
// boxing is lossless (decode(encode(v)) has v's exact bits) and private to the
// raw store: every read goes through decodingQuerier, and the tiers and the
// other backends see plain values.

const (
	boxMask   = 0x7FF8_0000_0000_0000 // exponent all ones + quiet bit
	boxDShift = 48
	boxNMask  = 1<<48 - 1
	boxNaN    = 7
)

var pow10 = [...]float64{1, 10, 100, 1e3, 1e4, 1e5, 1e6}

// encodeValueLike boxes v with the number of decimals the series' previous value
// had (prev, -1 = none) when that still represents v exactly, else as
// encodeValue does, and returns the decimals used (-1 when v is not boxed).
// Keeping the decimals matters: a walk 229.9 → 230.0 → 230.1 boxed as 2299/10,
// 230/1, 2301/10 changes d and most of n twice (~50 bits each), where 2299,
// 2300, 2301 at d = 1 differ in a few low bits.
func encodeValueLike(v float64, prev int) (float64, int) {
	if prev >= 0 && prev < len(pow10) && !math.IsNaN(v) && !math.IsInf(v, 0) {
		a, p := math.Abs(v), pow10[prev]
		if n := math.Round(a * p); n < 1<<48 && n/p == a {
			var sign uint64
			if math.Signbit(v) {
				sign = 1 << 63
			}
			return math.Float64frombits(sign | boxMask | uint64(prev)<<boxDShift | reverse48(uint64(n))), prev
		}
	}
	b := encodeValue(v)
	bits := math.Float64bits(b)
	if bits&boxMask != boxMask || math.IsNaN(v) {
		return b, -1
	}
	return b, int((bits >> boxDShift) & 7)
}

// encodeValue boxes v when it is a short decimal, with the fewest decimals.
func encodeValue(v float64) float64 {
	if math.IsNaN(v) {
		return math.Float64frombits(boxMask | boxNaN<<boxDShift)
	}
	if math.IsInf(v, 0) {
		return v
	}
	a := math.Abs(v)
	var sign uint64
	if math.Signbit(v) {
		sign = 1 << 63
	}
	for d, p := range pow10 {
		n := math.Round(a * p)
		if n >= 1<<48 {
			break
		}
		if n/p == a {
			return math.Float64frombits(sign | boxMask | uint64(d)<<boxDShift | reverse48(uint64(n)))
		}
	}
	return v
}

// decodeValue undoes encodeValue.
func decodeValue(x float64) float64 {
	b := math.Float64bits(x)
	if b&boxMask != boxMask {
		return x
	}
	d := (b >> boxDShift) & 7
	if d == boxNaN {
		return math.NaN()
	}
	v := float64(reverse48(b&boxNMask)) / pow10[d]
	if b>>63 != 0 {
		v = -v
	}
	return v
}

// reverse48 reverses the order of the low 48 bits of n.
func reverse48(n uint64) uint64 { return bits.Reverse64(n) >> 16 }

// decodingQueryable reads the raw store with values unboxed.
type decodingQueryable struct{ q storage.Queryable }

func (d decodingQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := d.q.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return decodingQuerier{q}, nil
}

type decodingQuerier struct{ storage.Querier }

func (d decodingQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	return &decodingSet{SeriesSet: d.Querier.Select(ctx, sortSeries, hints, ms...)}
}

type decodingSet struct{ storage.SeriesSet }

func (s *decodingSet) At() storage.Series { return decodingSeries{s.SeriesSet.At()} }

func (s *decodingSet) Warnings() annotations.Annotations { return s.SeriesSet.Warnings() }

type decodingSeries struct{ storage.Series }

func (s decodingSeries) Iterator(it chunkenc.Iterator) chunkenc.Iterator {
	if d, ok := it.(*decodingIterator); ok {
		d.Iterator = s.Series.Iterator(d.Iterator)
		return d
	}
	return &decodingIterator{Iterator: s.Series.Iterator(it)}
}

type decodingIterator struct{ chunkenc.Iterator }

func (i *decodingIterator) At() (int64, float64) {
	t, v := i.Iterator.At()
	return t, decodeValue(v)
}

// AtHistogram and AtFloatHistogram pass through: the store holds floats only.
func (i *decodingIterator) AtHistogram(h *histogram.Histogram) (int64, *histogram.Histogram) {
	return i.Iterator.AtHistogram(h)
}

func (i *decodingIterator) AtFloatHistogram(h *histogram.FloatHistogram) (int64, *histogram.FloatHistogram) {
	return i.Iterator.AtFloatHistogram(h)
}
