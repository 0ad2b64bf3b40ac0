package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
)

// String renders the position the way compilers do: file:line:col, leaving out what
// is unknown (a file-level problem has no line).
func (p Position) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteString(":" + strconv.Itoa(p.Line))
		if p.Column > 0 {
			b.WriteString(":" + strconv.Itoa(p.Column))
		}
	}
	return b.String()
}

// PosError is one problem in a config file, at a position.
type PosError struct {
	Pos Position
	Msg string

	err error // the underlying error, when there is one (e.g. a read failure)
}

func (e *PosError) Error() string {
	if e.Pos.File == "" {
		return e.Msg
	}
	return e.Pos.String() + ": " + e.Msg
}

// Unwrap lets callers test for the cause, e.g. errors.Is(err, fs.ErrPermission).
func (e *PosError) Unwrap() error { return e.err }

// LoadError is everything wrong with a site folder. Load returns it (and no Config)
// when the folder has at least one error. The order is deterministic: files in the
// order they are read (site.yaml, channels.yaml, then channel by channel, table by
// table), and within a file by line and column, problems of the whole file first.
type LoadError struct {
	Dir    string
	Errors []*PosError
}

// Error lists one problem per line, "file:line:col: message".
func (e *LoadError) Error() string {
	lines := make([]string, len(e.Errors))
	for i, pe := range e.Errors {
		lines[i] = pe.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes every *PosError to errors.As and errors.Is.
func (e *LoadError) Unwrap() []error {
	errs := make([]error, len(e.Errors))
	for i, pe := range e.Errors {
		errs[i] = pe
	}
	return errs
}

// errList collects the errors of one load; parsers append to it and carry on.
type errList struct {
	errs []*PosError
}

func (l *errList) add(pos Position, format string, args ...any) {
	l.errs = append(l.errs, &PosError{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// addErr records err at pos, keeping it as the cause.
func (l *errList) addErr(pos Position, msg string, err error) {
	l.errs = append(l.errs, &PosError{Pos: pos, Msg: msg + ": " + err.Error(), err: err})
}

func (l *errList) len() int { return len(l.errs) }

// sorted returns the errors in LoadError's order, without repeats.
func (l *errList) sorted() []*PosError {
	rank := map[string]int{}
	for _, e := range l.errs {
		if _, ok := rank[e.Pos.File]; !ok {
			rank[e.Pos.File] = len(rank)
		}
	}
	// A value merged into several places (<<: *defaults) is reported once.
	type key struct {
		pos Position
		msg string
	}
	seen := map[key]bool{}
	var errs []*PosError
	for _, e := range l.errs {
		if k := (key{e.Pos, e.Msg}); !seen[k] {
			seen[k] = true
			errs = append(errs, e)
		}
	}
	slices.SortStableFunc(errs, func(a, b *PosError) int {
		return cmp.Or(
			cmp.Compare(rank[a.Pos.File], rank[b.Pos.File]),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Column, b.Pos.Column))
	})
	return errs
}

// yamlError turns an error of the YAML library into a positioned error in file,
// prefixing the message with what was being decoded (e.g. "redis.url").
func yamlError(file, what string, err error) *PosError {
	pe := &PosError{Pos: Position{File: file}, Msg: err.Error(), err: err}
	var ye yaml.Error
	if errors.As(err, &ye) {
		pe.Msg = ye.GetMessage()
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			pe.Pos.Line, pe.Pos.Column = tk.Position.Line, tk.Position.Column
		}
	}
	var unknown *yaml.UnknownFieldError
	if errors.As(err, &unknown) {
		// The library says `unknown field "x"`; the files call them keys.
		pe.Msg = strings.Replace(pe.Msg, "unknown field", "unknown key", 1)
	}
	if what != "" {
		pe.Msg = what + ": " + pe.Msg
	}
	return pe
}
