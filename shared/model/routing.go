package model

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
)

// RoutingFile is the name of an instance's routing table in instances/{name}/.
const RoutingFile = "channel_routing.csv"

// Routing columns, compatible with the original VoltageEMS.
var (
	routingColumns  = []string{"channel_id", "channel_type", "channel_point_id", "instance_type", "instance_point_id", "description"}
	routingRequired = routingColumns[:5]
)

// parseRouting reads one instance's channel_routing.csv and checks every row
// against the instance's product and the site's channels.
func parseRouting(path string, src []byte, inst *Instance, chans *config.Config, l *errList) []*Route {
	src = bytes.TrimPrefix(src, []byte("\xEF\xBB\xBF"))
	if !utf8.Valid(src) {
		l.add(config.Position{File: path}, "not UTF-8 text; save the table as UTF-8")
		return nil
	}
	r := csv.NewReader(bytes.NewReader(src))
	r.Comment = '#'
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	var (
		index  map[string]int
		routes []*Route
		seen   = map[PointRef]*Route{}
	)
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			pos := config.Position{File: path}
			if errors.As(err, &pe) {
				pos.Line, pos.Column = pe.Line, pe.Column
				err = pe.Err
			}
			l.add(pos, "CSV syntax: %v", err)
			return routes
		}
		line, _ := r.FieldPos(0)
		at := func(col int) config.Position {
			p := config.Position{File: path, Line: line, Column: 1}
			if col >= 0 && col < len(rec) {
				p.Line, p.Column = r.FieldPos(col)
			}
			return p
		}
		if blankRecord(rec) {
			continue
		}
		if index == nil {
			index = map[string]int{}
			for i, h := range rec {
				name := strings.ToLower(strings.TrimSpace(h))
				if !oneOf(name, routingColumns...) {
					l.add(at(i), "unknown column %q; the columns are %s", h, strings.Join(routingColumns, ","))
					return nil
				}
				if _, dup := index[name]; dup {
					l.add(at(i), "column %q appears twice", name)
					return nil
				}
				index[name] = i
			}
			for _, c := range routingRequired {
				if _, ok := index[c]; !ok {
					l.add(at(0), "missing column %q; a routing table has the columns %s", c, strings.Join(routingColumns, ","))
					return nil
				}
			}
			continue
		}
		if len(rec) != len(index) {
			l.add(at(0), "row has %d fields; the header has %d", len(rec), len(index))
			continue
		}
		field := func(col string) (string, config.Position) {
			i, ok := index[col]
			if !ok {
				return "", at(0)
			}
			return strings.TrimSpace(rec[i]), at(i)
		}
		if rt := readRoute(field, inst, chans, l); rt != nil {
			rt.Pos = at(0)
			key := PointRef{inst.ID, rt.Point}
			if rt.Kind == Action {
				key.Point |= 1 << 31 // actions and measurements have separate id spaces
			}
			if prev := seen[key]; prev != nil {
				l.add(rt.Pos, "%s %d of instance %s is already routed at line %d", kindName(rt.Kind), rt.Point, inst.Name, prev.Pos.Line)
				continue
			}
			seen[key] = rt
			routes = append(routes, rt)
		}
	}
	return routes
}

func blankRecord(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

func kindName(k point.Type) string {
	if k == Action {
		return "action"
	}
	return "measurement"
}

// readRoute checks one row; nil when it is wrong (the errors are reported).
func readRoute(field func(string) (string, config.Position), inst *Instance, chans *config.Config, l *errList) *Route {
	rt := &Route{Instance: inst}
	s, pos := field("channel_id")
	ch, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		l.add(pos, "channel_id %q is not a channel id", s)
		return nil
	}
	rt.Channel = uint32(ch)
	s, tpos := field("channel_type")
	if rt.ChannelType, err = point.ParseType(s); err != nil {
		l.add(tpos, "channel_type %q: want T, S, C or A (or YC, YX, YK, YT)", s)
		return nil
	}
	s, ppos := field("channel_point_id")
	pid, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		l.add(ppos, "channel_point_id %q is not a point id", s)
		return nil
	}
	rt.ChannelPoint = point.ID(pid)
	s, kpos := field("instance_type")
	switch strings.ToLower(s) {
	case "m", "measurement", "measurements":
		rt.Kind = Measurement
	case "a", "action", "actions":
		rt.Kind = Action
	default:
		l.add(kpos, "instance_type %q: want M (measurement) or A (action)", s)
		return nil
	}
	rt.Description, _ = field("description")

	s, ipos := field("instance_point_id")
	var def *PointDef
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		if rt.Kind == Measurement {
			def = inst.Product.Measurement(uint32(n))
		} else {
			def = inst.Product.Action(uint32(n))
		}
	} else if rt.Kind == Measurement {
		def = inst.Product.MeasurementByName(s)
	} else {
		def = inst.Product.ActionByName(s)
	}
	if def == nil {
		l.add(ipos, "product %s has no %s %q", inst.Product.ID, kindName(rt.Kind), s)
		return nil
	}
	rt.Point = def.ID

	c := chans.Channel(rt.Channel)
	if c == nil {
		l.add(pos, "channel %d does not exist in comsrv/channels.yaml", rt.Channel)
		return nil
	}
	cp := c.Point(rt.ChannelType, rt.ChannelPoint)
	if cp == nil {
		l.add(ppos, "channel %d (%s) has no %s point %d", rt.Channel, c.Name, rt.ChannelType.Name(), rt.ChannelPoint)
		return nil
	}
	switch {
	case rt.Kind == Measurement && rt.ChannelType.Writable():
		l.add(tpos, "measurement %s reads a %s point; measurements come from telemetry (T) or signal (S) points", def.Name, rt.ChannelType.Name())
		return nil
	case rt.Kind == Action && !rt.ChannelType.Writable():
		l.add(tpos, "action %s writes a %s point; actions go to control (C) or adjustment (A) points", def.Name, rt.ChannelType.Name())
		return nil
	case (def.Type == TypeBool) != rt.ChannelType.Digital():
		l.add(tpos, "%s %s is %s but channel %d %s point %d (%s) is %s", kindName(rt.Kind), def.Name, def.Type,
			rt.Channel, rt.ChannelType.Name(), rt.ChannelPoint, cp.Name, digitalName(rt.ChannelType))
		return nil
	}
	return rt
}

func digitalName(t point.Type) string {
	if t.Digital() {
		return "digital"
	}
	return "analog"
}
