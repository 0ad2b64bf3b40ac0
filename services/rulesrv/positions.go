package rulesrv

import (
	"errors"
	"fmt"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/expression"
)

// yamlFile is a parsed rule file kept for the positions of its values, so every
// error names file:line:col of the value that is wrong. lines serve block
// scalars, whose expressions start at their own indentation.
type yamlFile struct {
	*config.YAMLFile
	lines []string
}

func parseYAMLPositions(path string, src []byte) *yamlFile {
	return &yamlFile{YAMLFile: config.ParseYAMLFile(path, src), lines: strings.Split(string(src), "\n")}
}

func (y *yamlFile) node(path string) ast.Node { return y.Node("%s", path) }

// pos is the position of the value at a YAML path ("$.actions[2].command"),
// falling back to the nearest parent that exists, then to the file.
func (y *yamlFile) pos(format string, args ...any) config.Position {
	path := fmt.Sprintf(format, args...)
	for path != "" && path != "$" {
		n := y.node(path)
		switch m := n.(type) { // a mapping is where its first key is
		case *ast.MappingNode:
			if len(m.Values) > 0 {
				n = m.Values[0].Key
			}
		case *ast.MappingValueNode:
			n = m.Key
		}
		if n != nil && n.GetToken() != nil && n.GetToken().Position != nil {
			tk := n.GetToken().Position
			return config.Position{File: y.Path, Line: tk.Line, Column: tk.Column}
		}
		i := strings.LastIndexAny(path, ".[")
		if i <= 0 {
			break
		}
		path = path[:i]
	}
	return config.Position{File: y.Path, Line: 1, Column: 1}
}

// exprPos maps an expression compile error to its place in the file: the
// scalar's start plus the error's line and column inside the expression.
func (y *yamlFile) exprPos(path string, err error) config.Position {
	p := y.pos("%s", path)
	var ee *expression.Error
	if !errors.As(err, &ee) {
		return p
	}
	start, block := y.ScalarStart("%s", path)
	p.Column = start.Column
	if !block {
		if ee.Line == 1 {
			p.Column += ee.Column - 1
		} else {
			p.Line += ee.Line - 1
			p.Column = ee.Column
		}
		return p
	}
	first := p.Line + 1
	p.Line, p.Column = p.Line+ee.Line, ee.Column
	if first-1 < len(y.lines) {
		text := y.lines[first-1]
		p.Column += len(text) - len(strings.TrimLeft(text, " "))
	}
	return p
}

func exprMessage(err error) string {
	var ee *expression.Error
	if errors.As(err, &ee) {
		return ee.Msg
	}
	return err.Error()
}
