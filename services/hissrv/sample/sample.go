// Package sample is hissrv's unit of history: one value of one point at its sample
// time, taken from a voltage:changes entry, and the series names and labels every
// backend and the query API share.
package sample

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/voltageems/voltage/shared/changefeed"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
)

// Metric names in the embedded store and the Prometheus-compatible API.
const (
	// Metric holds every value of every point, whatever its quality.
	Metric = "voltage_point"
	// QualityMetric holds the quality code (see QualityCode) of a point for each
	// sample that is not good, and a 0 when the point becomes good again.
	QualityMetric = "voltage_point_quality"
)

// Label names. A series is one point: {site, kind, channel|instance, type, point}.
const (
	LabelSite     = "site"
	LabelKind     = "kind" // KindChannel or KindInstance
	LabelChannel  = "channel"
	LabelInstance = "instance"
	LabelType     = "type"  // T, S, C, A (channel) or M, A (instance)
	LabelPoint    = "point" // the point id (the field of the hash)
)

// Kinds of point.
const (
	KindChannel  = "channel"
	KindInstance = "instance"
)

// Point identifies one point of the site: a field of a channel or instance hash.
type Point struct {
	Instance bool   // inst:{id}:{M|A}; false for comsrv:{ch}:{T|S|C|A}
	ID       uint32 // channel or instance id
	Family   string // T, S, C, A or M
	Field    string // the point id as written in the hash
}

// Key is the Redis hash the point lives in.
func (p Point) Key() string {
	if p.Instance {
		if p.Family == "A" {
			return keyspace.InstanceActions(p.ID)
		}
		return keyspace.InstanceMeasurements(p.ID)
	}
	t, _ := point.ParseType(p.Family)
	return keyspace.ChannelPoints(p.ID, t)
}

// String is the point's name in the query API: its hash key and field,
// e.g. "comsrv:1:T:5" or "inst:3:M:12".
func (p Point) String() string { return p.Key() + ":" + p.Field }

// ParsePoint reads the name String writes.
func ParsePoint(s string) (Point, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return Point{}, fmt.Errorf("point %q: want <hash>:<point id>, e.g. comsrv:1:T:5 or inst:3:M:12", s)
	}
	key, field := s[:i], s[i+1:]
	src, ok := keyspace.ParseChangeKey(key)
	if !ok {
		return Point{}, fmt.Errorf("point %q: %q is not a channel or instance hash (comsrv:{ch}:{T|S|C|A} or inst:{id}:{M|A})", s, key)
	}
	if err := checkField(field); err != nil {
		return Point{}, fmt.Errorf("point %q: %w", s, err)
	}
	return Point{Instance: src.Instance, ID: src.ID, Family: src.Family, Field: field}, nil
}

func checkField(f string) error {
	if f == "" {
		return errors.New("empty point id")
	}
	if len(f) > 128 {
		return errors.New("point id longer than 128 bytes")
	}
	for _, r := range f {
		if r < 0x20 || r == 0x7f {
			return errors.New("point id holds a control character")
		}
	}
	return nil
}

// Labels returns the series labels of the point under metric name.
func (p Point) Labels(metric, site string) labels.Labels {
	b := labels.NewScratchBuilder(6)
	p.AppendLabels(&b, metric, site)
	return b.Labels()
}

// AppendLabels builds the labels into b (reset first), for callers that reuse a builder.
func (p Point) AppendLabels(b *labels.ScratchBuilder, metric, site string) {
	b.Reset()
	b.Add(labels.MetricName, metric)
	b.Add(LabelSite, site)
	if p.Instance {
		b.Add(LabelKind, KindInstance)
		b.Add(LabelInstance, strconv.FormatUint(uint64(p.ID), 10))
	} else {
		b.Add(LabelKind, KindChannel)
		b.Add(LabelChannel, strconv.FormatUint(uint64(p.ID), 10))
	}
	b.Add(LabelType, p.Family)
	b.Add(LabelPoint, p.Field)
	b.Sort()
}

// FromLabels recovers the point from a series' labels.
func FromLabels(ls labels.Labels) (Point, bool) {
	var p Point
	var idText string
	switch ls.Get(LabelKind) {
	case KindChannel:
		idText = ls.Get(LabelChannel)
	case KindInstance:
		p.Instance = true
		idText = ls.Get(LabelInstance)
	default:
		return Point{}, false
	}
	id, err := strconv.ParseUint(idText, 10, 32)
	if err != nil {
		return Point{}, false
	}
	p.ID, p.Family, p.Field = uint32(id), ls.Get(LabelType), ls.Get(LabelPoint)
	return p, p.Family != "" && p.Field != ""
}

// Sample is one value of one point at its sample time.
type Sample struct {
	Point   Point
	TS      int64 // Unix ms of the sample (not of its collection)
	Value   float64
	Quality point.Quality
}

// QualityCode is the value stored in QualityMetric: 0 good, 1 stale, 2 invalid, 3 comm_lost.
func QualityCode(q point.Quality) float64 { return float64(q) }

// FromEntry turns one change entry into its samples, in point id order (numeric
// ids numerically) so that a batch always produces the same sequence.
func FromEntry(e changefeed.Entry, dst []Sample) ([]Sample, error) {
	src, ok := keyspace.ParseChangeKey(e.Key)
	if !ok {
		return dst, fmt.Errorf("entry %s: key %q is not a channel or instance hash", e.ID, e.Key)
	}
	ids := make([]string, 0, len(e.Message.V))
	for id := range e.Message.V {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return lessID(ids[i], ids[j]) })
	for _, id := range ids {
		if checkField(id) != nil {
			continue
		}
		dst = append(dst, Sample{
			Point:   Point{Instance: src.Instance, ID: src.ID, Family: src.Family, Field: id},
			TS:      e.Message.PointTS(id),
			Value:   e.Message.V[id],
			Quality: e.Message.Quality(id),
		})
	}
	return dst, nil
}

func lessID(a, b string) bool {
	if len(a) != len(b) {
		na, ea := strconv.ParseUint(a, 10, 64)
		nb, eb := strconv.ParseUint(b, 10, 64)
		if ea == nil && eb == nil {
			return na < nb
		}
	}
	return a < b
}
