package model

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/expression"
)

// calculationsFile is modsrv/calculations.yaml.
type calculationsFile struct {
	Calculations []calcEntry `yaml:"calculations"`
}

type calcEntry struct {
	Name        string `yaml:"name"`
	Instance    string `yaml:"instance"`
	Measurement any    `yaml:"measurement"` // name or id
	Expression  string `yaml:"expression"`
	Description string `yaml:"description"`
	Enabled     *bool  `yaml:"enabled"`
}

// loadCalculations reads calculations.yaml and compiles every enabled calculation.
func (m *Model) loadCalculations(path string, src []byte, l *errList) {
	var f calculationsFile
	if err := config.DecodeStrict(path, src, &f); err != nil {
		l.addErr(err)
		return
	}
	y := config.ParseYAMLFile(path, src)
	lines := strings.Split(string(src), "\n")
	names := map[string]*Calculation{}
	res := &resolver{m: m}
	for i, e := range f.Calculations {
		c := &Calculation{Name: e.Name, Expression: e.Expression, Description: e.Description, Pos: y.Pos("$.calculations[%d]", i)}
		if e.Enabled != nil && !*e.Enabled {
			continue
		}
		ok := true
		switch {
		case !isName(e.Name):
			l.add(y.Pos("$.calculations[%d].name", i), "calculation name %q: want lowercase letters, digits and _", e.Name)
			ok = false
		case names[e.Name] != nil:
			l.add(y.Pos("$.calculations[%d].name", i), "calculation %s is also defined at line %d", e.Name, names[e.Name].Pos.Line)
			ok = false
		}
		c.Instance = m.byName[e.Instance]
		if c.Instance == nil && m.rejected[e.Instance] {
			continue // its entry in instances.yaml is reported
		}
		if c.Instance == nil {
			l.add(y.Pos("$.calculations[%d].instance", i), "calculation %s: no instance named %q", e.Name, e.Instance)
			continue
		}
		def := measurementOf(c.Instance.Product, e.Measurement)
		if def == nil {
			l.add(y.Pos("$.calculations[%d].measurement", i), "calculation %s: product %s has no measurement %v", e.Name, c.Instance.Product.ID, e.Measurement)
			continue
		}
		c.Point = def.ID
		out := PointRef{c.Instance.ID, c.Point}
		if rt := m.meas[out]; rt != nil {
			l.add(y.Pos("$.calculations[%d].measurement", i), "calculation %s: %s.%s is already routed from channel %d (%s)", e.Name, c.Instance.Name, def.Name, rt.Channel, rt.Pos)
			ok = false
		}
		if prev := m.calcOut[out]; prev != nil {
			l.add(y.Pos("$.calculations[%d].measurement", i), "calculation %s: %s.%s is already written by calculation %s", e.Name, c.Instance.Name, def.Name, prev.Name)
			ok = false
		}
		prog, err := expression.Compile(e.Expression, res)
		if err != nil {
			l.addErr(&config.PosError{Pos: expressionPos(y, lines, i, err), Msg: "calculation " + e.Name + ": " + exprMessage(err)})
			continue
		}
		c.Program = prog
		for _, ref := range prog.Inputs() {
			inst := m.byName[ref.Instance]
			c.Inputs = append(c.Inputs, PointRef{inst.ID, inst.Product.MeasurementByName(ref.Point).ID})
		}
		if !ok {
			continue
		}
		names[c.Name] = c
		m.calcOut[out] = c
		m.Calculations = append(m.Calculations, c)
	}
	m.order(l)
	for _, c := range m.Calculations {
		for _, in := range c.Inputs {
			if m.meas[in] == nil && m.calcOut[in] == nil {
				inst := m.byID[in.Instance]
				m.Report.Warnings = append(m.Report.Warnings, fmt.Sprintf("%s: calculation %s reads %s.%s, which is neither routed nor calculated: the result stays invalid",
					c.Pos, c.Name, inst.Name, inst.Product.Measurement(in.Point).Name))
			}
		}
	}
}

func measurementOf(p *Product, v any) *PointDef {
	switch x := v.(type) {
	case string:
		if n, err := strconv.ParseUint(x, 10, 32); err == nil {
			return p.Measurement(uint32(n))
		}
		return p.MeasurementByName(x)
	default:
		if f, ok := number(v); ok && f >= 0 && f < 1<<32 {
			return p.Measurement(uint32(f))
		}
	}
	return nil
}

// expressionPos maps an expression error to its place in the file.
func expressionPos(y *config.YAMLFile, lines []string, i int, err error) config.Position {
	pos, block := y.ScalarStart("$.calculations[%d].expression", i)
	var ee *expression.Error
	if !errors.As(err, &ee) || pos.Line == 0 {
		return pos
	}
	if !block {
		if ee.Line == 1 {
			pos.Column += ee.Column - 1
		} else {
			pos.Line += ee.Line - 1
			pos.Column = ee.Column
		}
		return pos
	}
	// A block scalar (|): its text starts on the next line, and every line loses
	// the indentation of the first.
	first := pos.Line + 1
	pos.Line, pos.Column = pos.Line+ee.Line, ee.Column
	if first-1 < len(lines) {
		text := lines[first-1]
		pos.Column += len(text) - len(strings.TrimLeft(text, " "))
	}
	return pos
}

