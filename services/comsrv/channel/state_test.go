package channel

import (
	"math"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/point"
)

// clock is a settable time source for the point table.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time          { return c.now }
func (c *clock) advance(d time.Duration) { c.now = c.now.Add(d) }

func newTestTable(deadband float64, integrity time.Duration) (*pointTable, *clock) {
	c := &clock{now: time.Unix(1_700_000_000, 0)}
	pt := newPointTable([]key{{point.Telemetry, 1}, {point.Telemetry, 2}, {point.Signal, 1}}, deadband, integrity)
	pt.now = c.Now
	return pt, c
}

func good(id point.ID, v float64) point.Sample {
	return point.Sample{ID: id, Value: v, Raw: v, TS: 1, Quality: point.Good}
}

// reported returns what the next flush would write, by type and id.
func reported(pt *pointTable) map[point.Type]map[point.ID]point.Sample {
	out := map[point.Type]map[point.ID]point.Sample{}
	for t, ss := range pt.take() {
		out[t] = map[point.ID]point.Sample{}
		for _, s := range ss {
			out[t][s.ID] = s
		}
	}
	return out
}

func TestReportOnChangeWithDeadband(t *testing.T) {
	pt, c := newTestTable(0.5, time.Minute)
	pt.Sample(point.Telemetry, good(1, 10))
	pt.Sample(point.Signal, good(1, 1))
	if r := reported(pt); len(r[point.Telemetry]) != 1 || len(r[point.Signal]) != 1 {
		t.Fatalf("first values not reported: %v", r)
	}
	c.advance(time.Second)
	pt.Sample(point.Telemetry, good(1, 10.4)) // inside the deadband
	pt.Sample(point.Signal, good(1, 1))       // unchanged
	if r := reported(pt); len(r) != 0 {
		t.Fatalf("unchanged or in-deadband values reported: %v", r)
	}
	pt.Sample(point.Telemetry, good(1, 10.6)) // beyond the deadband from the last reported 10
	if r := reported(pt); r[point.Telemetry][1].Value != 10.6 {
		t.Fatalf("change beyond the deadband not reported: %v", r)
	}
	pt.Sample(point.Signal, good(1, 0)) // deadband applies to telemetry only
	if r := reported(pt); r[point.Signal][1].Value != 0 {
		t.Fatalf("signal change not reported: %v", r)
	}
}

func TestIntegrityWriteReportsUnchangedValues(t *testing.T) {
	pt, c := newTestTable(0, 10*time.Second)
	pt.Sample(point.Telemetry, good(1, 5))
	reported(pt)
	c.advance(9 * time.Second)
	pt.Sample(point.Telemetry, good(1, 5))
	if r := reported(pt); len(r) != 0 {
		t.Fatalf("reported before the integrity interval: %v", r)
	}
	c.advance(2 * time.Second)
	pt.Sample(point.Telemetry, good(1, 5))
	if r := reported(pt); r[point.Telemetry][1].Value != 5 {
		t.Fatalf("integrity write missing: %v", r)
	}
}

func TestEveryPollWhenIntegrityIsZero(t *testing.T) {
	pt, _ := newTestTable(0, 0)
	for range 3 {
		pt.Sample(point.Telemetry, good(1, 5))
		if r := reported(pt); len(r[point.Telemetry]) != 1 {
			t.Fatalf("integrity 0 must write every read: %v", r)
		}
	}
}

func TestFailKeepsTheLastValueWithTheNewQuality(t *testing.T) {
	pt, _ := newTestTable(0, time.Minute)
	pt.Fail(point.Telemetry, 2, point.CommLost, nil) // never read: nothing to qualify
	if r := reported(pt); len(r) != 0 {
		t.Fatalf("quality of a point without a value reported: %v", r)
	}
	pt.Sample(point.Telemetry, good(1, 42))
	reported(pt)
	pt.Fail(point.Telemetry, 1, point.CommLost, nil)
	pt.Fail(point.Telemetry, 1, point.CommLost, nil) // no change: reported once
	r := reported(pt)
	if s := r[point.Telemetry][1]; s.Value != 42 || s.Quality != point.CommLost || len(r[point.Telemetry]) != 1 {
		t.Fatalf("got %v, want point 1 = 42 comm_lost once", r)
	}
	pt.Sample(point.Telemetry, good(1, 42)) // same value, quality back to good
	if s := reported(pt)[point.Telemetry][1]; s.Quality != point.Good {
		t.Fatalf("recovery not reported: %+v", s)
	}
}

