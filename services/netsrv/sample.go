package netsrv

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
)

// Kinds of point sources.
const (
	KindChannel  = "channel"
	KindInstance = "instance"
)

// Sample is one point value as links see it; it is also what payload templates
// range over (see docs/netsrv.md).
type Sample struct {
	Name    string  `json:"name"`   // payload name: an alias, or c{ch}_{type}_{point} / i{inst}_{type}_{point}
	Kind    string  `json:"kind"`   // channel | instance
	Source  uint32  `json:"source"` // channel or instance id
	Type    string  `json:"type"`   // T S C A (channel), M A (instance)
	Point   uint32  `json:"point"`
	Value   float64 `json:"v"`
	TS      int64   `json:"ts"` // Unix ms
	Quality string  `json:"q"`  // good, stale, invalid, comm_lost
}

// pointRef names one point: channel:type:point or inst:id:type:point.
type pointRef struct {
	Instance bool
	Source   uint32
	Type     string
	Point    uint32
}

func (r pointRef) String() string {
	if r.Instance {
		hash := keyspace.InstanceMeasurements(r.Source)
		if r.Type == "A" {
			hash = keyspace.InstanceActions(r.Source)
		}
		return hash + ":" + strconv.FormatUint(uint64(r.Point), 10)
	}
	return fmt.Sprintf("%d:%s:%d", r.Source, r.Type, r.Point)
}

// defaultName is the payload name of a point without an alias. It starts with a
// letter so it is a valid Aliyun property identifier.
func (r pointRef) defaultName() string {
	if r.Instance {
		return fmt.Sprintf("i%d_%s_%d", r.Source, r.Type, r.Point)
	}
	return fmt.Sprintf("c%d_%s_%d", r.Source, r.Type, r.Point)
}

// parsePointRef reads "1:T:3", "1:YC:3", "inst:5:M:2" or a default name
// ("c1_T_3", "i5_M_2").
func parsePointRef(s string) (pointRef, error) {
	if len(s) > 64 {
		return pointRef{}, fmt.Errorf("point %.20q...: too long", s)
	}
	var parts []string
	instance := false
	switch {
	case strings.HasPrefix(s, keyspace.InstanceKeyPrefix):
		instance = true
		parts = strings.Split(s[len(keyspace.InstanceKeyPrefix):], ":")
	case strings.Contains(s, ":"):
		parts = strings.Split(s, ":")
	case len(s) > 1 && (s[0] == 'c' || s[0] == 'i') && strings.Count(s, "_") == 2:
		instance = s[0] == 'i'
		parts = strings.Split(s[1:], "_")
	default:
		return pointRef{}, fmt.Errorf("point %q: want channel:type:point (1:A:5), inst:id:type:point or a name like c1_A_5", s)
	}
	if len(parts) != 3 {
		return pointRef{}, fmt.Errorf("point %q: want three parts (source, type, point)", s)
	}
	src, err := parseID(parts[0])
	if err != nil {
		return pointRef{}, fmt.Errorf("point %q: source: %w", s, err)
	}
	typ, err := selectionType(instance, parts[1])
	if err != nil {
		return pointRef{}, fmt.Errorf("point %q: %w", s, err)
	}
	pt, err := parseID(parts[2])
	if err != nil {
		return pointRef{}, fmt.Errorf("point %q: point id: %w", s, err)
	}
	return pointRef{Instance: instance, Source: src, Type: typ, Point: pt}, nil
}

func parseID(s string) (uint32, error) {
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, fmt.Errorf("%q is not an id", s)
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not an id", s)
	}
	return uint32(n), nil
}

// channelType converts a ref of a channel to its point type.
func (r pointRef) channelType() (point.Type, error) {
	if r.Instance {
		return 0, fmt.Errorf("point %s is an instance point", r)
	}
	return point.ParseType(r.Type)
}

// writeTarget is what a downlink writes: a channel point, or an instance action.
type writeTarget struct {
	ref      pointRef // channel point (when action is "")
	instance uint32
	action   string // instance action name or id
}

func (w writeTarget) String() string {
	if w.action != "" {
		return keyspace.InstanceActions(w.instance) + ":" + w.action
	}
	return w.ref.String()
}

// parseWriteTarget reads a channel point (see parsePointRef) or an instance action
// "inst:{id}:A:{action}".
func parseWriteTarget(s string) (writeTarget, error) {
	if rest, ok := strings.CutPrefix(s, keyspace.InstanceKeyPrefix); ok {
		parts := strings.SplitN(rest, ":", 3)
		if len(parts) == 3 && strings.EqualFold(parts[1], "A") {
			if len(s) > 128 {
				return writeTarget{}, fmt.Errorf("action %.20q...: too long", s)
			}
			id, err := parseID(parts[0])
			if err != nil {
				return writeTarget{}, fmt.Errorf("action %q: instance: %w", s, err)
			}
			if parts[2] == "" || strings.ContainsAny(parts[2], " \t\r\n") {
				return writeTarget{}, fmt.Errorf("action %q: empty or blank action name", s)
			}
			return writeTarget{instance: id, action: parts[2]}, nil
		}
	}
	r, err := parsePointRef(s)
	return writeTarget{ref: r}, err
}
