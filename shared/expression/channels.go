package expression

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/voltageems/voltage/shared/point"
)

// Channel point references, for rules and alarms that read a channel point no
// instance models: ch{channel}.{T|S|C|A}{point}, e.g. ch2.T101 (channel 2,
// telemetry point 101) or ch10.A1. They resolve to a Ref whose Instance is
// "ch{channel}" and whose Point is the type letter and the point id, so a
// program's Inputs name them like any other input; ParseChannelRef reads such a
// Ref back.

var channelRefInstance = regexp.MustCompile(`^ch([0-9]{1,10})$`)
var channelRefPoint = regexp.MustCompile(`^([TSCA])([0-9]{1,10})$`)

// ChannelPointChecker says whether a channel point exists (nil error) or why not.
type ChannelPointChecker func(channel uint32, t point.Type, id point.ID) error

// ChannelResolver resolves channel point references (ch2.T101) and hands every
// other name to Base. An instance of Base whose name looks like a channel
// reference (an instance named ch2) makes the reference ambiguous: that is an
// error rather than a silent choice.
type ChannelResolver struct {
	Base Resolver
	// Check, when set, rejects references to points that do not exist.
	Check ChannelPointChecker
	// Known, when set, tells whether Base knows an instance of that name (to report
	// the ambiguity above).
	Known func(instance string) bool
}

// Lookup resolves instance.name.
func (r *ChannelResolver) Lookup(instance, name string) (Ref, any, bool, error) {
	if ch, ok := parseChannelInstance(instance); ok {
		if r.Known != nil && r.Known(instance) {
			return Ref{}, nil, false, fmt.Errorf("%s is both an instance and a channel reference; rename the instance", instance)
		}
		t, id, ok := parseChannelPoint(name)
		if !ok {
			return Ref{}, nil, false, fmt.Errorf("a channel point is written ch{channel}.{T|S|C|A}{point}, e.g. ch2.T101; %q is not a type letter and a point id", name)
		}
		if r.Check != nil {
			if err := r.Check(ch, t, id); err != nil {
				return Ref{}, nil, false, err
			}
		}
		return Ref{Instance: instance, Point: name}, nil, false, nil
	}
	if r.Base == nil {
		return Ref{}, nil, false, fmt.Errorf("no instance named %q", instance)
	}
	return r.Base.Lookup(instance, name)
}

// Select hands aggregates to Base: selectors match instances only.
func (r *ChannelResolver) Select(selector, name string) ([]Ref, error) {
	if r.Base == nil {
		return nil, fmt.Errorf("no instances to select from")
	}
	return r.Base.Select(selector, name)
}

// ChannelRef builds the Ref of a channel point.
func ChannelRef(channel uint32, t point.Type, id point.ID) Ref {
	return Ref{Instance: "ch" + strconv.FormatUint(uint64(channel), 10), Point: t.String() + strconv.FormatUint(uint64(id), 10)}
}

// ParseChannelRef reads a Ref made by ChannelResolver (or ChannelRef) back into
// the channel point. ok is false for an instance measurement.
func ParseChannelRef(r Ref) (channel uint32, t point.Type, id point.ID, ok bool) {
	ch, ok := parseChannelInstance(r.Instance)
	if !ok {
		return 0, 0, 0, false
	}
	t, id, ok = parseChannelPoint(r.Point)
	if !ok {
		return 0, 0, 0, false
	}
	return ch, t, id, true
}

func parseChannelInstance(s string) (uint32, bool) {
	m := channelRefInstance.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseUint(m[1], 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(n), true
}

func parseChannelPoint(s string) (point.Type, point.ID, bool) {
	m := channelRefPoint.FindStringSubmatch(s)
	if m == nil {
		return 0, 0, false
	}
	n, err := strconv.ParseUint(m[2], 10, 32)
	if err != nil {
		return 0, 0, false
	}
	return point.Type(m[1][0]), point.ID(n), true
}