func TestMarkAllAndStale(t *testing.T) {
	pt, c := newTestTable(0, time.Minute)
	pt.Sample(point.Telemetry, good(1, 1))
	pt.Sample(point.Signal, good(1, 1))
	reported(pt)
	pt.markAll(point.CommLost)
	r := reported(pt)
	if r[point.Telemetry][1].Quality != point.CommLost || r[point.Signal][1].Quality != point.CommLost {
		t.Fatalf("markAll: %v", r)
	}
	pt.Sample(point.Telemetry, good(1, 1))
	reported(pt)
	c.advance(2 * time.Second)
	pt.markStale(3 * time.Second)
	if r := reported(pt); len(r) != 0 {
		t.Fatalf("stale too early: %v", r)
	}
	c.advance(2 * time.Second)
	pt.markStale(3 * time.Second)
	if s := reported(pt)[point.Telemetry][1]; s.Quality != point.Stale {
		t.Fatalf("not stale after 4 s without a read: %+v", s)
	}
}

func TestNonFiniteValuesAreInvalidAndKeepTheLastValue(t *testing.T) {
	pt, _ := newTestTable(0, time.Minute)
	pt.Sample(point.Telemetry, good(1, 3))
	reported(pt)
	pt.Sample(point.Telemetry, point.Sample{ID: 1, Value: math.NaN(), Quality: point.Good})
	s := reported(pt)[point.Telemetry][1]
	if s.Quality != point.Invalid {
		t.Fatalf("NaN sample quality %s, want invalid", s.Quality)
	}
	if st := pt.points[key{point.Telemetry, 1}]; st.value != 3 {
		t.Fatalf("remembered value %v, want the last good 3", st.value)
	}
}

func TestDirtyAndRestore(t *testing.T) {
	pt, _ := newTestTable(0, time.Minute)
	pt.restore(key{point.Telemetry, 1}, 7, 70, 123, point.Good)
	pt.Sample(point.Telemetry, point.Sample{ID: 1, Value: 7, Raw: 70, TS: 200, Quality: point.Good})
	if r := reported(pt); len(r) != 0 {
		t.Fatalf("value found in Redis at start was reported again: %v", r)
	}
	pt.markDirty()
	pt.Sample(point.Telemetry, point.Sample{ID: 1, Value: 7, Raw: 70, TS: 300, Quality: point.Good})
	if s := reported(pt)[point.Telemetry][1]; s.TS != 300 {
		t.Fatalf("dirty point not rewritten: %+v", s)
	}
	pt.Sample(point.Telemetry, good(99, 1)) // not configured: ignored
	if r := reported(pt); len(r) != 0 {
		t.Fatalf("unconfigured point reported: %v", r)
	}
}

func TestChangesInOneMillisecondGetDistinctTimestamps(t *testing.T) {
	pt, _ := newTestTable(0, 0)
	pt.Sample(point.Telemetry, point.Sample{ID: 1, Value: 1, TS: 5000})
	pt.Sample(point.Telemetry, point.Sample{ID: 1, Value: 2, TS: 5000}) // same ms, new value
	pt.Sample(point.Telemetry, point.Sample{ID: 1, Value: 2, TS: 5001}) // same ms as the bumped one, same value
	pt.Sample(point.Telemetry, point.Sample{ID: 2, Value: 7})           // no timestamp: stamped on arrival
	var ts []int64
	for _, s := range pt.take()[point.Telemetry] {
		if s.ID == 1 {
			ts = append(ts, s.TS)
		} else if s.TS == 0 {
			t.Error("a sample without timestamp was queued without one")
		}
	}
	if len(ts) != 3 || ts[0] != 5000 || ts[1] != 5001 || ts[2] != 5001 {
		t.Fatalf("timestamps %v, want 5000 then 5001 for the new value (and an unchanged repeat may keep 5001)", ts)
	}
}
