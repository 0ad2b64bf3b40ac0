package voltctl

import (
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/voltageems/voltage/shared/config"
)

// yamlFile is a parsed YAML file, kept to tell where a key or value was written:
// reports name file:line:col so the operator finds what they mean.
type yamlFile struct {
	path string
	root ast.Node // nil for an empty file
}

func parseYAMLFile(path string, src []byte) (*yamlFile, error) {
	var f *ast.File
	err := config.GuardYAML(func() (err error) {
		f, err = parser.ParseBytes(src, 0)
		return err
	})
	if err != nil {
		return nil, err
	}
	y := &yamlFile{path: path}
	for _, d := range f.Docs {
		if d != nil && d.Body != nil {
			y.root = d.Body
			break
		}
	}
	return y, nil
}

// node walks from the root along keys (string) and sequence indexes (int); nil
// when the path does not exist.
func (y *yamlFile) node(path ...any) ast.Node {
	if y == nil {
		return nil
	}
	n := y.root
	for _, step := range path {
		n = unwrap(n)
		switch s := step.(type) {
		case string:
			kv := pair(n, s)
			if kv == nil {
				return nil
			}
			n = kv.Value
		case int:
			seq, ok := n.(*ast.SequenceNode)
			if !ok || s < 0 || s >= len(seq.Values) {
				return nil
			}
			n = seq.Values[s]
		}
	}
	return unwrap(n)
}

// keyPos is where the key that ends path was written; the file alone when it
// cannot be found (e.g. it came from a merge).
func (y *yamlFile) keyPos(path ...any) config.Position {
	if len(path) > 0 {
		if key, ok := path[len(path)-1].(string); ok {
			if kv := pair(y.node(path[:len(path)-1]...), key); kv != nil {
				return y.pos(kv.Key)
			}
		}
	}
	return y.pos(y.node(path...))
}

// valuePos is where the value at path was written.
func (y *yamlFile) valuePos(path ...any) config.Position { return y.pos(y.node(path...)) }

func (y *yamlFile) pos(n ast.Node) config.Position {
	p := config.Position{File: y.path}
	if n != nil && n.GetToken() != nil && n.GetToken().Position != nil {
		p.Line, p.Column = n.GetToken().Position.Line, n.GetToken().Position.Column
	}
	return p
}

// pair finds key in mapping n.
func pair(n ast.Node, key string) *ast.MappingValueNode {
	var pairs []*ast.MappingValueNode
	switch m := unwrap(n).(type) {
	case *ast.MappingNode:
		pairs = m.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{m}
	}
	for _, kv := range pairs {
		if keyText(kv.Key) == key {
			return kv
		}
	}
	return nil
}

func keyText(k ast.MapKeyNode) string {
	if k == nil || k.GetToken() == nil {
		return ""
	}
	return k.GetToken().Value // the key's text, without quotes
}

// unwrap looks through anchors and tags to the value.
func unwrap(n ast.Node) ast.Node {
	for {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		default:
			return n
		}
	}
}
