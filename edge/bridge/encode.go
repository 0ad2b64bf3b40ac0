package bridge

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/voltageems/voltage/shared/statestore"
)

// encodeChange writes m as the change JSON of DESIGN §4 ({"ts","v","t","q"}). It
// is the hot path of the uplink: unlike encoding/json it neither reflects nor
// sorts the keys (JSON objects are unordered). Point ids and qualities that are
// not plain identifiers — never written by statestore — go through
// encoding/json instead.
func encodeChange(m *statestore.Message) ([]byte, error) {
	buf := make([]byte, 0, 16+len(m.V)*24+len(m.T)*24+len(m.Q)*24)
	buf = append(buf, `{"ts":`...)
	buf = strconv.AppendInt(buf, m.TS, 10)
	buf = append(buf, `,"v":{`...)
	first := true
	for id, v := range m.V {
		if !plain(id) || math.IsNaN(v) || math.IsInf(v, 0) {
			return json.Marshal(m)
		}
		buf = key(buf, id, first)
		buf = appendFloat(buf, v)
		first = false
	}
	buf = append(buf, '}')
	if len(m.T) > 0 {
		buf = append(buf, `,"t":{`...)
		first = true
		for id, ts := range m.T {
			if !plain(id) {
				return json.Marshal(m)
			}
			buf = key(buf, id, first)
			buf = strconv.AppendInt(buf, ts, 10)
			first = false
		}
		buf = append(buf, '}')
	}
	if len(m.Q) > 0 {
		buf = append(buf, `,"q":{`...)
		first = true
		for id, q := range m.Q {
			if !plain(id) || !plain(q) {
				return json.Marshal(m)
			}
			buf = key(buf, id, first)
			buf = append(buf, '"')
			buf = append(buf, q...)
			buf = append(buf, '"')
			first = false
		}
		buf = append(buf, '}')
	}
	return append(buf, '}'), nil
}

func key(buf []byte, id string, first bool) []byte {
	if !first {
		buf = append(buf, ',')
	}
	buf = append(buf, '"')
	buf = append(buf, id...)
	return append(buf, '"', ':')
}

// plain reports whether s needs no escaping in JSON: letters, digits, '_', '-', '.'.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return s != ""
}

// appendFloat formats v as encoding/json does: the shortest decimal that
// round-trips, in exponent form only for very large or small magnitudes.
func appendFloat(buf []byte, v float64) []byte {
	abs := math.Abs(v)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(buf, v, format, -1, 64)
}
