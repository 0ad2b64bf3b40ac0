package modbus

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/voltageems/voltage/shared/point"
)

// reg is a telemetry point read with function 3 from slave 1.
func reg(id point.ID, addr, width uint16) PlanPoint {
	return PlanPoint{Key: PointKey{point.Telemetry, id}, Slave: 1, Function: 3, Address: addr, Registers: width}
}

// span is what a test expects of one request: address and count.
type span struct{ Address, Count uint16 }

func spans(reqs []Request) []span {
	out := make([]span, len(reqs))
	for i, r := range reqs {
		out[i] = span{r.Address, r.Count}
	}
	return out
}

func mustPlan(t *testing.T, points []PlanPoint, opt PlanOptions) []Request {
	t.Helper()
	reqs, err := Plan(points, opt)
	if err != nil {
		t.Fatalf("Plan(%+v): %v", opt, err)
	}
	checkPlan(t, points, opt, reqs)
	return reqs
}

func TestPlanGaps(t *testing.T) {
	// Gaps between the blocks: 0–3 →7→ 10 →19→ 30–35 →25→ 60.
	points := []PlanPoint{reg(1, 0, 1), reg(2, 1, 2), reg(3, 10, 1), reg(4, 30, 1), reg(5, 31, 4), reg(6, 60, 1)}
	for _, tc := range []struct {
		maxGap int
		want   []span
	}{
		{-1, []span{{0, 3}, {10, 1}, {30, 5}, {60, 1}}},
		{0, []span{{0, 11}, {30, 5}, {60, 1}}}, // the default, 10
		{6, []span{{0, 3}, {10, 1}, {30, 5}, {60, 1}}},
		{7, []span{{0, 11}, {30, 5}, {60, 1}}},
		{18, []span{{0, 11}, {30, 5}, {60, 1}}},
		{19, []span{{0, 35}, {60, 1}}},
		{25, []span{{0, 61}}},
	} {
		t.Run(fmt.Sprintf("MaxGap=%d", tc.maxGap), func(t *testing.T) {
			got := spans(mustPlan(t, points, PlanOptions{MaxGap: tc.maxGap}))
			if !slices.Equal(got, tc.want) {
				t.Errorf("requests %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPlanSplitsAtMaxRegisters(t *testing.T) {
	var points []PlanPoint
	for a := range uint16(200) {
		points = append(points, reg(point.ID(a), a, 1))
	}
	if got, want := spans(mustPlan(t, points, PlanOptions{})), []span{{0, 125}, {125, 75}}; !slices.Equal(got, want) {
		t.Errorf("default max: requests %v, want %v", got, want)
	}
	if got, want := spans(mustPlan(t, points, PlanOptions{MaxRegisters: 60})), []span{{0, 60}, {60, 60}, {120, 60}, {180, 20}}; !slices.Equal(got, want) {
		t.Errorf("max 60: requests %v, want %v", got, want)
	}
}

func TestPlanBitsUseMaxBits(t *testing.T) {
	var coils, holding []PlanPoint
	for a := range uint16(2500) {
		coils = append(coils, PlanPoint{Key: PointKey{point.Signal, point.ID(a)}, Slave: 1, Function: 1, Address: a, Registers: 1})
		holding = append(holding, reg(point.ID(a), a, 1))
	}
	if got, want := spans(mustPlan(t, coils, PlanOptions{})), []span{{0, 2000}, {2000, 500}}; !slices.Equal(got, want) {
		t.Errorf("coils: requests %v, want %v", got, want)
	}
	if got, want := spans(mustPlan(t, coils, PlanOptions{MaxBits: 1000, MaxRegisters: 10})), []span{{0, 1000}, {1000, 1000}, {2000, 500}}; !slices.Equal(got, want) {
		t.Errorf("coils, max bits 1000: requests %v, want %v", got, want)
	}
	if got := mustPlan(t, holding, PlanOptions{MaxBits: 2000}); len(got) != 20 {
		t.Errorf("2500 registers in %d requests, want 20 (MaxBits must not apply to registers)", len(got))
	}
}

func TestPlanPerPoint(t *testing.T) {
	points := []PlanPoint{reg(3, 10, 2), reg(1, 0, 1), reg(2, 1, 4), reg(4, 1, 1)}
	got := mustPlan(t, points, PlanOptions{PerPoint: true, MaxGap: 100})
	want := []span{{0, 1}, {1, 1}, {1, 4}, {10, 2}}
	if !slices.Equal(spans(got), want) {
		t.Errorf("requests %v, want %v", spans(got), want)
	}
	for _, r := range got {
		if len(r.Points) != 1 {
			t.Errorf("request at %d carries %d points, want 1", r.Address, len(r.Points))
		}
	}
}

func TestPlanOverlappingPoints(t *testing.T) {
	// Three bit points of register 5, an int32 over 5–6 and a uint16 at 6.
	points := []PlanPoint{reg(1, 5, 1), reg(2, 5, 1), reg(3, 5, 1), reg(4, 5, 2), reg(5, 6, 1)}
	got := mustPlan(t, points, PlanOptions{MaxGap: -1})
	if want := []span{{5, 2}}; !slices.Equal(spans(got), want) {
		t.Fatalf("requests %v, want %v", spans(got), want)
	}
	offsets := map[point.ID]int{}
	for _, p := range got[0].Points {
		offsets[p.Key.ID] = got[0].Offset(p)
	}
	if want := map[point.ID]int{1: 0, 2: 0, 3: 0, 4: 0, 5: 1}; !reflect.DeepEqual(offsets, want) {
		t.Errorf("offsets %v, want %v", offsets, want)
	}

	// A wide point ends after a later narrow one: the block must end with the wide one.
	got = mustPlan(t, []PlanPoint{reg(1, 0, 4), reg(2, 1, 1), reg(3, 5, 1)}, PlanOptions{MaxGap: -1})
	if want := []span{{0, 4}, {5, 1}}; !slices.Equal(spans(got), want) {
		t.Errorf("requests %v, want %v", spans(got), want)
	}
}

func TestPlanWidePointAtEndOfBlock(t *testing.T) {
	opt := PlanOptions{MaxRegisters: 10}
	if got, want := spans(mustPlan(t, []PlanPoint{reg(1, 0, 1), reg(2, 6, 4)}, opt)), []span{{0, 10}}; !slices.Equal(got, want) {
		t.Errorf("fits exactly: requests %v, want %v", got, want)
	}
	if got, want := spans(mustPlan(t, []PlanPoint{reg(1, 0, 1), reg(2, 7, 4)}, opt)), []span{{0, 1}, {7, 4}}; !slices.Equal(got, want) {
		t.Errorf("one register too many: requests %v, want %v", got, want)
	}
	// A block already at the max, then a point overlapping its end.
	got := spans(mustPlan(t, []PlanPoint{reg(1, 0, 1), reg(2, 6, 4), reg(3, 9, 2)}, opt))
	if want := []span{{0, 10}, {9, 2}}; !slices.Equal(got, want) {
		t.Errorf("overlap past the max: requests %v, want %v", got, want)
	}
}

func TestPlanGroupsAndOrder(t *testing.T) {
	points := []PlanPoint{
		{Key: PointKey{point.Telemetry, 1}, Slave: 2, Function: 3, Address: 0, Registers: 2},
		{Key: PointKey{point.Telemetry, 2}, Slave: 1, Function: 4, Address: 0, Registers: 2},
		{Key: PointKey{point.Signal, 1}, Slave: 1, Function: 2, Address: 3, Registers: 1},
		{Key: PointKey{point.Telemetry, 3}, Slave: 1, Function: 3, Address: 100, Registers: 1},
		{Key: PointKey{point.Telemetry, 4}, Slave: 1, Function: 3, Address: 1, Registers: 1},
		{Key: PointKey{point.Signal, 2}, Slave: 1, Function: 2, Address: 0, Registers: 1},
		{Key: PointKey{point.Control, 1}, Slave: 1, Function: 1, Address: 0, Registers: 1},
	}
	got := mustPlan(t, points, PlanOptions{})
	var order []string
	for _, r := range got {
		order = append(order, fmt.Sprintf("%d/%d/%d+%d", r.Slave, r.Function, r.Address, r.Count))
	}
	want := []string{"1/1/0+1", "1/2/0+4", "1/3/1+1", "1/3/100+1", "1/4/0+2", "2/3/0+2"}
	if !slices.Equal(order, want) {
		t.Errorf("requests %v, want %v", order, want)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		shuffled := slices.Clone(points)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if again := mustPlan(t, shuffled, PlanOptions{}); !reflect.DeepEqual(again, got) {
			t.Fatalf("plan depends on input order:\n%+v\n%+v", again, got)
		}
	}
	if got := mustPlan(t, nil, PlanOptions{}); len(got) != 0 {
		t.Errorf("no points gave %d requests", len(got))
	}
	if got, want := spans(mustPlan(t, []PlanPoint{reg(1, 65535, 1), reg(2, 65532, 2)}, PlanOptions{})), []span{{65532, 4}}; !slices.Equal(got, want) {
		t.Errorf("top of the address space: requests %v, want %v", got, want)
	}
}

func TestPlanRejectsImpossible(t *testing.T) {
	bit := func(fc uint8, width uint16) PlanPoint {
		return PlanPoint{Key: PointKey{point.Signal, 7}, Slave: 1, Function: fc, Address: 10, Registers: width}
	}
	for _, tc := range []struct {
		name   string
		p      PlanPoint
		opt    PlanOptions
		reason string
	}{
		{"function 0", bit(0, 1), PlanOptions{}, "function 0"},
		{"function 5", bit(5, 1), PlanOptions{}, "function 5"},
		{"function 16", PlanPoint{Key: PointKey{point.Adjustment, 7}, Slave: 1, Function: 16, Registers: 1}, PlanOptions{}, "function 16"},
		{"zero width", reg(7, 0, 0), PlanOptions{}, "width 0"},
		{"wide bit", bit(1, 2), PlanOptions{}, "width 2"},
		{"wider than the protocol", reg(7, 0, 126), PlanOptions{}, "126"},
		{"wider than the device", reg(7, 0, 4), PlanOptions{MaxRegisters: 2}, "width 4"},
		{"past 65535", reg(7, 65534, 4), PlanOptions{}, "65535"},
		{"max registers too big", reg(7, 0, 1), PlanOptions{MaxRegisters: 126}, "max registers 126"},
		{"max registers negative", reg(7, 0, 1), PlanOptions{MaxRegisters: -1}, "max registers -1"},
		{"max bits too big", bit(1, 1), PlanOptions{MaxBits: 2001}, "max bits 2001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			points := []PlanPoint{reg(1, 0, 1), tc.p}
			reqs, err := Plan(points, tc.opt)
			if err == nil {
				t.Fatalf("Plan succeeded with %+v", reqs)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q does not mention %q", err, tc.reason)
			}
			if !strings.HasPrefix(tc.reason, "max") && !strings.Contains(err.Error(), tc.p.Key.String()) {
				t.Errorf("error %q does not name the point %s", err, tc.p.Key)
			}
		})
	}
}

// TestPlanProperties plans random point sets with random options and checks the
// invariants of checkPlan on each.
func TestPlanProperties(t *testing.T) {
	for seed := range uint64(500) {
		rng := rand.New(rand.NewPCG(seed, 0x5eed))
		opt := PlanOptions{
			MaxGap:       []int{-5, -1, 0, 1, 3, 10, 40}[rng.IntN(7)],
			MaxRegisters: []int{0, 1, 4, 7, 16, 125}[rng.IntN(6)],
			MaxBits:      []int{0, 1, 8, 13, 2000}[rng.IntN(5)],
			PerPoint:     rng.IntN(10) == 0,
		}
		maxRegs := orDefault(opt.MaxRegisters, 125)
		base := uint16(rng.IntN(2)) * (65536 - 120) // sometimes up to the top of the address space
		points := make([]PlanPoint, rng.IntN(80))
		for i := range points {
			p := PlanPoint{
				Key:      PointKey{point.Types[rng.IntN(4)], point.ID(rng.IntN(1000))},
				Slave:    uint8(1 + rng.IntN(3)),
				Function: uint8(1 + rng.IntN(4)),
				Address:  base + uint16(rng.IntN(120)),
			}
			p.Registers = 1
			if p.Function >= 3 {
				w := min([]int{1, 2, 4, 1 + rng.IntN(maxRegs)}[rng.IntN(4)], maxRegs, 1<<16-int(p.Address))
				p.Registers = uint16(w)
			}
			points[i] = p
		}
		reqs, err := Plan(points, opt)
		if err != nil {
			t.Fatalf("seed %d: Plan(%+v): %v", seed, opt, err)
		}
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) { checkPlan(t, points, opt, reqs) })
	}
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// checkPlan asserts what every plan must satisfy: each point is listed by exactly one
// request, which has its slave and function and covers all of its registers; no
// request exceeds its maximum or reads anything beyond its last point; requests are
// in order; and (unless per point) a request ends only where the next point could not
// have joined it.
func checkPlan(t *testing.T, points []PlanPoint, opt PlanOptions, reqs []Request) {
	t.Helper()
	gap := opt.MaxGap
	if gap == 0 {
		gap = 10
	}
	gap = max(gap, 0)
	maxOf := func(fc uint8) int {
		if fc <= 2 {
			return orDefault(opt.MaxBits, 2000)
		}
		return orDefault(opt.MaxRegisters, 125)
	}
	listed := map[PlanPoint]int{}
	for i, r := range reqs {
		if r.Count == 0 || int(r.Count) > maxOf(r.Function) || int(r.Address)+int(r.Count) > 1<<16 {
			t.Errorf("request %d (%+v): count %d outside 1..%d or past 65535", i, r, r.Count, maxOf(r.Function))
		}
		if len(r.Points) == 0 || r.Points[0].Address != r.Address {
			t.Errorf("request %d (%+v) does not start at its first point", i, r)
			continue
		}
		if opt.PerPoint && len(r.Points) != 1 {
			t.Errorf("request %d carries %d points in per-point mode", i, len(r.Points))
		}
		end := 0
		for j, p := range r.Points {
			listed[p]++
			if p.Slave != r.Slave || p.Function != r.Function {
				t.Errorf("request %d (slave %d fc %d) lists point %+v", i, r.Slave, r.Function, p)
			}
			if off := r.Offset(p); off < 0 || off+int(p.Registers) > int(r.Count) {
				t.Errorf("request %d (%d+%d) does not cover point %+v", i, r.Address, r.Count, p)
			}
			if j > 0 && p.Address < r.Points[j-1].Address {
				t.Errorf("request %d: points out of order: %+v", i, r.Points)
			}
			end = max(end, int(p.Address)+int(p.Registers))
		}
		if end != int(r.Address)+int(r.Count) {
			t.Errorf("request %d (%d+%d) reads past its last point (end %d)", i, r.Address, r.Count, end)
		}
		if i == 0 {
			continue
		}
		prev := reqs[i-1]
		if c := cmpKey(prev, r); c > 0 {
			t.Errorf("requests %d and %d out of order: %+v, %+v", i-1, i, prev, r)
		}
		if !opt.PerPoint && prev.Slave == r.Slave && prev.Function == r.Function {
			prevEnd := int(prev.Address) + int(prev.Count)
			first := r.Points[0]
			merged := max(prevEnd, int(first.Address)+int(first.Registers)) - int(prev.Address)
			if int(first.Address)-prevEnd <= gap && merged <= maxOf(r.Function) {
				t.Errorf("requests %d and %d could have been one (gap %d, span %d)", i-1, i, int(first.Address)-prevEnd, merged)
			}
		}
	}
	want := map[PlanPoint]int{}
	for _, p := range points {
		want[p]++
	}
	if !reflect.DeepEqual(listed, want) {
		t.Errorf("points listed %v times, want %v", listed, want)
	}
}

func cmpKey(a, b Request) int {
	for _, c := range [][2]int{{int(a.Slave), int(b.Slave)}, {int(a.Function), int(b.Function)}, {int(a.Address), int(b.Address)}} {
		if c[0] != c[1] {
			return c[0] - c[1]
		}
	}
	return 0
}
