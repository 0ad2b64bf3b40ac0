package apigateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"sync"

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

// The three read operations answer pre-encoded JSON: from the realtime mirror
// when it is synced (bytes encoded once per change, copied per request), else
// encoded from a Redis read. The spec still shows the typed bodies below.

// pointsOutputBody is the answer of readPoints.
type pointsOutputBody struct {
	Points []pointValue `json:"points"`
}

// patternOutputBody is the answer of findPoints.
type patternOutputBody struct {
	Points    []pointValue `json:"points"`
	NextAfter string       `json:"next_after,omitempty" doc:"pass as after for the next page; absent on the last page"`
}

type batchInput struct {
	Body struct {
		Points []pointRef `json:"points" minItems:"1" maxItems:"10000"`
	}
}

type patternInput struct {
	Pattern string `query:"pattern" required:"true" maxLength:"64" example:"1:T:*" doc:"channel:type:point, each a value or *"`
	Limit   int    `query:"limit" minimum:"1" maximum:"10000" default:"1000" doc:"at most this many points"`
	After   string `query:"after" maxLength:"32" doc:"cursor: the next_after of the previous page"`
}

// jsonOutput is an answer already encoded as JSON.
type jsonOutput struct {
	Body func(huma.Context)
}

func jsonBytes(b []byte) *jsonOutput {
	return &jsonOutput{Body: func(ctx huma.Context) {
		ctx.SetHeader("Content-Type", "application/json")
		// A known length spares the chunked encoding of a ~70 KB page.
		ctx.SetHeader("Content-Length", strconv.Itoa(len(b)))
		ctx.SetStatus(http.StatusOK)
		_, _ = ctx.BodyWriter().Write(b)
		putPageBuffer(b)
	}}
}

// pageBuffers recycles answer buffers: a page of 1,000 values is ~70 KB, and
// allocating one per request is most of the garbage a busy gateway makes.
var pageBuffers sync.Pool

func getPageBuffer(size int) []byte {
	if p, ok := pageBuffers.Get().(*[]byte); ok && cap(*p) >= size {
		return (*p)[:0]
	}
	return make([]byte, 0, size)
}

// putPageBuffer keeps b for reuse unless it is too large to hold on to.
func putPageBuffer(b []byte) {
	if cap(b) <= 4<<20 {
		pageBuffers.Put(&b)
	}
}

// encodedAs documents in the spec that an operation answering a jsonOutput
// answers the JSON of body's type, under the schema name Huma would give it.
func encodedAs(api huma.API, body any, name string) map[string]*huma.Response {
	schema := api.OpenAPI().Components.Schemas.Schema(reflect.TypeOf(body), true, name)
	return map[string]*huma.Response{"200": {Description: "OK",
		Content: map[string]*huma.MediaType{"application/json": {Schema: schema}}}}
}

func (s *server) registerPoints(api huma.API) {
	op(s, api, Viewer, huma.Operation{
		OperationID: "getPoint", Method: http.MethodGet, Path: "/points/{channel}/{type}/{point}", Tags: []string{"points"},
		Summary: "One realtime value", Errors: []int{http.StatusNotFound},
		Responses: encodedAs(api, pointValue{}, "PointValue"),
	}, func(ctx context.Context, in *onePointInput) (*jsonOutput, error) {
		t, _ := point.ParseType(in.Type)
		ref := pointRef{Channel: in.Channel, Type: string(t), Point: in.Point}
		b, found, err := s.encodePoints(ctx, []pointRef{ref}, nil)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, huma.Error404NotFound(fmt.Sprintf("point %d:%s:%d has no value", in.Channel, in.Type, in.Point))
		}
		return jsonBytes(b), nil
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "readPoints", Method: http.MethodPost, Path: "/points/read", Tags: []string{"points"},
		Summary:     "Many realtime values in one request",
		Description: "Values in the order asked; a point without a value has value null and quality missing.",
		Responses:   encodedAs(api, pointsOutputBody{}, "PointsOutputBody"),
	}, func(ctx context.Context, in *batchInput) (*jsonOutput, error) {
		b := append(getPageBuffer(16+len(in.Body.Points)*72), `{"points":[`...)
		b, _, err := s.encodePoints(ctx, in.Body.Points, b)
		if err != nil {
			return nil, err
		}
		return jsonBytes(append(b, "]}"...)), nil
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "findPoints", Method: http.MethodGet, Path: "/points", Tags: []string{"points"},
		Summary:     "Realtime values by pattern",
		Description: "pattern is channel:type:point with * for any, e.g. 1:T:* (every telemetry of channel 1). Pages by channel, type and point.",
		Errors:      []int{http.StatusUnprocessableEntity},
		Responses:   encodedAs(api, patternOutputBody{}, "PatternOutputBody"),
	}, s.findPoints)
}

