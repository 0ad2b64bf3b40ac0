package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// rowReader reads typed fields of one CSV row. Every bad field is reported with its
// position; ok turns false and the row is left out.
type rowReader struct {
	t  *csvTable
	r  *csvRow
	l  *errList
	ok bool
}

func newRowReader(t *csvTable, r *csvRow, l *errList) *rowReader {
	return &rowReader{t: t, r: r, l: l, ok: true}
}

func (rr *rowReader) fail(col, format string, args ...any) {
	rr.ok = false
	rr.l.add(rr.t.fieldPos(rr.r, col), "column %q: %s", col, fmt.Sprintf(format, args...))
}

func (rr *rowReader) str(col string) string { return rr.t.value(rr.r, col) }

// required returns the field, reporting it when empty.
func (rr *rowReader) required(col string) string {
	v := rr.str(col)
	if v == "" {
		rr.fail(col, "value required")
	}
	return v
}

// uint parses an unsigned integer no larger than max. An empty field is def when
// def >= 0 and an error otherwise.
func (rr *rowReader) uint(col string, max uint64, def int64) uint64 {
	v := rr.str(col)
	if v == "" {
		if def < 0 {
			rr.fail(col, "value required")
			return 0
		}
		return uint64(def)
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > max {
		rr.fail(col, "want a whole number 0..%d, got %q", max, v)
		return 0
	}
	return n
}

// float parses a finite number; an empty field is def.
func (rr *rowReader) float(col string, def float64) float64 {
	if p := rr.optFloat(col); p != nil {
		return *p
	}
	return def
}

// optFloat parses a finite number (or a hex integer, 0xFF00); nil when the field is
// empty or bad.
func (rr *rowReader) optFloat(col string) *float64 {
	v := rr.str(col)
	if v == "" {
		return nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if lower := strings.ToLower(v); err != nil && strings.HasPrefix(lower, "0x") {
		// Raw register values are often written in hex (a coil's on is 0xFF00).
		var n uint64
		n, err = strconv.ParseUint(lower[2:], 16, 64)
		f = float64(n)
	}
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		rr.fail(col, "invalid number %q", v)
		return nil
	}
	return &f
}

// bool accepts 1/0, true/false, yes/no in any case; empty is false.
func (rr *rowReader) bool(col string) bool {
	v := rr.str(col)
	switch strings.ToLower(v) {
	case "", "0", "false", "no":
		return false
	case "1", "true", "yes":
		return true
	}
	rr.fail(col, "want 1/0, true/false or yes/no, got %q", v)
	return false
}
