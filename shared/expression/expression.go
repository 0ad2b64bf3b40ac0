// Package expression is the calculation language of VoltageEMS: expr-lang/expr
// expressions over instance measurements and properties, compiled once, with a
// function library for energy systems (math, aggregates over a set of instances,
// integrate, moving average, rate of change, clamp, deadband, conditionals).
// modsrv's calculations use it, and so can rules and alarms.
//
// A reference is written instance.name: a measurement of the instance (a live
// input) or one of its properties (a constant folded in at compile time).
// Aggregates take a selector string and a measurement name,
// sum("product:pv_inverter", "active_power"), and are expanded at compile time
// into the matching instances' measurements, so every input of a program is known
// before it runs: Inputs lists them, and the caller feeds their values to Eval in
// that order.
//
// Stateful functions (integrate, moving_avg, rate, deadband) keep their state in
// the Program; State and Restore serialise it so a caller can persist it and a
// counter continues after a restart.
package expression

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

// MaxLength bounds the source of one expression.
const MaxLength = 16 << 10

// maxNodes bounds the syntax tree after aggregates are expanded.
const maxNodes = 100_000

// Ref is a live input of a program: a measurement of an instance, both by name.
type Ref struct {
	Instance string
	Point    string
}

func (r Ref) String() string { return r.Instance + "." + r.Point }

// Resolver tells the compiler what the names in an expression mean.
type Resolver interface {
	// Lookup resolves instance.name. A measurement is returned as a Ref; a property
	// as its constant value (float64, int, bool or string) with isConst true.
	// An unknown instance or name is an error saying what is wrong.
	Lookup(instance, name string) (ref Ref, constant any, isConst bool, err error)
	// Select returns the measurement name of every instance the selector matches,
	// in a stable order. A selector matching nothing is an error.
	Select(selector, name string) ([]Ref, error)
}

// Error is a compile error at a place in the expression (1-based line and column,
// counted in characters).
type Error struct {
	Line, Column int
	Msg          string
}

func (e *Error) Error() string { return fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Msg) }

// ErrNotFinite is returned by Eval when the result is NaN or infinite (a division
// by zero, the logarithm of a negative number, ...).
var ErrNotFinite = errors.New("result is not a finite number")

// Program is a compiled expression. It is not safe for concurrent use: it owns its
// VM, its input environment and the state of its stateful functions.
type Program struct {
	src       string
	prog      *vm.Program
	inputs    []Ref
	names     []string // env name of each input
	env       map[string]any
	functions []string // library functions the expression calls, sorted
	calls     *callState
	machine   vm.VM
}

// Compile compiles src, resolving its names with r.
func Compile(src string, r Resolver) (p *Program, err error) {
	if len(src) > MaxLength {
		return nil, &Error{Line: 1, Column: 1, Msg: fmt.Sprintf("expression is %d bytes long; at most %d", len(src), MaxLength)}
	}
	if strings.TrimSpace(src) == "" {
		return nil, &Error{Line: 1, Column: 1, Msg: "empty expression"}
	}
	defer func() { // expr is third-party code: a panic on odd input must not crash a load or a reload
		if v := recover(); v != nil {
			p, err = nil, &Error{Line: 1, Column: 1, Msg: fmt.Sprintf("cannot compile: %v", v)}
		}
	}()
	p = &Program{src: src, env: map[string]any{}, calls: &callState{}}
	cfg := conf.CreateNew()
	cfg.MaxNodes = maxNodes
	expr.DisableAllBuiltins()(cfg)
	for name := range cfg.Disabled {
		delete(cfg.Builtins, name)
	}
	for _, f := range library {
		expr.Function(f.name, p.calls.bind(f))(cfg)
	}

	tree, err := parser.ParseWithConfig(src, cfg)
	if err != nil {
		return nil, toError(src, err)
	}
	c := &compilation{src: src, r: r, p: p, refs: map[Ref]string{}, used: map[string]bool{}}
	ast.Walk(&tree.Node, c)
	if c.err != nil {
		return nil, c.err
	}
	for f := range c.used {
		p.functions = append(p.functions, f)
	}
	slices.Sort(p.functions)

	cfg.WithEnv(p.env)
	cfg.Check()
	typ, err := checker.Check(tree, cfg)
	if err != nil {
		return nil, toError(src, err)
	}
	if typ != nil {
		switch typ.Kind() {
		case reflect.String, reflect.Slice, reflect.Array, reflect.Map, reflect.Struct:
			return nil, &Error{Line: 1, Column: 1, Msg: fmt.Sprintf("the expression gives a %s, not a number", typ)}
		}
	}
	if err := optimizer.Optimize(&tree.Node, cfg); err != nil {
		return nil, toError(src, err)
	}
	prog, err := compiler.Compile(tree, cfg)
	if err != nil {
		return nil, toError(src, err)
	}
	p.prog = prog
	return p, nil
}

