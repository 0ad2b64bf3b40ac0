package config

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"strings"
	"unicode/utf8"
)

// csvTable is a CSV file read by header name: columns may come in any order, names
// are case-insensitive and trimmed, a UTF-8 BOM is ignored, and blank lines, lines
// of empty fields (spreadsheet exports) and lines starting with # are skipped.
type csvTable struct {
	path  string
	index map[string]int // column name → field index
	rows  []csvRow

	// broken says the table is not completely known: a syntax error ended reading
	// early, or the header is wrong. Checks across tables (is every point mapped?)
	// skip a broken table rather than report consequences of its error.
	broken bool

	src        []byte
	lineStarts []int // byte offset of each line, for character columns
}

// csvRow is one data row.
type csvRow struct {
	line   int
	fields []string // trimmed
	cols   []int    // 1-based character column where each field starts
}

// columns describes the header a table may have.
type columns struct {
	allowed  []string // in the documented order, for messages
	required []string
}

const utf8BOM = "\xEF\xBB\xBF"

// readCSV reads a table, reporting syntax and header errors to l. Rows with the wrong
// number of fields are reported and left out.
func readCSV(path string, src []byte, spec columns, l *errList) *csvTable {
	src = bytes.TrimPrefix(src, []byte(utf8BOM))
	t := &csvTable{path: path, src: src, index: map[string]int{}}
	if !utf8.Valid(src) {
		off := firstInvalidUTF8(src)
		line, col := t.lineCol(off)
		l.add(Position{File: path, Line: line, Column: col},
			"not UTF-8 text; save the table as UTF-8 (a table saved as GBK converts with: iconv -f GBK -t UTF-8)")
		t.broken = true
		return t
	}

	r := csv.NewReader(bytes.NewReader(src))
	r.Comment = '#'
	r.FieldsPerRecord = -1 // a row of the wrong width is reported by line, below
	r.TrimLeadingSpace = true

	headerRead := false
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.reportSyntax(err, l)
			t.broken = true
			break
		}
		if blank(rec) {
			continue
		}
		row := csvRow{fields: make([]string, len(rec)), cols: make([]int, len(rec))}
		for i, f := range rec {
			line, byteCol := r.FieldPos(i)
			if i == 0 {
				row.line = line
			}
			row.fields[i] = strings.TrimSpace(f)
			row.cols[i] = t.charCol(line, byteCol)
		}
		if !headerRead {
			headerRead = true
			if !t.readHeader(row, spec, l) {
				t.broken = true
				return t
			}
			continue
		}
		if len(row.fields) != len(t.index) {
			l.add(t.rowPos(&row), "row has %d fields, the header has %d", len(row.fields), len(t.index))
			// Which point the row meant is unknown: checks across tables skip this one.
			t.broken = true
			continue
		}
		t.rows = append(t.rows, row)
	}
	return t
}

// readHeader indexes the header row. It reports false when the rows cannot be read
// by name (a required column is missing, or a name is empty or repeated).
func (t *csvTable) readHeader(h csvRow, spec columns, l *errList) bool {
	usable := true
	for i, f := range h.fields {
		name := strings.ToLower(f)
		pos := Position{File: t.path, Line: h.line, Column: h.cols[i]}
		switch first, dup := t.index[name]; {
		case name == "":
			l.add(pos, "header column %d has no name", i+1)
			usable = false
		case dup:
			l.add(pos, "column %q appears twice in the header (also column %d)", name, first+1)
			usable = false
		case !contains(spec.allowed, name):
			// Kept in the index so rows still line up; the table is marked broken.
			l.add(pos, "unknown column %q (known columns: %s)", name, strings.Join(spec.allowed, ", "))
			t.broken = true
		}
		if _, dup := t.index[name]; !dup && name != "" {
			t.index[name] = i
		}
	}
	for _, req := range spec.required {
		if _, ok := t.index[req]; !ok {
			l.add(Position{File: t.path, Line: h.line, Column: 1}, "missing required column %q", req)
			usable = false
		}
	}
	return usable
}

func (t *csvTable) reportSyntax(err error, l *errList) {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		l.addErr(Position{File: t.path}, "read CSV", err)
		return
	}
	pos := Position{File: t.path, Line: pe.Line, Column: t.charCol(pe.Line, pe.Column)}
	msg := "malformed CSV: " + pe.Err.Error()
	if errors.Is(pe.Err, csv.ErrBareQuote) || errors.Is(pe.Err, csv.ErrQuote) {
		msg += ` (a field holding " must be quoted as a whole, with each " written as "")`
	}
	if pe.StartLine != pe.Line {
		msg += " in the row starting on line " + itoa(pe.StartLine)
	}
	l.errs = append(l.errs, &PosError{Pos: pos, Msg: msg, err: err})
}

// value is the row's field in the column; "" when the table has no such column.
func (t *csvTable) value(r *csvRow, col string) string {
	if i, ok := t.index[col]; ok && i < len(r.fields) {
		return r.fields[i]
	}
	return ""
}

// fieldPos is where the row's field in the column starts (the row's start when the
// table has no such column).
func (t *csvTable) fieldPos(r *csvRow, col string) Position {
	if i, ok := t.index[col]; ok && i < len(r.cols) {
		return Position{File: t.path, Line: r.line, Column: r.cols[i]}
	}
	return t.rowPos(r)
}

func (t *csvTable) rowPos(r *csvRow) Position {
	return Position{File: t.path, Line: r.line, Column: 1}
}

// charCol converts csv's 1-based byte column on a line into the 1-based character
// column an editor shows.
func (t *csvTable) charCol(line, byteCol int) int {
	if t.lineStarts == nil {
		t.lineStarts = []int{0}
		for i, b := range t.src {
			if b == '\n' {
				t.lineStarts = append(t.lineStarts, i+1)
			}
		}
	}
	if line < 1 || line > len(t.lineStarts) || byteCol < 1 {
		return byteCol
	}
	start := t.lineStarts[line-1]
	end := min(start+byteCol-1, len(t.src))
	return utf8.RuneCount(t.src[start:end]) + 1
}

// lineCol is the 1-based line and byte column of offset off.
func (t *csvTable) lineCol(off int) (line, col int) {
	line = 1 + bytes.Count(t.src[:off], []byte{'\n'})
	col = off - (bytes.LastIndexByte(t.src[:off], '\n') + 1) + 1
	return line, col
}

func firstInvalidUTF8(b []byte) int {
	for off := 0; off < len(b); {
		r, size := utf8.DecodeRune(b[off:])
		if r == utf8.RuneError && size == 1 {
			return off
		}
		off += size
	}
	return len(b)
}

// blank reports whether every field is empty or spaces (e.g. ",,,," from a
// spreadsheet, or a line of spaces).
func blank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}
