package model

import (
	"fmt"
	"math"
	"sort"

	"github.com/voltageems/voltage/shared/config"
)

// instancesFile is modsrv/instances.yaml.
type instancesFile struct {
	Instances []instanceEntry `yaml:"instances"`
}

type instanceEntry struct {
	ID          uint32         `yaml:"id"`
	Name        string         `yaml:"name"`
	Product     string         `yaml:"product"`
	Parent      string         `yaml:"parent"`
	Description string         `yaml:"description"`
	Properties  map[string]any `yaml:"properties"`
}

// keywords of the expression language cannot name an instance.
var keywords = map[string]bool{
	"true": true, "false": true, "nil": true, "not": true, "and": true, "or": true, "in": true,
	"matches": true, "contains": true, "startswith": true, "endswith": true, "let": true,
	"if": true, "else": true,
}

// loadInstances reads instances.yaml. rejected receives the names of entries that
// are reported wrong, so later files do not repeat the error for each use.
func loadInstances(path string, src []byte, products map[string]*Product, rejected map[string]bool, l *errList) []*Instance {
	var f instancesFile
	if err := config.DecodeStrict(path, src, &f); err != nil {
		l.addErr(err)
		return nil
	}
	y := config.ParseYAMLFile(path, src)
	byID := map[uint32]*Instance{}
	byName := map[string]*Instance{}
	var out []*Instance
	parents := map[*Instance]int{} // instance → entry index, for the second pass
	for i, e := range f.Instances {
		inst := &Instance{ID: e.ID, Name: e.Name, Description: e.Description, Properties: map[string]any{}, Pos: y.Pos("$.instances[%d]", i)}
		ok := true
		if e.ID == 0 {
			l.add(inst.Pos, "instance %q: id must be a positive number", e.Name)
			ok = false
		} else if prev := byID[e.ID]; prev != nil {
			l.add(y.Pos("$.instances[%d].id", i), "instance id %d is also used by %s (%s)", e.ID, prev.Name, prev.Pos)
			ok = false
		}
		switch {
		case !isName(e.Name) || keywords[e.Name]:
			l.add(y.Pos("$.instances[%d].name", i), "instance name %q: want lowercase letters, digits and _ (not a keyword of the expression language)", e.Name)
			ok = false
		case byName[e.Name] != nil:
			l.add(y.Pos("$.instances[%d].name", i), "instance name %q is also used by instance %d (%s)", e.Name, byName[e.Name].ID, byName[e.Name].Pos)
			ok = false
		}
		inst.Product = products[e.Product]
		if inst.Product == nil {
			l.add(y.Pos("$.instances[%d].product", i), "instance %s: unknown product %q; the products are %s", e.Name, e.Product, productList(products))
			ok = false
		} else if !checkProperties(inst, e.Properties, y, i, l) {
			ok = false
		}
		if !ok {
			rejected[e.Name] = true
			continue
		}
		byID[inst.ID], byName[inst.Name] = inst, inst
		parents[inst] = i
		out = append(out, inst)
	}
	for _, inst := range out {
		i := parents[inst]
		name := f.Instances[i].Parent
		if name == "" {
			continue
		}
		p := byName[name]
		switch {
		case p == nil:
			l.add(y.Pos("$.instances[%d].parent", i), "instance %s: parent %q is not an instance", inst.Name, name)
		case inst.Product.Parent != "" && p.Product.ID != inst.Product.Parent:
			l.add(y.Pos("$.instances[%d].parent", i), "instance %s: a %s hangs under a %s, and %s is a %s", inst.Name, inst.Product.ID, inst.Product.Parent, p.Name, p.Product.ID)
		default:
			inst.Parent = p
		}
	}
	for _, inst := range out { // a loop through parents
		seen := map[*Instance]bool{}
		for p := inst; p != nil; p = p.Parent {
			if seen[p] {
				l.add(inst.Pos, "instance %s: parents form a loop", inst.Name)
				inst.Parent = nil
				break
			}
			seen[p] = true
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out
}

// checkProperties fills inst.Properties from the entry and the product's defaults.
func checkProperties(inst *Instance, given map[string]any, y *config.YAMLFile, i int, l *errList) bool {
	ok := true
	for _, name := range sortedKeys(given) {
		d := inst.Product.Property(name)
		if d == nil {
			l.add(y.Pos("$.instances[%d].properties.%s", i, name), "instance %s: product %s has no property %q", inst.Name, inst.Product.ID, name)
			ok = false
			continue
		}
		v, err := propertyValue(d.Type, given[name])
		if err != nil {
			l.add(y.Pos("$.instances[%d].properties.%s", i, name), "instance %s: property %s: %v", inst.Name, name, err)
			ok = false
			continue
		}
		inst.Properties[name] = v
	}
	for _, d := range inst.Product.Properties {
		if _, set := inst.Properties[d.Name]; !set && d.Default != nil {
			inst.Properties[d.Name] = d.Default
		}
	}
	return ok
}

// propertyValue converts a decoded YAML value to the property type.
func propertyValue(typ string, v any) (any, error) {
	f, isNum := number(v)
	switch typ {
	case TypeFloat:
		if isNum {
			return f, nil
		}
	case TypeInt:
		if isNum && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int(f), nil
		}
	case TypeBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case TypeString:
		if s, ok := v.(string); ok {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%v is not a %s", v, typ)
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case uint32:
		return float64(x), true
	case int32:
		return float64(x), true
	}
	return 0, false
}

func productList(products map[string]*Product) string {
	ids := make([]string, 0, len(products))
	for id := range products {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return fmt.Sprint(ids)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
