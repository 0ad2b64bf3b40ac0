package config

import (
	"fmt"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// YAMLFile is a parsed YAML file kept for the positions of its values, so that
// errors found after decoding (an unknown product, a cycle, a bad expression)
// can still name file, line and column.
type YAMLFile struct {
	Path string
	file *ast.File // nil when the file does not parse: positions fall back to the file
}

// ParseYAMLFile parses src for positions. It never fails: a file that does not
// parse (its decoder reports that) gives file-level positions.
func ParseYAMLFile(path string, src []byte) *YAMLFile {
	y := &YAMLFile{Path: path}
	_ = GuardYAML(func() error {
		f, err := parser.ParseBytes(src, 0)
		if err == nil {
			y.file = f
		}
		return nil
	})
	return y
}

// Node is the node at a YAML path such as "$.instances[2].product" (formatted
// with args), or nil.
func (y *YAMLFile) Node(path string, args ...any) ast.Node {
	if y == nil || y.file == nil {
		return nil
	}
	yp, err := yaml.PathString(fmt.Sprintf(path, args...))
	if err != nil {
		return nil
	}
	var n ast.Node
	_ = GuardYAML(func() error {
		n, _ = yp.FilterFile(y.file)
		return nil
	})
	return n
}

// Pos is the position of the value at a YAML path, or the file's when there is
// none.
func (y *YAMLFile) Pos(path string, args ...any) Position {
	p := Position{}
	if y != nil {
		p.File = y.Path
	}
	n := y.Node(path, args...)
	if n == nil || n.GetToken() == nil || n.GetToken().Position == nil {
		return p
	}
	tk := n.GetToken().Position
	p.Line, p.Column = tk.Line, tk.Column
	return p
}

// ScalarStart is where the text of the scalar at path starts (after an opening
// quote), and whether it is a block scalar, whose text starts on the next line —
// for placing an error inside an expression at its own column.
func (y *YAMLFile) ScalarStart(path string, args ...any) (Position, bool) {
	p := y.Pos(path, args...)
	switch v := y.Node(path, args...).(type) {
	case *ast.StringNode:
		if tk := v.GetToken(); tk != nil && (tk.Type == token.DoubleQuoteType || tk.Type == token.SingleQuoteType) {
			p.Column++
		}
	case *ast.LiteralNode:
		return p, true
	}
	return p, false
}
