package apigateway

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
)

// pointValue is one realtime value as the API shows it.
type pointValue struct {
	Channel uint32   `json:"channel,omitempty" doc:"channel id (channel points)"`
	Type    string   `json:"type,omitempty" enum:"T,S,C,A" doc:"point type (channel points)"`
	Point   uint32   `json:"point" doc:"point id (or measurement id of an instance)"`
	Value   *float64 `json:"value" doc:"engineering value; null when the point has never been read"`
	Quality string   `json:"quality" doc:"good, or why the value is not to be trusted"`
	TS      int64    `json:"ts,omitempty" doc:"Unix ms of the sample"`
}

// family is a set of hashes holding one kind of value: a channel's points of one
// type, or an instance's measurements.
type family struct {
	values, ts, quality string // quality "" = no quality hash (C and A)
}

func channelFamily(ch uint32, t point.Type) family {
	f := family{values: keyspace.ChannelPoints(ch, t), ts: keyspace.ChannelTimestamps(ch, t)}
	if t == point.Telemetry || t == point.Signal {
		f.quality = keyspace.ChannelQuality(ch, t)
	}
	return f
}

func instanceFamily(id uint32) family {
	return family{values: keyspace.InstanceMeasurements(id), ts: keyspace.InstanceMeasurementTimestamps(id),
		quality: keyspace.InstanceMeasurementQuality(id)}
}

// familyRead is a pipelined read of a family: all of it (ids == nil) or some ids.
type familyRead struct {
	ids               []string
	values, ts, q     *redis.SliceCmd
	allV, allTS, allQ *redis.MapStringStringCmd
}

func queueRead(ctx context.Context, p redis.Pipeliner, f family, ids []string) *familyRead {
	r := &familyRead{ids: ids}
	if ids == nil {
		r.allV = p.HGetAll(ctx, f.values)
		r.allTS = p.HGetAll(ctx, f.ts)
		if f.quality != "" {
			r.allQ = p.HGetAll(ctx, f.quality)
		}
		return r
	}
	r.values = p.HMGet(ctx, f.values, ids...)
	r.ts = p.HMGet(ctx, f.ts, ids...)
	if f.quality != "" {
		r.q = p.HMGet(ctx, f.quality, ids...)
	}
	return r
}

// result turns the replies into values (sorted by id for a whole family). Points
// asked for by id but missing come back with a null value and quality "missing".
func (r *familyRead) result(proto pointValue) ([]pointValue, error) {
	if r.ids == nil {
		vals, err := r.allV.Result()
		if err != nil {
			return nil, err
		}
		ts, _ := r.allTS.Result()
		var q map[string]string
		if r.allQ != nil {
			q, _ = r.allQ.Result()
		}
		out := make([]pointValue, 0, len(vals))
		for id, v := range vals {
			pv, ok := makeValue(proto, id, v, ts[id], q[id])
			if ok {
				out = append(out, pv)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Point < out[j].Point })
		return out, nil
	}
	vals, err := r.values.Result()
	if err != nil {
		return nil, err
	}
	ts, _ := r.ts.Result()
	var q []any
	if r.q != nil {
		q, _ = r.q.Result()
	}
	out := make([]pointValue, 0, len(r.ids))
	for i, id := range r.ids {
		if vals[i] == nil {
			n, _ := strconv.ParseUint(id, 10, 32)
			pv := proto
			pv.Point = uint32(n)
			pv.Quality = "missing"
			out = append(out, pv)
			continue
		}
		pv, _ := makeValue(proto, id, str(vals[i]), str(at(ts, i)), str(at(q, i)))
		out = append(out, pv)
	}
	return out, nil
}

func at(s []any, i int) any {
	if i < len(s) {
		return s[i]
	}
	return nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func makeValue(proto pointValue, id, v, ts, q string) (pointValue, bool) {
	n, err := strconv.ParseUint(id, 10, 32)
	if err != nil {
		return proto, false
	}
	pv := proto
	pv.Point = uint32(n)
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		pv.Value = &f
		pv.Quality = "good"
	} else {
		pv.Quality = "invalid"
	}
	if q != "" {
		pv.Quality = q
	}
	pv.TS, _ = strconv.ParseInt(ts, 10, 64)
	return pv, true
}

// pattern selects channel points: "{channel}:{type}:{point}", each part a number
// (a letter for the type) or *, e.g. "1:T:*", "*:S:*", "3:*:17".
type pattern struct {
	channel *uint32
	types   []point.Type
	point   string // "" = every point
}

func parsePattern(s string) (pattern, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return pattern{}, fmt.Errorf("pattern %q: want channel:type:point, each a value or *", s)
	}
	var p pattern
	if parts[0] != "*" {
		n, err := strconv.ParseUint(parts[0], 10, 32)
		if err != nil {
			return pattern{}, fmt.Errorf("pattern %q: channel %q is neither a number nor *", s, parts[0])
		}
		c := uint32(n)
		p.channel = &c
	}
	if parts[1] == "*" {
		p.types = point.Types[:]
	} else {
		t, err := point.ParseType(parts[1])
		if err != nil {
			return pattern{}, fmt.Errorf("pattern %q: type %q is not T, S, C, A or *", s, parts[1])
		}
		p.types = []point.Type{t}
	}
	if parts[2] != "*" {
		n, err := strconv.ParseUint(parts[2], 10, 32)
		if err != nil {
			return pattern{}, fmt.Errorf("pattern %q: point %q is neither a number nor *", s, parts[2])
		}
		p.point = strconv.FormatUint(n, 10) // "007" is point 7, the hash field "7"

	}
	return p, nil
}
