package apigateway

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/danielgtaylor/huma/v2"
	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/point"
)

// maxPointsPerRequest bounds a batch or pattern read.
const maxPointsPerRequest = 10_000

type pointRef struct {
	Channel uint32 `json:"channel" minimum:"1"`
	Type    string `json:"type" enum:"T,S,C,A"`
	Point   uint32 `json:"point"`
}

type onePointInput struct {
	Channel uint32 `path:"channel" minimum:"1" doc:"channel id"`
	Type    string `path:"type" enum:"T,S,C,A" doc:"point type"`
	Point   uint32 `path:"point" doc:"point id"`
}

type onePointOutput struct {
	Body pointValue
}

type batchInput struct {
	Body struct {
		Points []pointRef `json:"points" minItems:"1" maxItems:"10000"`
	}
}

type pointsOutput struct {
	Body struct {
		Points []pointValue `json:"points"`
	}
}

type patternInput struct {
	Pattern string `query:"pattern" required:"true" maxLength:"64" example:"1:T:*" doc:"channel:type:point, each a value or *"`
	Limit   int    `query:"limit" minimum:"1" maximum:"10000" default:"1000" doc:"at most this many points"`
	After   string `query:"after" maxLength:"32" doc:"cursor: the next_after of the previous page"`
}

type patternOutput struct {
	Body struct {
		Points    []pointValue `json:"points"`
		NextAfter string       `json:"next_after,omitempty" doc:"pass as after for the next page; absent on the last page"`
	}
}

func (s *server) registerPoints(api huma.API) {
	op(s, api, Viewer, huma.Operation{
		OperationID: "getPoint", Method: http.MethodGet, Path: "/points/{channel}/{type}/{point}", Tags: []string{"points"},
		Summary: "One realtime value", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *onePointInput) (*onePointOutput, error) {
		t, _ := point.ParseType(in.Type)
		pv, err := s.readPoints(ctx, []pointRef{{Channel: in.Channel, Type: string(t), Point: in.Point}})
		if err != nil {
			return nil, err
		}
		if pv[0].Value == nil && pv[0].Quality == "missing" {
			return nil, huma.Error404NotFound(fmt.Sprintf("point %d:%s:%d has no value", in.Channel, in.Type, in.Point))
		}
		return &onePointOutput{Body: pv[0]}, nil
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "readPoints", Method: http.MethodPost, Path: "/points/read", Tags: []string{"points"},
		Summary:     "Many realtime values in one request",
		Description: "Values in the order asked; a point without a value has value null and quality missing.",
	}, func(ctx context.Context, in *batchInput) (*pointsOutput, error) {
		pv, err := s.readPoints(ctx, in.Body.Points)
		if err != nil {
			return nil, err
		}
		out := &pointsOutput{}
		out.Body.Points = pv
		return out, nil
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "findPoints", Method: http.MethodGet, Path: "/points", Tags: []string{"points"},
		Summary:     "Realtime values by pattern",
		Description: "pattern is channel:type:point with * for any, e.g. 1:T:* (every telemetry of channel 1). Pages by channel, type and point.",
		Errors:      []int{http.StatusUnprocessableEntity},
	}, s.findPoints)
}

// readPoints reads refs in one pipeline, grouped by hash family.
func (s *server) readPoints(ctx context.Context, refs []pointRef) ([]pointValue, error) {
	type fk struct {
		ch uint32
		t  point.Type
	}
	groups := map[fk][]int{}
	var order []fk
	for i, r := range refs {
		t, err := point.ParseType(r.Type)
		if err != nil {
			return nil, huma.Error422UnprocessableEntity(err.Error())
		}
		k := fk{r.Channel, t}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	reads := make([]*familyRead, len(order))
	pipe := s.rdb.Pipeline()
	for gi, k := range order {
		ids := make([]string, len(groups[k]))
		for j, i := range groups[k] {
			ids[j] = strconv.FormatUint(uint64(refs[i].Point), 10)
		}
		reads[gi] = queueRead(ctx, pipe, channelFamily(k.ch, k.t), ids)
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, huma.Error503ServiceUnavailable("the state store does not answer")
	}
	out := make([]pointValue, len(refs))
	for gi, k := range order {
		vals, err := reads[gi].result(pointValue{Channel: k.ch, Type: string(k.t)})
		if err != nil {
			return nil, huma.Error503ServiceUnavailable("the state store does not answer")
		}
		for j, i := range groups[k] {
			out[i] = vals[j]
		}
	}
	return out, nil
}

func (s *server) findPoints(ctx context.Context, in *patternInput) (*patternOutput, error) {
	p, err := parsePattern(in.Pattern)
	if err != nil {
		return nil, huma.Error422UnprocessableEntity(err.Error())
	}
	var after pointKey
	if in.After != "" {
		if after, err = parsePointKey(in.After); err != nil {
			return nil, huma.Error422UnprocessableEntity("after: " + err.Error())
		}
	}
	limit := in.Limit
	if limit <= 0 {
		limit = 1000
	}
	type fam struct {
		ch uint32
		t  point.Type
	}
	var fams []fam
	for i := range s.cfg.Site.Channels {
		ch := s.cfg.Site.Channels[i].ID
		if p.channel != nil && *p.channel != ch {
			continue
		}
		for _, t := range p.types {
			if (pointKey{ch, t, ^uint32(0)}).less(after) && in.After != "" {
				continue // the whole family is before the cursor
			}
			fams = append(fams, fam{ch, t})
		}
	}
	sortFams := func(i, j int) bool {
		return pointKey{fams[i].ch, fams[i].t, 0}.less(pointKey{fams[j].ch, fams[j].t, 0})
	}
	sortSlice(fams, sortFams)
	out := &patternOutput{}
	out.Body.Points = []pointValue{}
	// Families are read a few at a time in one pipeline, until the page is full.
	for start := 0; start < len(fams) && len(out.Body.Points) < limit; start += 8 {
		end := min(start+8, len(fams))
		pipe := s.rdb.Pipeline()
		reads := make([]*familyRead, 0, end-start)
		for _, f := range fams[start:end] {
			var ids []string
			if p.point != "" {
				ids = []string{p.point}
			}
			reads = append(reads, queueRead(ctx, pipe, channelFamily(f.ch, f.t), ids))
		}
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return nil, huma.Error503ServiceUnavailable("the state store does not answer")
		}
		for i, f := range fams[start:end] {
			vals, err := reads[i].result(pointValue{Channel: f.ch, Type: string(f.t)})
			if err != nil {
				return nil, huma.Error503ServiceUnavailable("the state store does not answer")
			}
			for _, v := range vals {
				if v.Quality == "missing" {
					continue
				}
				k := pointKey{f.ch, f.t, v.Point}
				if in.After != "" && !after.less(k) {
					continue
				}
				if len(out.Body.Points) == limit {
					last := out.Body.Points[limit-1]
					out.Body.NextAfter = pointKey{last.Channel, point.Type(last.Type[0]), last.Point}.String()
					return out, nil
				}
				out.Body.Points = append(out.Body.Points, v)
			}
		}
	}
	return out, nil
}
