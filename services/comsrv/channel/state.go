package channel

import (
	"math"
	"sync"
	"time"

	"github.com/voltageems/voltage/shared/point"
)

// key names a point of the channel.
type key struct {
	t  point.Type
	id point.ID
}

// pointState is what the runner remembers of a point between polls: the last value
// it wrote to Redis, for change detection and to re-publish the value with a new
// quality when the point goes bad.
type pointState struct {
	known    bool // a value exists (read this run, or found in Redis at start)
	value    float64
	raw      float64
	ts       int64
	quality  point.Quality
	written  time.Time // last time the value went to Redis (for the integrity write)
	lastRead time.Time // last successful read (for stale detection)
	dirty    bool      // must be written on the next flush even if unchanged
}

// pointTable is the sink the driver delivers into. It decides what changed and
// collects the batch for the next flush. It is safe for concurrent use because
// push drivers deliver from their own goroutines.
type pointTable struct {
	mu        sync.Mutex
	points    map[key]*pointState
	pending   map[point.Type][]point.Sample
	deadband  float64
	integrity time.Duration // 0: write every read
	notify    chan struct{} // signalled when samples are pending
	now       func() time.Time
}

func newPointTable(keys []key, deadband float64, integrity time.Duration) *pointTable {
	pt := &pointTable{
		points:    make(map[key]*pointState, len(keys)),
		pending:   map[point.Type][]point.Sample{},
		deadband:  deadband,
		integrity: integrity,
		notify:    make(chan struct{}, 1),
		now:       time.Now,
	}
	for _, k := range keys {
		pt.points[k] = &pointState{quality: point.Good}
	}
	return pt
}

// Sample implements protocol.Sink.
func (pt *pointTable) Sample(t point.Type, s point.Sample) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	st := pt.points[key{t, s.ID}]
	if st == nil {
		return // not a configured point: a driver bug, never a reason to write
	}
	now := pt.now()
	if s.Quality == point.Good && (math.IsNaN(s.Value) || math.IsInf(s.Value, 0)) {
		s.Quality = point.Invalid
	}
	if s.Quality == point.Good {
		st.lastRead = now
	}
	integrityDue := pt.integrity == 0 || now.Sub(st.written) >= pt.integrity
	if !pt.changed(t, st, s) && !st.dirty && !integrityDue {
		return
	}
	if s.TS == 0 {
		s.TS = now.UnixMilli()
	}
	if st.known && s.TS == st.ts && (s.Value != st.value || s.Quality != st.quality) {
		// Two different states of a point never share a timestamp: history keeps
		// one sample per point and millisecond, and a reader must be able to tell
		// the newer from the older. Two polls (or pushes) in one millisecond are
		// told apart by a millisecond.
		s.TS++
	}
	if s.Quality != point.Invalid || !st.known {
		st.value, st.raw = s.Value, s.Raw
	}
	st.known, st.ts, st.quality, st.written, st.dirty = true, s.TS, s.Quality, now, false
	pt.queue(t, s)
}

// changed is the report-on-change rule: a new quality, or a value that moved by
// more than the deadband (telemetry) or at all (everything else).
func (pt *pointTable) changed(t point.Type, st *pointState, s point.Sample) bool {
	if !st.known || st.quality != s.Quality {
		return true
	}
	if t == point.Telemetry && pt.deadband > 0 {
		return math.Abs(s.Value-st.value) > pt.deadband
	}
	return s.Value != st.value || s.Raw != st.raw
}

// Fail implements protocol.Sink: the point keeps its last value with a bad quality.
func (pt *pointTable) Fail(t point.Type, id point.ID, q point.Quality, _ error) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	pt.setQuality(key{t, id}, q)
}

func (pt *pointTable) setQuality(k key, q point.Quality) {
	st := pt.points[k]
	if st == nil || !st.known || st.quality == q {
		return // nothing in Redis to qualify, or no change
	}
	st.quality = q
	st.written = pt.now()
	pt.queue(k.t, point.Sample{ID: k.id, Value: st.value, Raw: st.raw, TS: st.ts, Quality: q})
}

func (pt *pointTable) queue(t point.Type, s point.Sample) {
	pt.pending[t] = append(pt.pending[t], s)
	select {
	case pt.notify <- struct{}{}:
	default:
	}
}

// markAll gives every point with a value quality q (comm_lost when the link drops).
func (pt *pointTable) markAll(q point.Quality) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	for k := range pt.points {
		pt.setQuality(k, q)
	}
}

// markStale turns good points not read within maxAge stale.
func (pt *pointTable) markStale(maxAge time.Duration) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	now := pt.now()
	for k, st := range pt.points {
		if st.known && st.quality == point.Good && !st.lastRead.IsZero() && now.Sub(st.lastRead) > maxAge {
			pt.setQuality(k, point.Stale)
		}
	}
}

// take returns the pending samples by type and clears them.
func (pt *pointTable) take() map[point.Type][]point.Sample {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if len(pt.pending) == 0 {
		return nil
	}
	out := pt.pending
	pt.pending = map[point.Type][]point.Sample{}
	return out
}

// markDirty makes the next sample of every point be written even if unchanged:
// after a failed write or when Redis lost its data.
func (pt *pointTable) markDirty() {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	for _, st := range pt.points {
		st.dirty = true
	}
}

// restore seeds a point with what Redis already holds, so an unchanged value is not
// re-published after a restart and a dead link can still mark it comm_lost.
func (pt *pointTable) restore(k key, value, raw float64, ts int64, q point.Quality) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if st := pt.points[k]; st != nil {
		*st = pointState{known: true, value: value, raw: raw, ts: ts, quality: q, written: pt.now()}
	}
}
