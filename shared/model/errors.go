package model

import (
	"cmp"
	"fmt"
	"slices"

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
