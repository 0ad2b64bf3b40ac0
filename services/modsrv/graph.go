package modsrv

import (
	"container/heap"
	"errors"
	"math"

	"github.com/voltageems/voltage/shared/expression"
	"github.com/voltageems/voltage/shared/model"
	"github.com/voltageems/voltage/shared/point"
)

// graph is the calculation DAG of one model with the current value of every
// measurement a calculation reads or writes (a slot). It evaluates
// incrementally: a change recomputes only the calculations downstream of it, in
// topological order. It is owned by one goroutine (the router's processor).
type graph struct {
	nodes      []*calcNode // in topological order: nodes[i].rank == i
	slotOf     map[model.PointRef]int
	refs       []model.PointRef
	vals       []float64
	ts         []int64
	q          []point.Quality
	has        []bool
	dependents [][]int32 // slot → ranks of the nodes reading it

	queued []bool
	queue  rankHeap
}

// calcNode is one calculation in the graph.
type calcNode struct {
	c     *model.Calculation
	rank  int
	in    []int
	out   int
	buf   []float64
	err   string // the last evaluation error, "" after a good one
	evals uint64
	fails uint64
	dirty bool // stateful and evaluated since its state was last saved
}

// output is a value the graph computed for an instance measurement.
type output struct {
	ref    model.PointRef
	sample point.Sample
}

func newGraph(m *model.Model) *graph {
	g := &graph{slotOf: map[model.PointRef]int{}}
	slot := func(r model.PointRef) int {
		if s, ok := g.slotOf[r]; ok {
			return s
		}
		s := len(g.refs)
		g.slotOf[r] = s
		g.refs = append(g.refs, r)
		return s
	}
	for i, c := range m.Order {
		n := &calcNode{c: c, rank: i, out: slot(model.PointRef{Instance: c.Instance.ID, Point: c.Point}), buf: make([]float64, len(c.Inputs))}
		for _, in := range c.Inputs {
			n.in = append(n.in, slot(in))
		}
		g.nodes = append(g.nodes, n)
	}
	n := len(g.refs)
	g.vals, g.ts, g.q, g.has = make([]float64, n), make([]int64, n), make([]point.Quality, n), make([]bool, n)
	g.dependents = make([][]int32, n)
	for _, node := range g.nodes {
		for _, s := range node.in {
			g.dependents[s] = append(g.dependents[s], int32(node.rank))
		}
	}
	g.queued = make([]bool, len(g.nodes))
	return g
}

// set records a new sample of a measurement; false when no calculation reads it.
func (g *graph) set(ref model.PointRef, s point.Sample) bool {
	slot, ok := g.slotOf[ref]
	if !ok {
		return false
	}
	g.store(slot, s)
	g.enqueueDependents(slot)
	return len(g.dependents[slot]) > 0
}

func (g *graph) store(slot int, s point.Sample) {
	g.vals[slot], g.ts[slot], g.q[slot], g.has[slot] = s.Value, s.TS, s.Quality, true
}

func (g *graph) enqueueDependents(slot int) {
	for _, r := range g.dependents[slot] {
		g.enqueue(int(r))
	}
}

func (g *graph) enqueue(rank int) {
	if !g.queued[rank] {
		g.queued[rank] = true
		heap.Push(&g.queue, rank)
	}
}

// enqueueAll schedules every calculation (after a resync).
func (g *graph) enqueueAll() {
	for i := range g.nodes {
		g.enqueue(i)
	}
}

// run evaluates every scheduled calculation in topological order, appending the
// outputs to out.
func (g *graph) run(out []output) []output {
	for g.queue.Len() > 0 {
		rank := heap.Pop(&g.queue).(int)
		g.queued[rank] = false
		n := g.nodes[rank]
		s, changed := g.eval(n)
		out = append(out, output{ref: g.refs[n.out], sample: s})
		if changed {
			g.enqueueDependents(n.out)
		}
	}
	return out
}

// eval computes one node. Its quality is the worst of its inputs' (a missing
// input is invalid); only with every input good does the expression run, so a
// stateful function never integrates a value nobody vouches for. A failed run
// (division by zero, a result that is not finite) is invalid. A not-good output
// keeps the last value, flagged, never a silent zero.
func (g *graph) eval(n *calcNode) (point.Sample, bool) {
	var ts int64
	q := point.Good
	for i, s := range n.in {
		if !g.has[s] {
			q = worst(q, point.Invalid)
			continue
		}
		q = worst(q, g.q[s])
		ts = max(ts, g.ts[s])
		n.buf[i] = g.vals[s]
	}
	prev := point.Sample{Value: g.vals[n.out], TS: g.ts[n.out], Quality: g.q[n.out]}
	if ts == 0 {
		ts = prev.TS
	}
	s := point.Sample{Value: prev.Value, TS: ts, Quality: q}
	if q == point.Good {
		n.evals++
		v, err := n.c.Program.Eval(ts, n.buf)
		if n.c.Program.Stateful() {
			n.dirty = true
		}
		switch {
		case err != nil:
			n.fails++
			n.err = err.Error()
			if errors.Is(err, expression.ErrNotFinite) {
				n.err = "result is not a finite number (a division by zero?)"
			}
			s.Quality = point.Invalid
		default:
			n.err = ""
			s.Value = v
		}
	} else {
		n.err = "input not good: " + q.String()
	}
	if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
		s.Value = 0
	}
	// A newer timestamp counts as a change: an integrator downstream must see time
	// pass even while the value holds.
	changed := !g.has[n.out] || s.Value != prev.Value || s.Quality != prev.Quality || s.TS != prev.TS
	g.store(n.out, s)
	return s, changed
}

// worst orders qualities by how little they can be trusted.
func worst(a, b point.Quality) point.Quality {
	rank := func(q point.Quality) int {
		switch q {
		case point.Good:
			return 0
		case point.Stale:
			return 1
		case point.CommLost:
			return 2
		}
		return 3 // invalid, or anything unknown
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// rankHeap is a min-heap of node ranks.
type rankHeap []int

func (h rankHeap) Len() int           { return len(h) }
func (h rankHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h rankHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *rankHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *rankHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