func exprMessage(err error) string {
	var ee *expression.Error
	if errors.As(err, &ee) {
		return ee.Msg
	}
	return err.Error()
}

// order sorts the calculations topologically, reporting every cycle by name.
func (m *Model) order(l *errList) {
	deps := map[*Calculation][]*Calculation{}
	for _, c := range m.Calculations {
		for _, in := range c.Inputs {
			if d := m.calcOut[in]; d != nil {
				deps[c] = append(deps[c], d)
			}
		}
	}
	const (
		unvisited = iota
		active
		done
	)
	state := map[*Calculation]int{}
	var stack []*Calculation
	inCycle := map[*Calculation]bool{}
	var visit func(c *Calculation)
	visit = func(c *Calculation) {
		state[c] = active
		stack = append(stack, c)
		for _, d := range deps[c] {
			switch state[d] {
			case unvisited:
				visit(d)
			case active:
				start := len(stack) - 1
				for stack[start] != d {
					start--
				}
				cycle := stack[start:]
				names := make([]string, 0, len(cycle)+1)
				first := cycle[0]
				for _, x := range cycle {
					names = append(names, x.Name)
					inCycle[x] = true
					if x.Pos.Line < first.Pos.Line {
						first = x
					}
				}
				// The cycle reads as "a reads b reads ... reads a".
				names = append(names, d.Name)
				l.add(first.Pos, "calculations form a cycle: %s (each reads the output of the next)", strings.Join(names, " → "))
			}
		}
		stack = stack[:len(stack)-1]
		state[c] = done
		if !inCycle[c] {
			m.Order = append(m.Order, c)
		}
	}
	sorted := append([]*Calculation(nil), m.Calculations...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Pos.Line < sorted[j].Pos.Line })
	for _, c := range sorted {
		if state[c] == unvisited {
			visit(c)
		}
	}
}

// resolver resolves the names of expressions against the model.
type resolver struct{ m *Model }

func (r *resolver) Lookup(instance, name string) (expression.Ref, any, bool, error) {
	inst := r.m.byName[instance]
	if inst == nil && r.m.rejected[instance] {
		return expression.Ref{}, nil, false, fmt.Errorf("instance %s is invalid (see %s)", instance, InstancesFile)
	}
	if inst == nil {
		return expression.Ref{}, nil, false, fmt.Errorf("no instance named %q", instance)
	}
	if inst.Product.MeasurementByName(name) != nil {
		return expression.Ref{Instance: instance, Point: name}, nil, false, nil
	}
	if d := inst.Product.Property(name); d != nil {
		v, ok := inst.Properties[name]
		if !ok {
			return expression.Ref{}, nil, false, fmt.Errorf("property %s of %s has no value (set it in instances.yaml)", name, instance)
		}
		return expression.Ref{}, v, true, nil
	}
	return expression.Ref{}, nil, false, fmt.Errorf("product %s has no measurement or property %q", inst.Product.ID, name)
}

// Select resolves a selector: space-separated terms that must all match,
// product:ID (instances of the product), parent:NAME (children of the instance),
// name:A,B,... (the instances named), or * (every instance).
func (r *resolver) Select(selector, name string) ([]expression.Ref, error) {
	terms := strings.Fields(selector)
	if len(terms) == 0 {
		return nil, errors.New(`empty selector; write "product:ID", "parent:NAME", "name:A,B" or "*"`)
	}
	match := func(*Instance) bool { return true }
	for _, t := range terms {
		prev := match
		key, val, _ := strings.Cut(t, ":")
		switch {
		case t == "*":
		case key == "product":
			if r.m.Products[val] == nil {
				return nil, fmt.Errorf("unknown product %q", val)
			}
			match = func(i *Instance) bool { return prev(i) && i.Product.ID == val }
		case key == "parent":
			if r.m.byName[val] == nil {
				return nil, fmt.Errorf("no instance named %q", val)
			}
			match = func(i *Instance) bool { return prev(i) && i.Parent != nil && i.Parent.Name == val }
		case key == "name":
			set := map[string]bool{}
			for _, n := range strings.Split(val, ",") {
				if r.m.byName[n] == nil {
					return nil, fmt.Errorf("no instance named %q", n)
				}
				set[n] = true
			}
			match = func(i *Instance) bool { return prev(i) && set[i.Name] }
		default:
			return nil, fmt.Errorf(`selector term %q: want product:ID, parent:NAME, name:A,B or *`, t)
		}
	}
	var out []expression.Ref
	for _, inst := range r.m.Instances {
		if match(inst) && inst.Product.MeasurementByName(name) != nil {
			out = append(out, expression.Ref{Instance: inst.Name, Point: name})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no instance matching %q has a measurement %q", selector, name)
	}
	return out, nil
}
