package config

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// yamlDoc is one parsed YAML config file.
//
// The library's decoder stops at the first problem, so the files are walked key by
// key here instead (decodeStruct): every unknown key and every bad value of a file is
// reported, and only the leaves are handed to the library.
type yamlDoc struct {
	path string
	src  []byte
	body ast.Node // nil for an empty file

	anchors map[string][]*ast.AnchorNode // by name, in file order (a name may be redefined)
	dec     *yaml.Decoder                // has read the file, so knows its anchors

	// merged caches pairs by mapping node: a mapping merged into many others is
	// expanded once, so nested merges cannot blow up.
	merged map[ast.Node][]*ast.MappingValueNode
}

// parseYAML parses src; a syntax error (including a duplicate key) is reported and
// yields nil.
func parseYAML(path string, src []byte, l *errList) *yamlDoc {
	var f *ast.File
	err := GuardYAML(func() (err error) {
		f, err = parser.ParseBytes(src, 0)
		return err
	})
	if err != nil {
		l.errs = append(l.errs, yamlError(path, "", err))
		return nil
	}
	d := &yamlDoc{path: path, src: src}
	var docs []*ast.DocumentNode
	for _, doc := range f.Docs {
		if doc != nil && doc.Body != nil {
			docs = append(docs, doc)
		}
	}
	if len(docs) > 1 {
		l.add(d.pos(docs[1].Body), "the file holds %d YAML documents; write one", len(docs))
		return nil
	}
	if len(docs) == 1 {
		d.body = docs[0].Body
		d.anchors = map[string][]*ast.AnchorNode{}
		ast.Walk(anchorCollector(d.anchors), d.body)
		// The library resolves the whole document (aliases, merges) before it decodes
		// any part of it; a problem there (an unknown alias, a merge of a scalar)
		// would otherwise surface at whichever value is decoded first.
		d.dec = yaml.NewDecoder(bytes.NewReader(src), decodeOptions...)
		if err := d.decodeLeaf(d.body, new(any)); err != nil {
			l.errs = append(l.errs, yamlError(path, "", err))
			return nil
		}
	}
	return d
}

// anchorCollector records every anchor (&name) of a document.
type anchorCollector map[string][]*ast.AnchorNode

func (c anchorCollector) Visit(n ast.Node) ast.Visitor {
	if a, ok := n.(*ast.AnchorNode); ok && a.Name != nil && a.Name.GetToken() != nil {
		name := a.Name.GetToken().Value
		c[name] = append(c[name], a)
	}
	return c
}

// maxAliasDepth bounds alias and merge chains (a hostile file could nest them).
const maxAliasDepth = 32

// resolve looks through anchors and aliases to the value node. An alias names the
// latest anchor of that name before it; an unknown alias resolves to itself and is
// left to the library to report.
func (d *yamlDoc) resolve(node ast.Node) ast.Node {
	for range maxAliasDepth {
		node = unwrap(node)
		alias, ok := node.(*ast.AliasNode)
		if !ok || alias.Value == nil || alias.Value.GetToken() == nil {
			return node
		}
		var target ast.Node
		at := offset(alias)
		for _, a := range d.anchors[alias.Value.GetToken().Value] {
			if offset(a) < at {
				target = a.Value
			}
		}
		if target == nil {
			return node
		}
		node = target
	}
	return node
}

func offset(n ast.Node) int {
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Offset
	}
	return 0
}