// encodePoints appends the values of refs, in order and comma-separated, to
// prefix. With a single ref and a nil prefix it encodes that one value alone;
// found is false when a point has no value (a batch shows it as missing).
func (s *server) encodePoints(ctx context.Context, refs []pointRef, prefix []byte) (b []byte, found bool, err error) {
	b, found = prefix, true
	if views, ok := s.mirrorViews(refs); ok {
		for i, r := range refs {
			if i > 0 {
				b = append(b, ',')
			}
			v := views[i]
			if j := v.find(r.Point); j >= 0 {
				b = append(b, v.elem(j)...)
				continue
			}
			found = false
			b = appendPointValue(b, r.Channel, r.Type, r.Point, mirrorPoint{quality: "missing"})
		}
		return b, found, nil
	}
	pv, err := s.readPoints(ctx, refs)
	if err != nil {
		return nil, false, err
	}
	for i, v := range pv {
		if i > 0 {
			b = append(b, ',')
		}
		if v.Value == nil && v.Quality == "missing" {
			found = false
		}
		e, err := json.Marshal(v)
		if err != nil {
			return nil, false, fmt.Errorf("encode point %d:%s:%d: %w", v.Channel, v.Type, v.Point, err)
		}
		b = append(b, e...)
	}
	return b, found, nil
}

