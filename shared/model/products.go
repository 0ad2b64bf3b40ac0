package model

import (
	"embed"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/voltageems/voltage/shared/config"
)

// builtinProducts is the product library every site has: Station, ESS, Battery,
// PCS, PV inverter, Meter, Genset, Load, Environment and EV charger. A site's
// modsrv/products/{file}.yaml with the same id replaces one.
//
//go:embed products/*.yaml
var builtinProducts embed.FS

// BuiltinProductFiles returns the built-in product files by file name (for voltctl
// and docs that want to write them out).
func BuiltinProductFiles() map[string][]byte {
	out := map[string][]byte{}
	entries, _ := builtinProducts.ReadDir("products")
	for _, e := range entries {
		b, err := builtinProducts.ReadFile("products/" + e.Name())
		if err == nil {
			out[e.Name()] = b
		}
	}
	return out
}

// BuiltinProducts returns the built-in library by product id.
func BuiltinProducts() map[string]*Product {
	return loadProducts("", &errList{})
}

// loadProducts reads the built-in library, then the site's product folder.
func loadProducts(dir string, l *errList) map[string]*Product {
	products := map[string]*Product{}
	entries, _ := builtinProducts.ReadDir("products")
	for _, e := range entries {
		src, _ := builtinProducts.ReadFile("products/" + e.Name())
		if p := readProduct("(built-in) products/"+e.Name(), src, l); p != nil {
			p.BuiltIn = true
			products[p.ID] = p
		}
	}

	site := map[string]*Product{}
	if dir == "" {
		return products
	}
	files, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		l.add(config.Position{File: dir}, "cannot read the product folder: %v", err)
	default:
		for _, f := range files {
			if f.IsDir() || !(strings.HasSuffix(f.Name(), ".yaml") || strings.HasSuffix(f.Name(), ".yml")) {
				continue
			}
			path := filepath.Join(dir, f.Name())
			src, err := os.ReadFile(path)
			if err != nil {
				l.add(config.Position{File: path}, "cannot read: %v", err)
				continue
			}
			p := readProduct(path, src, l)
			if p == nil {
				continue
			}
			if prev := site[p.ID]; prev != nil {
				l.add(p.Pos, "product %q is also defined in %s", p.ID, prev.Pos)
				continue
			}
			site[p.ID] = p
			products[p.ID] = p
		}
	}
	checkParents(products, l)
	return products
}

// readProduct decodes and checks one product file; nil when it is unusable.
func readProduct(path string, src []byte, l *errList) *Product {
	var p Product
	if err := config.DecodeStrict(path, src, &p); err != nil {
		l.addErr(err)
		return nil
	}
	y := config.ParseYAMLFile(path, src)
	p.Pos = y.Pos("$.id")
	ok := true
	if !isName(p.ID) {
		l.add(p.Pos, "product id %q: want lowercase letters, digits and _ (e.g. pv_inverter)", p.ID)
		ok = false
	}
	if p.Name == "" {
		p.Name = p.ID
	}
	names := map[string]string{} // name → what it is, across properties and measurements
	for i := range p.Properties {
		d := &p.Properties[i]
		at := y.Pos("$.properties[%d].name", i)
		if !isName(d.Name) {
			l.add(at, "property name %q: want lowercase letters, digits and _", d.Name)
			ok = false
		} else if prev, dup := names[d.Name]; dup {
			l.add(at, "%q is already a %s of product %s", d.Name, prev, p.ID)
			ok = false
		}
		names[d.Name] = "property"
		if d.Type == "" {
			d.Type = TypeFloat
		}
		if !oneOf(d.Type, TypeFloat, TypeInt, TypeBool, TypeString) {
			l.add(y.Pos("$.properties[%d].type", i), "property %s: type %q: want float, int, bool or string", d.Name, d.Type)
			ok = false
			continue
		}
		if d.Default != nil {
			v, err := propertyValue(d.Type, d.Default)
			if err != nil {
				l.add(y.Pos("$.properties[%d].default", i), "property %s: default: %v", d.Name, err)
				ok = false
			}
			d.Default = v
		}
	}
	ok = checkPoints(&p, "measurement", "measurements", p.Measurements, names, y, l) && ok
	ok = checkPoints(&p, "action", "actions", p.Actions, map[string]string{}, y, l) && ok
	if !ok {
		return nil
	}
	return &p
}

func checkPoints(p *Product, what, key string, ps []PointDef, names map[string]string, y *config.YAMLFile, l *errList) bool {
	ok := true
	ids := map[uint32]bool{}
	for i := range ps {
		d := &ps[i]
		if d.ID == 0 {
			l.add(y.Pos("$.%s[%d]", key, i), "%s %q: id must be a positive number", what, d.Name)
			ok = false
		} else if ids[d.ID] {
			l.add(y.Pos("$.%s[%d].id", key, i), "%s id %d is used twice in product %s", what, d.ID, p.ID)
			ok = false
		}
		ids[d.ID] = true
		at := y.Pos("$.%s[%d].name", key, i)
		if !isName(d.Name) {
			l.add(at, "%s name %q: want lowercase letters, digits and _", what, d.Name)
			ok = false
		} else if prev, dup := names[d.Name]; dup {
			l.add(at, "%q is already a %s of product %s", d.Name, prev, p.ID)
			ok = false
		}
		names[d.Name] = what
		if d.Type == "" {
			d.Type = TypeFloat
		}
		if !oneOf(d.Type, TypeFloat, TypeInt, TypeBool) {
			l.add(y.Pos("$.%s[%d].type", key, i), "%s %s: type %q: want float, int or bool", what, d.Name, d.Type)
			ok = false
		}
		limits := d.Min != nil || d.Max != nil || d.Step != nil
		switch {
		case limits && what != "action":
			l.add(y.Pos("$.%s[%d]", key, i), "%s %s: min, max and step are for actions", what, d.Name)
			ok = false
		case limits && d.Type == TypeBool:
			l.add(y.Pos("$.%s[%d]", key, i), "action %s: a bool action takes 0 or 1 and has no min, max or step", d.Name)
			ok = false
		case d.Min != nil && d.Max != nil && *d.Min > *d.Max:
			l.add(y.Pos("$.%s[%d].min", key, i), "action %s: min %v is above max %v", d.Name, *d.Min, *d.Max)
			ok = false
		case d.Step != nil && (*d.Step <= 0 || math.IsInf(*d.Step, 0) || math.IsNaN(*d.Step)):
			l.add(y.Pos("$.%s[%d].step", key, i), "action %s: step must be a positive number", d.Name)
			ok = false
		}
	}
	return ok
}

// checkParents checks that every parent product exists and the hierarchy has no loop.
func checkParents(products map[string]*Product, l *errList) {
	ids := make([]string, 0, len(products))
	for id := range products {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		p := products[id]
		if p.Parent == "" {
			continue
		}
		if products[p.Parent] == nil {
			l.add(p.Pos, "product %s: parent product %q does not exist", p.ID, p.Parent)
			continue
		}
		seen := map[string]bool{p.ID: true}
		chain := []string{p.ID}
		for q := products[p.Parent]; q != nil; q = products[q.Parent] {
			chain = append(chain, q.ID)
			if seen[q.ID] {
				l.add(p.Pos, "product parents form a loop: %s", strings.Join(chain, " → "))
				break
			}
			seen[q.ID] = true
		}
	}
}

// isName reports whether s is a lowercase identifier usable in expressions.
func isName(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '_' || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func oneOf(s string, list ...string) bool {
	for _, x := range list {
		if s == x {
			return true
		}
	}
	return false
}