// pairs returns the key/value pairs of a mapping with merge keys (<<: *defaults)
// expanded, one pair per key: a mapping's own keys win over merged ones, and in
// <<: [*a, *b] the earlier mapping wins. It reports false when node is not a mapping.
func (d *yamlDoc) pairs(node ast.Node, depth int, l *errList) ([]*ast.MappingValueNode, bool) {
	node = d.resolve(node)
	if p, ok := d.merged[node]; ok {
		return p, true
	}
	raw, ok := mappingPairs(node)
	if !ok {
		return nil, false
	}
	var all []*ast.MappingValueNode // lowest precedence first
	var own []*ast.MappingValueNode
	for _, kv := range raw {
		if _, merge := kv.Key.(*ast.MergeKeyNode); !merge {
			own = append(own, kv)
			continue
		}
		if depth >= maxAliasDepth {
			l.add(d.pos(kv.Key), "merge keys (<<) nested too deep")
			continue
		}
		sources := []ast.Node{kv.Value}
		if seq, ok := d.resolve(kv.Value).(*ast.SequenceNode); ok {
			sources = slices.Clone(seq.Values)
			slices.Reverse(sources)
		}
		for _, src := range sources {
			p, ok := d.pairs(src, depth+1, l)
			if !ok {
				l.add(d.pos(src), "<<: want a mapping or an alias of one, got %s", nodeKind(d.resolve(src)))
				continue
			}
			all = append(all, p...)
		}
	}
	all = append(all, own...)

	// Keep the last pair of each key, in the order the keys first appear.
	last := map[string]int{}
	var keys []string
	for i, kv := range all {
		k := keyName(kv.Key)
		if _, seen := last[k]; !seen {
			keys = append(keys, k)
		}
		last[k] = i
	}
	out := make([]*ast.MappingValueNode, len(keys))
	for i, k := range keys {
		out[i] = all[last[k]]
	}
	if d.merged == nil {
		d.merged = map[ast.Node][]*ast.MappingValueNode{}
	}
	d.merged[node] = out
	return out, true
}

// pos is the position of node in the file.
func (d *yamlDoc) pos(node ast.Node) Position {
	p := Position{File: d.path}
	if node == nil {
		return p
	}
	// A block mapping's token is a ':'; the place to show is its first key.
	switch n := node.(type) {
	case *ast.MappingNode:
		if !n.IsFlowStyle && len(n.Values) > 0 {
			node = n.Values[0].Key
		}
	case *ast.MappingValueNode:
		node = n.Key
	}
	if tk := node.GetToken(); tk != nil && tk.Position != nil {
		p.Line, p.Column = tk.Position.Line, tk.Position.Column
	}
	return p
}

// decodeOptions are the library's options for every decode. Duplicate keys are
// rejected earlier, by parseYAML; allowing them here only lets a key override one
// merged in with <<, which the library would otherwise call a duplicate.
var decodeOptions = []yaml.DecodeOption{yaml.DisallowUnknownField(), yaml.AllowDuplicateMapKey()}

// decodeLeaf decodes node into dst (a pointer) with the library, unknown keys
// rejected. The decoder has read the whole file, so aliases in node resolve.
func (d *yamlDoc) decodeLeaf(node ast.Node, dst any) error {
	return GuardYAML(func() error { return d.dec.DecodeFromNode(node, dst) })
}

// GuardYAML runs f, turning a panic of the YAML library into an error: a service
// reloading its configuration must not crash on a file that trips a library bug.
func GuardYAML(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the YAML library failed on this file: %v", r)
		}
	}()
	return f()
}

// fieldInfo records a key found while decoding: where its value is and whether it
// decoded, so validation neither repeats a decode error nor calls the key missing.
type fieldInfo struct {
	pos Position
	ok  bool
}

// unwrap looks through anchors (&name) to the value.
func unwrap(node ast.Node) ast.Node {
	for {
		a, ok := node.(*ast.AnchorNode)
		if !ok {
			return node
		}
		node = a.Value
	}
}

func isNull(node ast.Node) bool {
	if node == nil {
		return true
	}
	_, ok := unwrap(node).(*ast.NullNode)
	return ok
}

// mappingPairs returns the key/value pairs of a mapping node, or false when node is
// not a mapping.
func mappingPairs(node ast.Node) ([]*ast.MappingValueNode, bool) {
	switch n := unwrap(node).(type) {
	case *ast.MappingNode:
		return n.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{n}, true
	}
	return nil, false
}

// keyName is the text of a mapping key.
func keyName(k ast.MapKeyNode) string {
	if s, ok := k.(*ast.StringNode); ok {
		return s.Value
	}
	if tk := k.GetToken(); tk != nil {
		return tk.Value
	}
	return k.String()
}

