package query

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/voltageems/voltage/services/hissrv/sample"
)

// MaxPoints caps the points of one series in one answer, as Prometheus does: a
// step that would return more is refused with the reason.
const MaxPoints = 11_000

// MaxSeries caps the points one range or latest request may name.
const MaxSeries = 100

// Aggregations of the range API.
var Aggregations = []string{"avg", "min", "max", "last", "sum", "count"}

// ParseTime reads a time as Prometheus does — Unix seconds with an optional
// fraction, or RFC 3339 — plus "now" and "now-<duration>" (e.g. now-24h).
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return time.Time{}, errors.New("empty time")
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "now-"):
		d, err := ParseDuration(s[4:])
		if err != nil {
			return time.Time{}, err
		}
		return now.Add(-d), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || f < -1e11 || f > 1e11 {
			return time.Time{}, fmt.Errorf("time %q out of range", s)
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: want Unix seconds, RFC 3339, now or now-<duration>", s)
	}
	if t.Year() < 1 || t.Year() > 5000 {
		return time.Time{}, fmt.Errorf("time %q out of range", s)
	}
	return t, nil
}

// ParseDuration reads seconds with an optional fraction or a Prometheus
// duration (90s, 5m, 1h30m, 7d).
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > float64(math.MaxInt64/int64(time.Second)) {
			return 0, fmt.Errorf("duration %q out of range", s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := model.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want seconds or a duration such as 15s, 5m, 1h", s)
	}
	return time.Duration(d), nil
}

// RangeRequest is a parsed /history/range (or export) request.
type RangeRequest struct {
	Points []sample.Point
	Start  time.Time
	End    time.Time
	Step   time.Duration // 0: the samples as stored, no aggregation
	Agg    string
	Tier   string // raw, a tier name, or auto
}

// Buckets is how many points one series of the answer has.
func (r RangeRequest) Buckets() int64 {
	if r.Step <= 0 {
		return 0
	}
	span := r.End.Sub(r.Start)
	return int64(span/r.Step) + 1
}

// ParseRange reads and checks the parameters of a range request. tiers are the
// names that may be asked for.
func ParseRange(v url.Values, now time.Time, tiers []string) (RangeRequest, error) {
	var r RangeRequest
	pts, err := parsePoints(v)
	if err != nil {
		return r, err
	}
	r.Points = pts
	if r.Start, err = ParseTime(v.Get("start"), now); err != nil {
		return r, fmt.Errorf("start: %w", err)
	}
	end := v.Get("end")
	if end == "" {
		end = "now"
	}
	if r.End, err = ParseTime(end, now); err != nil {
		return r, fmt.Errorf("end: %w", err)
	}
	if r.End.Before(r.Start) {
		return r, fmt.Errorf("end %s is before start %s", r.End.Format(time.RFC3339Nano), r.Start.Format(time.RFC3339Nano))
	}
	if s := v.Get("step"); s != "" {
		if r.Step, err = ParseDuration(s); err != nil {
			return r, fmt.Errorf("step: %w", err)
		}
		if r.Step < time.Millisecond {
			return r, errors.New("step: must be at least 1ms")
		}
		if n := r.Buckets(); n > MaxPoints {
			return r, fmt.Errorf("step %s over %s gives %d points per series; the limit is %d: use a larger step", r.Step, r.End.Sub(r.Start), n, MaxPoints)
		}
	}
	r.Agg = v.Get("agg")
	switch {
	case r.Agg == "" && r.Step > 0:
		r.Agg = "avg"
	case r.Agg == "":
	case r.Step == 0:
		return r, errors.New("agg needs a step")
	default:
		ok := false
		for _, a := range Aggregations {
			ok = ok || a == r.Agg
		}
		if !ok {
			return r, fmt.Errorf("agg %q: want one of %s", r.Agg, strings.Join(Aggregations, ", "))
		}
	}
	r.Tier = v.Get("tier")
	switch r.Tier {
	case "":
		r.Tier = "auto"
	case "auto", "raw":
	default:
		ok := false
		for _, t := range tiers {
			ok = ok || t == r.Tier
		}
		if !ok {
			return r, fmt.Errorf("tier %q: want auto, raw or one of [%s]", r.Tier, strings.Join(tiers, ", "))
		}
		if r.Step == 0 {
			return r, errors.New("a tier holds aggregates: give a step and an agg")
		}
	}
	return r, nil
}

func parsePoints(v url.Values) ([]sample.Point, error) {
	var names []string
	for _, p := range v["point"] {
		for _, n := range strings.Split(p, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
	}
	if len(names) == 0 {
		return nil, errors.New("point: name at least one point, e.g. point=comsrv:1:T:5")
	}
	if len(names) > MaxSeries {
		return nil, fmt.Errorf("point: %d points named; at most %d per request", len(names), MaxSeries)
	}
	out := make([]sample.Point, 0, len(names))
	seen := map[sample.Point]bool{}
	for _, n := range names {
		p, err := sample.ParsePoint(n)
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}
