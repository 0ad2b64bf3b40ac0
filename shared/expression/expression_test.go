package expression

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

// site is a resolver over a fixed set of instances.
type site struct {
	measurements map[string][]string // instance → measurement names
	properties   map[string]map[string]any
	products     map[string]string // instance → product
}

func testSite() *site {
	return &site{
		measurements: map[string][]string{
			"pv1": {"active_power", "dc_voltage"}, "pv2": {"active_power", "dc_voltage"},
			"station": {"pv_power", "energy"}, "meter": {"active_power"},
		},
		properties: map[string]map[string]any{"pv1": {"rated_power": 100.0, "model": "X1"}, "station": {"islanded": false}},
		products:   map[string]string{"pv1": "pv_inverter", "pv2": "pv_inverter", "station": "station", "meter": "meter"},
	}
}

func (s *site) Lookup(inst, name string) (Ref, any, bool, error) {
	ms, ok := s.measurements[inst]
	if !ok {
		return Ref{}, nil, false, errors.New("no such instance")
	}
	for _, m := range ms {
		if m == name {
			return Ref{inst, name}, nil, false, nil
		}
	}
	if v, ok := s.properties[inst][name]; ok {
		return Ref{}, v, true, nil
	}
	return Ref{}, nil, false, fmt.Errorf("no measurement or property %q", name)
}

func (s *site) Select(sel, name string) ([]Ref, error) {
	prod, ok := strings.CutPrefix(sel, "product:")
	if !ok {
		return nil, fmt.Errorf("bad selector %q", sel)
	}
	var out []Ref
	for _, inst := range []string{"meter", "pv1", "pv2", "station"} {
		if s.products[inst] == prod {
			out = append(out, Ref{inst, name})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("matches no instance")
	}
	return out, nil
}

func mustCompile(t *testing.T, src string) *Program {
	t.Helper()
	p, err := Compile(src, testSite())
	if err != nil {
		t.Fatalf("compile %q: %v", src, err)
	}
	return p
}

func TestEvalArithmeticPropertiesAndAggregates(t *testing.T) {
	cases := []struct {
		src    string
		inputs []float64
		want   float64
	}{
		{"pv1.active_power + pv2.active_power", []float64{10, 20}, 30},
		{`sum("product:pv_inverter", "active_power") - meter.active_power`, []float64{10, 20, 5}, 25},
		{`avg("product:pv_inverter", "active_power")`, []float64{10, 20}, 15},
		{`max("product:pv_inverter", "dc_voltage")`, []float64{600, 650}, 650},
		{"min(pv1.active_power, 3, 7)", []float64{5}, 3},
		{"pv1.active_power / pv1.rated_power * 100", []float64{25}, 25},
		{"clamp(pv1.active_power, 0, 50)", []float64{80}, 50},
		{"pv1.active_power > 10 ? 1.5 : -1", []float64{11}, 1.5},
		{"pv1.active_power > 10", []float64{9}, 0},
		{"station.islanded ? 0 : round(sqrt(pv1.active_power), 1)", []float64{2}, 1.4},
		{"abs(pv1.active_power) + pow(2, 3) + floor(1.7) + ceil(1.2)", []float64{-1}, 1 + 8 + 1 + 2},
		{"if pv1.active_power < 0 { 0 } else { pv1.active_power }", []float64{-4}, 0},
		{"let p = pv1.active_power; p * p", []float64{3}, 9},
		{"pv1.active_power ?? 2", []float64{3}, 3},
	}
	for _, c := range cases {
		p := mustCompile(t, c.src)
		if len(p.Inputs()) != len(c.inputs) {
			t.Errorf("%q: inputs %v, want %d", c.src, p.Inputs(), len(c.inputs))
			continue
		}
		got, err := p.Eval(1000, c.inputs)
		if err != nil || math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%q = %v, %v; want %v", c.src, got, err, c.want)
		}
	}
}

func TestInputsAreDeduplicatedInOrder(t *testing.T) {
	p := mustCompile(t, "meter.active_power + pv1.active_power * meter.active_power")
	want := []Ref{{"meter", "active_power"}, {"pv1", "active_power"}}
	if fmt.Sprint(p.Inputs()) != fmt.Sprint(want) {
		t.Fatalf("inputs %v, want %v", p.Inputs(), want)
	}
}