// nodeKind names what a node is, for "want X, got Y" messages.
func nodeKind(node ast.Node) string {
	switch n := unwrap(node).(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.NullNode:
		return "nothing"
	case *ast.StringNode:
		return strconv.Quote(n.Value)
	}
	return strconv.Quote(unwrap(node).String())
}

// yamlFields maps the yaml tag names of a struct type to field indexes, in
// declaration order (the order used to list the known keys).
func yamlFields(t reflect.Type) (names []string, index map[string]int) {
	index = map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		names = append(names, name)
		index[name] = i
	}
	return names, index
}

// decodeStruct decodes the mapping node into the struct dst points to, key by key,
// reporting every unknown key and bad value. Anchors, aliases and merge keys are
// resolved here; only leaf values go to the library. Fields not in the mapping keep the
// values dst already has (the defaults). Every key found is recorded in fields under
// path+key ("redis.url"); the entries of a map-valued key too ("listen.comsrv").
func (d *yamlDoc) decodeStruct(node ast.Node, dst any, path string, fields map[string]fieldInfo, l *errList) {
	rv := reflect.ValueOf(dst).Elem()
	if isNull(d.resolve(node)) {
		return
	}
	pairs, ok := d.pairs(node, 0, l)
	if !ok {
		l.add(d.pos(node), "%swant a mapping (key: value), got %s", prefix(path), nodeKind(d.resolve(node)))
		return
	}
	names, index := yamlFields(rv.Type())
	for _, kv := range pairs {
		key := keyName(kv.Key)
		i, known := index[key]
		if !known {
			l.add(d.pos(kv.Key), "unknown key %q%s (known keys: %s)", key, inPath(path), strings.Join(names, ", "))
			continue
		}
		fv := rv.Field(i)
		if fv.Kind() == reflect.Struct {
			d.decodeStruct(kv.Value, fv.Addr().Interface(), path+key+".", fields, l)
			continue
		}
		ok := d.decodeValue(kv.Value, fv, path+key, l)
		fields[path+key] = fieldInfo{pos: d.pos(kv.Value), ok: ok}
		if fv.Kind() != reflect.Map {
			continue
		}
		// The library reports problems of the map's merges; here only positions matter.
		if entries, isMap := d.pairs(kv.Value, 0, &errList{}); isMap {
			for _, e := range entries {
				fields[path+key+"."+keyName(e.Key)] = fieldInfo{pos: d.pos(e.Value), ok: ok}
			}
		}
	}
}

// decodeValue decodes a scalar, list or map value into fv. The library would turn
// 1.5 into the integer 1 and "yes" into a string; a config value is taken as written
// or rejected.
func (d *yamlDoc) decodeValue(node ast.Node, fv reflect.Value, what string, l *errList) bool {
	n := d.resolve(node)
	if _, alias := n.(*ast.AliasNode); !alias {
		switch fv.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			if _, ok := n.(*ast.IntegerNode); !ok {
				l.add(d.pos(node), "%s: want an integer, got %s", what, nodeKind(n))
				return false
			}
		case reflect.Bool:
			if _, ok := n.(*ast.BoolNode); !ok {
				l.add(d.pos(node), "%s: want true or false, got %s", what, nodeKind(n))
				return false
			}
		case reflect.String:
			switch n.(type) {
			case *ast.MappingNode, *ast.MappingValueNode, *ast.SequenceNode:
				l.add(d.pos(node), "%s: want a single value, got %s", what, nodeKind(n))
				return false
			}
		}
	}
	v := reflect.New(fv.Type())
	if err := d.decodeLeaf(node, v.Interface()); err != nil {
		l.errs = append(l.errs, yamlError(d.path, what, err))
		return false
	}
	fv.Set(v.Elem())
	return true
}

func prefix(path string) string {
	if path == "" {
		return ""
	}
	return strings.TrimSuffix(path, ".") + ": "
}

func inPath(path string) string {
	if path == "" {
		return ""
	}
	return " in " + strings.TrimSuffix(path, ".")
}
