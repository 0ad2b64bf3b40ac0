package embedded

import (
	"testing"

	"github.com/voltageems/voltage/services/hissrv/sample"
)

func TestBucketsCloseByDataAndByWatermark(t *testing.T) {
	g := newAggregator(60_000)
	p := sample.Point{ID: 1, Family: "T", Field: "1"}
	var out []Bucket
	out = g.add(p, 1_000, single(1), out)
	out = g.add(p, 59_999, single(3), out)
	out = g.add(p, 59_999, single(9), out) // a repeat: ignored
	if len(out) != 0 {
		t.Fatalf("closed early: %+v", out)
	}
	out = g.add(p, 60_000, single(5), out) // next minute closes the first
	if len(out) != 1 || out[0].Start != 0 || out[0].Agg != (Agg{Min: 1, Max: 3, Sum: 4, Last: 3, Count: 2}) {
		t.Fatalf("first bucket %+v", out)
	}
	out = g.close(119_999, out[:0]) // the second bucket ends at 120000
	if len(out) != 0 {
		t.Fatalf("closed before its end: %+v", out)
	}
	out = g.close(120_000, out)
	if len(out) != 1 || out[0].Start != 60_000 || out[0].Agg.Count != 1 {
		t.Fatalf("second bucket %+v", out)
	}
	out = g.add(p, 61_000, single(7), out[:0]) // late: its bucket is written
	if len(out) != 0 || g.late.Load() != 1 {
		t.Fatalf("late sample: %+v, late=%d", out, g.late.Load())
	}
	out = g.add(p, 120_500, single(2), out) // a new bucket opens
	out = g.close(1_000_000, out)
	if len(out) != 1 || out[0].Start != 120_000 {
		t.Fatalf("third bucket %+v", out)
	}
	g.close(10_000_000, nil)
	if len(g.series) != 0 {
		t.Errorf("an idle point is still held: %d", len(g.series))
	}
	if s := g.bucketStart(-1); s != -60_000 {
		t.Errorf("bucketStart(-1) = %d", s)
	}
}