// Source is the expression as written.
func (p *Program) Source() string { return p.src }

// Inputs are the measurements the expression reads, in the order Eval takes their
// values. Each appears once.
func (p *Program) Inputs() []Ref { return p.inputs }

// Functions lists the library functions the expression calls.
func (p *Program) Functions() []string { return p.functions }

// Stateful reports whether the program keeps state between evaluations.
func (p *Program) Stateful() bool { return len(p.calls.slots) > 0 }

// Eval runs the program at time now (Unix ms, the time stateful functions see)
// with the values of Inputs. The result of a comparison is 1 or 0. A runtime error
// (a function given the wrong kind of value, a modulo by zero) or a result that is
// not finite is an error; the caller marks the output invalid.
func (p *Program) Eval(now int64, inputs []float64) (v float64, err error) {
	if len(inputs) != len(p.names) {
		return math.NaN(), fmt.Errorf("eval: %d inputs given, the expression has %d", len(inputs), len(p.names))
	}
	for i, x := range inputs {
		p.env[p.names[i]] = x
	}
	p.calls.now = now
	out, err := p.machine.Run(p.prog, p.env)
	if err != nil {
		return math.NaN(), err
	}
	v, err = toFloat(out)
	if err != nil {
		return math.NaN(), fmt.Errorf("result: %w", err)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v, ErrNotFinite
	}
	return v, nil
}

// compilation is the visitor that resolves names and expands aggregates.
type compilation struct {
	src  string
	r    Resolver
	p    *Program
	refs map[Ref]string
	used map[string]bool
	err  *Error
}

func (c *compilation) fail(n ast.Node, format string, args ...any) {
	if c.err == nil {
		line, col := lineCol(c.src, n.Location().From)
		c.err = &Error{Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
	}
}

// input returns the env name of ref, adding it on first use.
func (c *compilation) input(ref Ref) string {
	if name, ok := c.refs[ref]; ok {
		return name
	}
	name := "_" + strconv.Itoa(len(c.p.inputs))
	c.refs[ref] = name
	c.p.inputs = append(c.p.inputs, ref)
	c.p.names = append(c.p.names, name)
	c.p.env[name] = 0.0
	return name
}

func (c *compilation) Visit(node *ast.Node) {
	if c.err != nil {
		return
	}
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		if strings.HasPrefix(n.Value, "_") {
			c.fail(n, "names starting with _ are reserved")
		}
	case *ast.MemberNode:
		inst, ok := n.Node.(*ast.IdentifierNode)
		prop, ok2 := n.Property.(*ast.StringNode)
		if !ok || !ok2 {
			c.fail(n, "a reference is written instance.measurement (or instance.property)")
			return
		}
		ref, constant, isConst, err := c.r.Lookup(inst.Value, prop.Value)
		if err != nil { // errors point at the start of the reference
			c.fail(inst, "%s.%s: %v", inst.Value, prop.Value, err)
			return
		}
		if isConst {
			cn, err := constNode(constant)
			if err != nil {
				c.fail(inst, "%s.%s: %v", inst.Value, prop.Value, err)
				return
			}
			ast.Patch(node, cn)
			return
		}
		ast.Patch(node, &ast.IdentifierNode{Value: c.input(ref)})
	case *ast.CallNode:
		c.call(node, n)
	case *ast.BuiltinNode:
		c.fail(n, "unknown function %s; the functions are %s", n.Name, FunctionNames())
	case *ast.PointerNode, *ast.PredicateNode:
		c.fail(n, "%s is not supported in calculations", n.String())
	}
}

