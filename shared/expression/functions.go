package expression

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// function is one entry of the library.
type function struct {
	name    string
	doc     string
	minArgs int
	maxArgs int // -1: any number
	// aggregate functions also take ("selector", "measurement"), expanded at compile time.
	aggregate bool
	// stateful functions get a state slot, passed as a hidden first argument.
	stateful bool
	// literalArgs are argument indexes that must be number literals (a window size).
	literalArgs []int
	pure        func(args []float64) (float64, error)
	state       func(s *slotState, now int64, args []float64) (float64, error)
}

func (f *function) arity() string {
	switch {
	case f.maxArgs < 0:
		return fmt.Sprintf("at least %d arguments", f.minArgs)
	case f.minArgs == f.maxArgs:
		return fmt.Sprintf("%d arguments", f.minArgs)
	}
	return fmt.Sprintf("%d to %d arguments", f.minArgs, f.maxArgs)
}

// Function describes a library function for documentation and APIs.
type Function struct {
	Name string `json:"name"`
	Doc  string `json:"doc"`
}

// Functions lists the library.
func Functions() []Function {
	out := make([]Function, len(library))
	for i, f := range library {
		out[i] = Function{Name: f.name, Doc: f.doc}
	}
	return out
}

// FunctionNames is the list of library function names, for error messages.
func FunctionNames() string {
	names := make([]string, len(library))
	for i, f := range library {
		names[i] = f.name
	}
	return strings.Join(names, ", ")
}

var functionByName = map[string]*function{}

func init() {
	for _, f := range library {
		functionByName[f.name] = f
	}
}

func math1(name, doc string, fn func(float64) float64) *function {
	return &function{name: name, doc: doc, minArgs: 1, maxArgs: 1,
		pure: func(a []float64) (float64, error) { return fn(a[0]), nil }}
}

// library is every function an expression may call.
var library = []*function{
	math1("abs", "abs(x): absolute value", math.Abs),
	math1("sqrt", "sqrt(x): square root", math.Sqrt),
	math1("exp", "exp(x): e to the power x", math.Exp),
	math1("ln", "ln(x): natural logarithm", math.Log),
	math1("log10", "log10(x): decimal logarithm", math.Log10),
	math1("floor", "floor(x): largest integer ≤ x", math.Floor),
	math1("ceil", "ceil(x): smallest integer ≥ x", math.Ceil),
	{name: "round", doc: "round(x[, digits]): x rounded half away from zero to digits decimals (default 0)", minArgs: 1, maxArgs: 2,
		pure: func(a []float64) (float64, error) {
			if len(a) == 1 {
				return math.Round(a[0]), nil
			}
			p := math.Pow(10, math.Round(a[1]))
			return math.Round(a[0]*p) / p, nil
		}},
	{name: "pow", doc: "pow(x, y): x to the power y", minArgs: 2, maxArgs: 2,
		pure: func(a []float64) (float64, error) { return math.Pow(a[0], a[1]), nil }},
	{name: "min", doc: `min(a, b, ...) or min("selector", "measurement"): smallest value`, minArgs: 1, maxArgs: -1, aggregate: true,
		pure: func(a []float64) (float64, error) { return reduce(a, math.Min) }},
	{name: "max", doc: `max(a, b, ...) or max("selector", "measurement"): largest value`, minArgs: 1, maxArgs: -1, aggregate: true,
		pure: func(a []float64) (float64, error) { return reduce(a, math.Max) }},
	{name: "sum", doc: `sum(a, b, ...) or sum("selector", "measurement"): total`, minArgs: 1, maxArgs: -1, aggregate: true,
		pure: func(a []float64) (float64, error) {
			s := 0.0
			for _, x := range a {
				s += x
			}
			return s, nil
		}},
	{name: "avg", doc: `avg(a, b, ...) or avg("selector", "measurement"): mean`, minArgs: 1, maxArgs: -1, aggregate: true,
		pure: func(a []float64) (float64, error) {
			if len(a) == 0 {
				return math.NaN(), errors.New("avg of nothing")
			}
			s := 0.0
			for _, x := range a {
				s += x
			}
			return s / float64(len(a)), nil
		}},
	{name: "clamp", doc: "clamp(x, lo, hi): x limited to [lo, hi]", minArgs: 3, maxArgs: 3,
		pure: func(a []float64) (float64, error) {
			if a[1] > a[2] {
				return math.NaN(), fmt.Errorf("clamp: lower bound %g above upper bound %g", a[1], a[2])
			}
			return math.Min(math.Max(a[0], a[1]), a[2]), nil
		}},
	{name: "integrate", doc: "integrate(x): time integral of x in x·hours (kW → kWh), trapezoidal; gaps over 5 minutes are not bridged", minArgs: 1, maxArgs: 1, stateful: true,
		state: integrate},
	{name: "moving_avg", doc: "moving_avg(x, seconds): mean of the samples of the last seconds (a number written in the expression)", minArgs: 2, maxArgs: 2, stateful: true,
		literalArgs: []int{1}, state: movingAvg},
	{name: "rate", doc: "rate(x): change of x per second since the previous evaluation (invalid on the first)", minArgs: 1, maxArgs: 1, stateful: true,
		state: rate},
	{name: "deadband", doc: "deadband(x, band): the last reported x, updated only when x moves by band or more", minArgs: 2, maxArgs: 2, stateful: true,
		state: deadband},
}

func reduce(a []float64, f func(x, y float64) float64) (float64, error) {
	if len(a) == 0 {
		return math.NaN(), errors.New("no values")
	}
	r := a[0]
	for _, x := range a[1:] {
		r = f(r, x)
	}
	return r, nil
}

// callState is what the stateful functions of one program share: the evaluation
// time and one slot per call site.
type callState struct {
	now   int64
	slots []*slotState
}

// bind adapts a library function to expr's calling convention.
func (cs *callState) bind(f *function) func(params ...any) (any, error) {
	return func(params ...any) (any, error) {
		if f.stateful {
			slot, ok := params[0].(int)
			if !ok || slot < 0 || slot >= len(cs.slots) {
				return nil, fmt.Errorf("%s: internal state slot missing", f.name)
			}
			args, err := floats(f.name, params[1:])
			if err != nil {
				return nil, err
			}
			return f.state(cs.slots[slot], cs.now, args)
		}
		args, err := floats(f.name, params)
		if err != nil {
			return nil, err
		}
		return f.pure(args)
	}
}

func floats(name string, params []any) ([]float64, error) {
	out := make([]float64, len(params))
	for i, p := range params {
		v, err := toFloat(p)
		if err != nil {
			return nil, fmt.Errorf("%s: argument %d: %w", name, i+1, err)
		}
		out[i] = v
	}
	return out, nil
}
