package apigateway

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/voltageems/voltage/shared/point"
)

// pointKey orders channel points for paging: channel, then type (T S C A), then id.
type pointKey struct {
	ch uint32
	t  point.Type
	id uint32
}

func typeRank(t point.Type) int {
	for i, x := range point.Types {
		if x == t {
			return i
		}
	}
	return len(point.Types)
}

func (a pointKey) less(b pointKey) bool {
	if a.ch != b.ch {
		return a.ch < b.ch
	}
	if a.t != b.t {
		return typeRank(a.t) < typeRank(b.t)
	}
	return a.id < b.id
}

func (a pointKey) String() string { return fmt.Sprintf("%d:%s:%d", a.ch, a.t, a.id) }

func parsePointKey(s string) (pointKey, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return pointKey{}, fmt.Errorf("%q is not channel:type:point", s)
	}
	ch, err1 := strconv.ParseUint(parts[0], 10, 32)
	t, err2 := point.ParseType(parts[1])
	id, err3 := strconv.ParseUint(parts[2], 10, 32)
	if err1 != nil || err2 != nil || err3 != nil {
		return pointKey{}, fmt.Errorf("%q is not channel:type:point", s)
	}
	return pointKey{uint32(ch), t, uint32(id)}, nil
}