func (c *compilation) call(node *ast.Node, n *ast.CallNode) {
	id, ok := n.Callee.(*ast.IdentifierNode)
	if !ok {
		c.fail(n, "only library functions can be called")
		return
	}
	f := functionByName[id.Value]
	if f == nil {
		c.fail(n, "unknown function %s; the functions are %s", id.Value, FunctionNames())
		return
	}
	c.used[f.name] = true
	args := n.Arguments
	// An aggregate over a set of instances: f("selector", "measurement").
	if f.aggregate && len(args) == 2 {
		sel, ok1 := args[0].(*ast.StringNode)
		name, ok2 := args[1].(*ast.StringNode)
		if ok1 && ok2 {
			refs, err := c.r.Select(sel.Value, name.Value)
			if err != nil {
				c.fail(n, "%s(%q, %q): %v", f.name, sel.Value, name.Value, err)
				return
			}
			expanded := make([]ast.Node, len(refs))
			for i, ref := range refs {
				expanded[i] = &ast.IdentifierNode{Value: c.input(ref)}
			}
			n.Arguments = expanded
			return
		}
	}
	if len(args) < f.minArgs || (f.maxArgs >= 0 && len(args) > f.maxArgs) {
		c.fail(n, "%s takes %s; %d given", f.name, f.arity(), len(args))
		return
	}
	for i, ai := range f.literalArgs {
		if ai >= len(args) {
			break
		}
		if !isNumberLiteral(args[ai]) {
			c.fail(args[ai], "argument %d of %s must be a number written in the expression", ai+1, f.name)
			return
		}
		_ = i
	}
	if f.stateful {
		slot := len(c.p.calls.slots)
		c.p.calls.slots = append(c.p.calls.slots, &slotState{Kind: f.name})
		n.Arguments = append([]ast.Node{&ast.IntegerNode{Value: slot}}, args...)
	}
}

func isNumberLiteral(n ast.Node) bool {
	switch v := n.(type) {
	case *ast.IntegerNode, *ast.FloatNode:
		return true
	case *ast.UnaryNode:
		return v.Operator == "-" && isNumberLiteral(v.Node)
	}
	return false
}

func constNode(v any) (ast.Node, error) {
	switch x := v.(type) {
	case float64:
		return &ast.FloatNode{Value: x}, nil
	case int:
		return &ast.IntegerNode{Value: x}, nil
	case int64:
		return &ast.IntegerNode{Value: int(x)}, nil
	case bool:
		return &ast.BoolNode{Value: x}, nil
	case string:
		return &ast.StringNode{Value: x}, nil
	}
	return nil, fmt.Errorf("a property of type %T cannot be used in an expression", v)
}

// toError turns an expr error into an *Error with the position in src.
func toError(src string, err error) *Error {
	var fe *file.Error
	if errors.As(err, &fe) {
		line, col := fe.Line, fe.Column+1
		if line == 0 {
			line, col = lineCol(src, fe.From)
		}
		return &Error{Line: line, Column: col, Msg: fe.Message}
	}
	return &Error{Line: 1, Column: 1, Msg: err.Error()}
}

// lineCol converts a rune offset into a 1-based line and column.
func lineCol(src string, from int) (int, int) {
	line, col, i := 1, 1, 0
	for len(src) > 0 && i < from {
		r, size := utf8.DecodeRuneInString(src)
		src = src[size:]
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i++
	}
	return line, col
}

func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case float32:
		return float64(x), nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case nil:
		return math.NaN(), errors.New("no value (nil)")
	}
	return math.NaN(), fmt.Errorf("%T is not a number", v)
}