// mirrorViews returns the mirror's view of each ref's family, or false when any
// of them is not mirrored (then the whole request reads Redis).
func (s *server) mirrorViews(refs []pointRef) ([]*familyView, bool) {
	views := make([]*familyView, len(refs))
	var last *mirrorFamily
	for i, r := range refs {
		t, err := point.ParseType(r.Type)
		if err != nil {
			return nil, false
		}
		if last == nil || last.key != (famKey{r.Channel, t}) {
			if last = s.mirror.family(r.Channel, t); last == nil {
				return nil, false
			}
		}
		views[i] = last.current()
	}
	return views, true
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

func (s *server) findPoints(ctx context.Context, in *patternInput) (*jsonOutput, error) {
	p, err := parsePattern(in.Pattern)
	if err != nil {
		return nil, huma.Error422UnprocessableEntity(err.Error())
	}
	var after *pointKey
	if in.After != "" {
		k, err := parsePointKey(in.After)
		if err != nil {
			return nil, huma.Error422UnprocessableEntity("after: " + err.Error())
		}
		after = &k
	}
	limit := in.Limit
	if limit <= 0 {
		limit = 1000
	}
	var fams []famKey
	for i := range s.cfg.Site.Channels {
		ch := s.cfg.Site.Channels[i].ID
		if p.channel != nil && *p.channel != ch {
			continue
		}
		for _, t := range p.types {
			if after != nil && (pointKey{ch, t, ^uint32(0)}).less(*after) {
				continue // the whole family is before the cursor
			}
			fams = append(fams, famKey{ch, t})
		}
	}
	slices.SortFunc(fams, func(a, b famKey) int {
		switch {
		case (pointKey{a.ch, a.t, 0}).less(pointKey{b.ch, b.t, 0}):
			return -1
		case (pointKey{b.ch, b.t, 0}).less(pointKey{a.ch, a.t, 0}):
			return 1
		}
		return 0
	})
	page := patternPage{after: after, limit: limit, buf: getPageBuffer(64 + limit*72)}
	page.buf = append(page.buf, `{"points":[`...)
	if views, ok := s.mirrorFamilies(fams); ok {
		for i, v := range views {
			if page.mirrored(fams[i], v, p.point) {
				break
			}
		}
	} else if err := s.findPointsInRedis(ctx, fams, p.point, &page); err != nil {
		return nil, err
	}
	page.buf = append(page.buf, ']')
	if page.next != nil {
		page.buf = append(page.buf, `,"next_after":"`...)
		page.buf = append(page.buf, page.next.String()...)
		page.buf = append(page.buf, '"')
	}
	return jsonBytes(append(page.buf, '}')), nil
}

// patternPage collects one page of a pattern read.
type patternPage struct {
	after *pointKey
	limit int
	n     int
	last  pointKey
	next  *pointKey // set when the page is full and more points follow
	buf   []byte
}

// add appends one encoded point unless it is before the cursor; it returns true
// when the page is full and another point was found (stop reading).
func (p *patternPage) add(k pointKey, elem []byte) bool {
	if p.after != nil && !p.after.less(k) {
		return false
	}
	if p.n == p.limit {
		last := p.last
		p.next = &last
		return true
	}
	if p.n > 0 {
		p.buf = append(p.buf, ',')
	}
	p.buf = append(p.buf, elem...)
	p.n++
	p.last = k
	return false
}

// mirrored adds a family's points from its mirror view (only pointID when set).
func (p *patternPage) mirrored(f famKey, v *familyView, pointID string) bool {
	if pointID != "" {
		n, _ := strconv.ParseUint(pointID, 10, 32)
		if i := v.find(uint32(n)); i >= 0 {
			return p.add(pointKey{f.ch, f.t, uint32(n)}, v.elem(i))
		}
		return false
	}
	start := 0
	if p.after != nil && p.after.ch == f.ch && p.after.t == f.t {
		start, _ = slices.BinarySearch(v.ids, p.after.id)
	}
	for i := start; i < len(v.ids); i++ {
		if p.add(pointKey{f.ch, f.t, v.ids[i]}, v.elem(i)) {
			return true
		}
	}
	return false
}

// mirrorFamilies returns the mirror's view of every family, or false when one of
// them is not mirrored.
func (s *server) mirrorFamilies(fams []famKey) ([]*familyView, bool) {
	views := make([]*familyView, len(fams))
	for i, k := range fams {
		f := s.mirror.family(k.ch, k.t)
		if f == nil {
			return nil, false
		}
		views[i] = f.current()
	}
	return views, true
}

// findPointsInRedis fills the page from the hashes, a few families per pipeline,
// until it is full.
func (s *server) findPointsInRedis(ctx context.Context, fams []famKey, pointID string, page *patternPage) error {
	for start := 0; start < len(fams); start += 8 {
		end := min(start+8, len(fams))
		pipe := s.rdb.Pipeline()
		reads := make([]*familyRead, 0, end-start)
		for _, f := range fams[start:end] {
			var ids []string
			if pointID != "" {
				ids = []string{pointID}
			}
			reads = append(reads, queueRead(ctx, pipe, channelFamily(f.ch, f.t), ids))
		}
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return huma.Error503ServiceUnavailable("the state store does not answer")
		}
		for i, f := range fams[start:end] {
			vals, err := reads[i].result(pointValue{Channel: f.ch, Type: string(f.t)})
			if err != nil {
				return huma.Error503ServiceUnavailable("the state store does not answer")
			}
			for _, v := range vals {
				if v.Quality == "missing" {
					continue
				}
				e, err := json.Marshal(v)
				if err != nil {
					return fmt.Errorf("encode point %d:%s:%d: %w", v.Channel, v.Type, v.Point, err)
				}
				if page.add(pointKey{f.ch, f.t, v.Point}, e) {
					return nil
				}
			}
		}
	}
	return nil
}
