package config

import (
	"math"
	"strings"

	"github.com/voltageems/voltage/shared/modbusmap"
	"github.com/voltageems/voltage/shared/point"
)

// pointColumns are the columns each point table may have (DESIGN §3).
var pointColumns = func() map[point.Type]columns {
	base := []string{"point_id", "signal_name", "scale", "offset", "unit", "reverse", "data_type", "description"}
	req := []string{"point_id", "signal_name"}
	with := func(extra ...string) []string { return append(append([]string(nil), base...), extra...) }
	return map[point.Type]columns{
		point.Telemetry:  {allowed: base, required: req},
		point.Signal:     {allowed: base, required: req},
		point.Control:    {allowed: with("control_type", "on_value", "off_value", "pulse_duration_ms"), required: req},
		point.Adjustment: {allowed: with("min_value", "max_value", "step"), required: req},
	}
}()

// pointTable is one parsed point table of a channel.
type pointTable struct {
	path   string
	points []Point
	failed map[point.ID]bool // ids of rows left out because of an error
	broken bool              // see csvTable.broken
}

// settled reports whether a check against this table may trust that id is absent:
// the table is complete and no row with this id was left out for an error.
func (pt *pointTable) settled(id point.ID) bool {
	return !pt.broken && !pt.failed[id]
}

// parsePointTable parses {type}.csv; every problem goes to l.
func parsePointTable(path string, typ point.Type, src []byte, l *errList) pointTable {
	t := readCSV(path, src, pointColumns[typ], l)
	pt := pointTable{path: path, broken: t.broken, failed: map[point.ID]bool{}}
	firstLine := map[point.ID]int{}
	for i := range t.rows {
		r := &t.rows[i]
		rr := newRowReader(t, r, l)
		p, idOK := readPoint(rr, typ)
		if !idOK {
			continue
		}
		if line, dup := firstLine[p.ID]; dup {
			l.add(t.fieldPos(r, "point_id"), "duplicate point_id %d (first defined on line %d)", p.ID, line)
			continue
		}
		firstLine[p.ID] = r.line
		if !rr.ok {
			pt.failed[p.ID] = true
			continue
		}
		pt.points = append(pt.points, p)
	}
	return pt
}

// readPoint reads one row; idOK says whether its point_id could be read.
func readPoint(rr *rowReader, typ point.Type) (p Point, idOK bool) {
	id := point.ID(rr.uint("point_id", math.MaxUint32, -1))
	idOK = rr.ok
	p = Point{
		ID:          id,
		Type:        typ,
		Name:        rr.required("signal_name"),
		Scale:       rr.float("scale", 1),
		Offset:      rr.float("offset", 0),
		Unit:        rr.str("unit"),
		Reverse:     rr.bool("reverse"),
		DataType:    rr.str("data_type"),
		Description: rr.str("description"),
		Pos:         rr.t.rowPos(rr.r),
	}
	if p.Scale == 0 || math.IsNaN(p.Scale) || math.IsInf(p.Scale, 0) {
		// A zero scale would turn every reading into the offset and make commands
		// impossible to convert back to a raw value.
		rr.fail("scale", "scale must be a non-zero finite number, got %v", p.Scale)
	}
	if math.IsNaN(p.Offset) || math.IsInf(p.Offset, 0) {
		rr.fail("offset", "offset must be a finite number, got %v", p.Offset)
	}
	if p.DataType != "" && !strings.EqualFold(p.DataType, "string") {
		if _, err := modbusmap.ParseDataType(p.DataType); err != nil {
			rr.fail("data_type", "%v", err)
		}
	}
	switch typ {
	case point.Adjustment:
		readLimits(rr, &p)
	case point.Control:
		readControl(rr, &p)
	}
	return p, idOK
}

func readLimits(rr *rowReader, p *Point) {
	p.Min, p.Max, p.Step = rr.optFloat("min_value"), rr.optFloat("max_value"), rr.optFloat("step")
	if p.Min != nil && p.Max != nil && *p.Min > *p.Max {
		rr.fail("max_value", "max_value %v is below min_value %v", *p.Max, *p.Min)
	}
	if p.Step != nil && *p.Step <= 0 {
		rr.fail("step", "step must be > 0, got %v", *p.Step)
	}
}

// Control types of a control table.
const (
	ControlMomentary = "momentary"
	ControlLatching  = "latching"
	ControlPulse     = "pulse"
)

func readControl(rr *rowReader, p *Point) {
	p.ControlType = strings.ToLower(rr.str("control_type"))
	switch p.ControlType {
	case "", ControlMomentary, ControlLatching, ControlPulse:
	default:
		rr.fail("control_type", "unknown control type %q (want momentary, latching or pulse, or leave it empty)", rr.str("control_type"))
	}
	p.OnValue, p.OffValue = rr.optFloat("on_value"), rr.optFloat("off_value")
	p.PulseDurationMS = int(rr.uint("pulse_duration_ms", math.MaxInt32, 0))
	if p.ControlType == ControlPulse && p.PulseDurationMS == 0 && rr.ok {
		rr.fail("pulse_duration_ms", "a pulse control needs pulse_duration_ms > 0")
	}
}
