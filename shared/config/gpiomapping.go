package config

import (
	"math"

	"github.com/voltageems/voltage/shared/point"
)

// GPIOMapping is the line a gpio point reads (S) or drives (C). The cdev backend
// needs Chip and Line, the sysfs backend GPIO; a row may give both, so one table
// serves a board whichever backend the channel uses.
type GPIOMapping struct {
	Chip string // gpiochip0, or a path such as /dev/gpiochip0; "" when not given
	Line int    // line offset on the chip; -1 when not given
	GPIO int    // global sysfs number (/sys/class/gpio/gpioN); -1 when not given
	Pos  Position
}

var gpioColumns = columns{
	allowed:  []string{"point_id", "chip", "line", "gpio"},
	required: []string{"point_id"},
}

// parseGPIOMapping reads a GPIO mapping table of points of type typ.
func parseGPIOMapping(path string, typ point.Type, src []byte, l *errList) map[point.ID]*GPIOMapping {
	t := readCSV(path, src, gpioColumns, l)
	out := map[point.ID]*GPIOMapping{}
	firstLine := map[point.ID]int{}
	for i := range t.rows {
		r := &t.rows[i]
		rr := newRowReader(t, r, l)
		id := point.ID(rr.uint("point_id", math.MaxUint32, -1))
		if !rr.ok {
			continue
		}
		if line, dup := firstLine[id]; dup {
			l.add(t.fieldPos(r, "point_id"), "second mapping row for point_id %d (first on line %d); a point has exactly one", id, line)
			continue
		}
		firstLine[id] = r.line
		if typ != point.Signal && typ != point.Control {
			l.add(t.rowPos(r), "a gpio channel has inputs (signal points) and outputs (control points) only, not %s points", typ.Name())
			continue
		}
		m := &GPIOMapping{Chip: rr.str("chip"), Line: -1, GPIO: -1, Pos: t.rowPos(r)}
		if rr.str("line") != "" {
			m.Line = int(rr.uint("line", 1023, -1))
		}
		if rr.str("gpio") != "" {
			m.GPIO = int(rr.uint("gpio", 65535, -1))
		}
		switch {
		case !rr.ok:
		case m.GPIO < 0 && (m.Chip == "" || m.Line < 0):
			rr.fail("gpio", "give chip and line (character device) or gpio (sysfs number)")
		case (m.Chip == "") != (m.Line < 0):
			rr.fail("line", "chip and line go together")
		}
		if rr.ok {
			out[id] = m
		}
	}
	return out
}
