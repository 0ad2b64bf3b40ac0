package config

import "github.com/voltageems/voltage/shared/point"

// mappingTable is one parsed {type}_mapping.csv of a protocol in which every point
// has exactly one mapping row (Modbus, IEC 104). M is the protocol's mapping.
type mappingTable[M any] struct {
	path   string
	absent bool // the file does not exist
	rows   []mappingRow[M]
	failed map[point.ID]bool // ids of rows left out because of an error
	broken bool              // see csvTable.broken
}

type mappingRow[M any] struct {
	id    point.ID
	idPos Position
	m     M
}

// settled reports whether the table's verdict on point id can be trusted: a row
// with an error, or a table that could not be read, says nothing about it.
func (mt *mappingTable[M]) settled(id point.ID) bool {
	return !mt.broken && !mt.failed[id]
}

// join attaches every mapping row to its point with attach, and reports rows
// without a point and points without a row (attached tells whether a point got
// one). channel names the kind of channel in messages, e.g. "a Modbus channel".
func (mt *mappingTable[M]) join(pt *pointTable, channel string, attach func(*Point, M), attached func(*Point) bool, l *errList) {
	index := make(map[point.ID]int, len(pt.points))
	for i, p := range pt.points {
		index[p.ID] = i
	}
	for _, row := range mt.rows {
		i, ok := index[row.id]
		if !ok {
			if pt.settled(row.id) {
				l.add(row.idPos, "point_id %d is not in %s", row.id, pt.path)
			}
			continue
		}
		attach(&pt.points[i], row.m)
	}
	var unmapped []point.ID
	for i := range pt.points {
		if p := &pt.points[i]; !attached(p) && mt.settled(p.ID) {
			unmapped = append(unmapped, p.ID)
		}
	}
	if len(unmapped) == 0 {
		return
	}
	if mt.absent {
		l.add(Position{File: mt.path}, "file missing: this is %s, so each point of %s needs a mapping row here (point_id %s)",
			channel, pt.path, formatIDs(unmapped))
		return
	}
	l.add(Position{File: mt.path}, "no mapping row for %d point(s) of %s: point_id %s (every point of %s needs exactly one)",
		len(unmapped), pt.path, formatIDs(unmapped), channel)
}