func TestCompileErrorsArePositioned(t *testing.T) {
	cases := []struct{ src, want string }{
		{"pv1.active_power +", "1:18: unexpected token EOF"},
		{"foo(pv1.active_power)", "1:1: unknown function foo"},
		{"pv1.active_power + len(1)", "1:20: unknown function len"},
		{"pv9.active_power", "1:1: pv9.active_power: no such instance"},
		{"pv1.nothing * 2", "pv1.nothing: no measurement or property"},
		{"pv1.active_power +\n  bogus", "2:3: unknown name bogus"},
		{`sum("product:none", "active_power")`, "matches no instance"},
		{"clamp(pv1.active_power, 1)", "clamp takes 3 arguments; 2 given"},
		{"moving_avg(pv1.active_power, meter.active_power)", "must be a number written in the expression"},
		{"_0 + 1", "reserved"},
		{"pv1.model", "gives a string"},
		{"", "empty expression"},
		{"pv1.active_power ?", ""},
	}
	for _, c := range cases {
		_, err := Compile(c.src, testSite())
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%q: error %v, want *Error", c.src, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %q, want it to contain %q", c.src, err, c.want)
		}
	}
}

func TestRuntimeErrors(t *testing.T) {
	p := mustCompile(t, "pv1.active_power / meter.active_power")
	if _, err := p.Eval(0, []float64{1, 0}); !errors.Is(err, ErrNotFinite) {
		t.Fatalf("division by zero: %v, want ErrNotFinite", err)
	}
	if v, err := p.Eval(0, []float64{1, 2}); err != nil || v != 0.5 {
		t.Fatalf("after a division by zero: %v, %v", v, err)
	}
	p = mustCompile(t, "ln(pv1.active_power)")
	if _, err := p.Eval(0, []float64{-1}); !errors.Is(err, ErrNotFinite) {
		t.Fatalf("ln(-1): %v", err)
	}
	if _, err := p.Eval(0, nil); err == nil {
		t.Fatal("wrong number of inputs accepted")
	}
}

func TestIntegrateAndRestore(t *testing.T) {
	p := mustCompile(t, "integrate(pv1.active_power)")
	if !p.Stateful() {
		t.Fatal("integrate is not stateful")
	}
	// 60 kW for an hour in one-minute steps is 60 kWh.
	var v float64
	for i := int64(0); i <= 60; i++ {
		var err error
		if v, err = p.Eval(i*60_000, []float64{60}); err != nil {
			t.Fatal(err)
		}
	}
	if math.Abs(v-60) > 1e-9 {
		t.Fatalf("energy %v kWh, want 60", v)
	}
	saved, err := p.State()
	if err != nil {
		t.Fatal(err)
	}
	q := mustCompile(t, "integrate(pv1.active_power)")
	if err := q.Restore(saved); err != nil {
		t.Fatal(err)
	}
	if v, _ = q.Eval(61*60_000, []float64{60}); math.Abs(v-61) > 1e-9 {
		t.Fatalf("after restore: %v kWh, want 61", v)
	}
	// A gap longer than MaxIntegrationGap is not bridged.
	if v, _ = q.Eval(61*60_000+MaxIntegrationGap+1, []float64{60}); math.Abs(v-61) > 1e-9 {
		t.Fatalf("after a gap: %v kWh, want 61", v)
	}
	other := mustCompile(t, "rate(pv1.active_power)")
	if err := other.Restore(saved); err == nil {
		t.Fatal("state of integrate restored into rate")
	}
	if err := q.Restore([]byte("{")); err == nil {
		t.Fatal("broken state restored")
	}
}

func TestMovingAverageRateDeadband(t *testing.T) {
	ma := mustCompile(t, "moving_avg(pv1.active_power, 10)")
	for i, x := range []float64{10, 20, 30} {
		v, _ := ma.Eval(int64(i)*1000, []float64{x})
		if want := []float64{10, 15, 20}[i]; v != want {
			t.Fatalf("moving_avg step %d = %v, want %v", i, v, want)
		}
	}
	if v, _ := ma.Eval(11_500, []float64{40}); v != 35 { // 10 and 20 fell out of the window
		t.Fatalf("moving_avg after the window = %v, want 35", v)
	}

	r := mustCompile(t, "rate(pv1.active_power)")
	if _, err := r.Eval(0, []float64{5}); !errors.Is(err, ErrNoPrevious) {
		t.Fatalf("first rate: %v", err)
	}
	if v, err := r.Eval(2000, []float64{9}); err != nil || v != 2 {
		t.Fatalf("rate = %v, %v; want 2/s", v, err)
	}

	d := mustCompile(t, "deadband(pv1.active_power, 1)")
	for i, c := range []struct{ x, want float64 }{{10, 10}, {10.5, 10}, {11.2, 11.2}, {10.3, 11.2}, {9.9, 9.9}} {
		if v, _ := d.Eval(int64(i), []float64{c.x}); v != c.want {
			t.Fatalf("deadband(%v) = %v, want %v", c.x, v, c.want)
		}
	}
}

func TestFunctionsAreDocumented(t *testing.T) {
	for _, f := range Functions() {
		if !strings.HasPrefix(f.Doc, f.Name+"(") {
			t.Errorf("function %s: doc %q does not start with its call", f.Name, f.Doc)
		}
	}
}
