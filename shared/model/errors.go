package model

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/voltageems/voltage/shared/config"
)

// errList collects the errors of one load; readers append to it and carry on, so
// one load reports every problem.
type errList struct {
	errs  []*config.PosError
	files map[string]int // file → order of first report
}

func (l *errList) add(pos config.Position, format string, args ...any) {
	l.addErr(&config.PosError{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

func (l *errList) addErr(e *config.PosError) {
	if l.files == nil {
		l.files = map[string]int{}
	}
	if _, ok := l.files[e.Pos.File]; !ok {
		l.files[e.Pos.File] = len(l.files)
	}
	l.errs = append(l.errs, e)
}

// result is nil without errors, else a *config.LoadError ordered like config.Load's:
// files in the order they were read, then by line and column.
func (l *errList) result(dir string) error {
	if len(l.errs) == 0 {
		return nil
	}
	errs := slices.Clone(l.errs)
	slices.SortStableFunc(errs, func(a, b *config.PosError) int {
		return cmp.Or(
			cmp.Compare(l.files[a.Pos.File], l.files[b.Pos.File]),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Column, b.Pos.Column))
	})
	return &config.LoadError{Dir: dir, Errors: errs}
}

// yamlFile is a parsed YAML file kept for the positions of its values.
type yamlFile struct {
	path string
	file *ast.File
}

func parseYAMLPositions(path string, src []byte) *yamlFile {
	y := &yamlFile{path: path}
	_ = config.GuardYAML(func() error {
		f, err := parser.ParseBytes(src, 0)
		if err == nil {
			y.file = f
		}
		return nil
	})
	return y
}

// pos returns the position of the value at a YAML path ("$.instances[2].product"),
// falling back to the file when it is not found.
func (y *yamlFile) pos(path string, args ...any) config.Position {
	p := config.Position{File: y.path}
	if y == nil || y.file == nil {
		return p
	}
	yp, err := yaml.PathString(fmt.Sprintf(path, args...))
	if err != nil {
		return p
	}
	var n ast.Node
	_ = config.GuardYAML(func() error {
		n, _ = yp.FilterFile(y.file)
		return nil
	})
	if n == nil || n.GetToken() == nil || n.GetToken().Position == nil {
		return p
	}
	tk := n.GetToken().Position
	p.Line, p.Column = tk.Line, tk.Column
	return p
}

// scalarStart returns where the text of the scalar at path starts (after an opening
// quote) and whether it is a block scalar, whose text starts on the next line.
func (y *yamlFile) scalarStart(path string, args ...any) (config.Position, bool) {
	p := y.pos(path, args...)
	if y == nil || y.file == nil {
		return p, false
	}
	yp, err := yaml.PathString(fmt.Sprintf(path, args...))
	if err != nil {
		return p, false
	}
	var n ast.Node
	_ = config.GuardYAML(func() error {
		n, _ = yp.FilterFile(y.file)
		return nil
	})
	switch v := n.(type) {
	case *ast.StringNode:
		if tk := v.GetToken(); tk != nil && (tk.Type == token.DoubleQuoteType || tk.Type == token.SingleQuoteType) {
			p.Column++
		}
	case *ast.LiteralNode:
		return p, true
	}
	return p, false
}
