package apigateway

import (
	"context"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
)

// The realtime mirror keeps an in-memory copy of every configured channel's point
// hashes (values, timestamps, qualities), kept current from the hashes' pub/sub
// channels, so that reading 1,000 values costs a copy of bytes encoded once per
// change instead of three HGETALLs and an encode per request (DESIGN §10: GET of
// 1,000 values by 100 clients, P95 < 10 ms).
//
// Correctness rests on three rules:
//   - After every (re)subscription the whole mirror is reloaded from the hashes
//     (statestore.Subscribe's Resync): pub/sub may have dropped changes while the
//     subscription was away. Until the first reload completes, and whenever the
//     subscription is lost, the mirror is not synced and reads go to Redis.
//   - A change is applied only when its sample is not older than the value held,
//     so a message published before a reload but delivered after it cannot roll a
//     point back.
//   - Only one goroutine (run) writes; readers take immutable views.
//
// A full reload also runs every mirrorRefresh, which drops points deleted from a
// hash (a reload of comsrv's point tables) and bounds the life of any divergence.

// mirrorRefresh is how often the mirror is reloaded from Redis even when the
// subscription never dropped.
const mirrorRefresh = time.Minute

type famKey struct {
	ch uint32
	t  point.Type
}

// mirrorPoint is one point as held in the mirror.
type mirrorPoint struct {
	value   float64
	valid   bool   // value parsed as a finite number
	ts      int64  // Unix ms of the sample
	quality string // "" = good
}

// mirrorFamily is the mirror of one channel's points of one type.
type mirrorFamily struct {
	key    famKey
	mu     sync.Mutex // guards points; held by the writer and by view builders
	points map[uint32]mirrorPoint
	view   atomic.Pointer[familyView] // nil after a change: rebuilt on the next read
}

// familyView is an immutable, encoded picture of a family: the JSON objects of its
// points (as pointValue encodes them), sorted by point id, back to back in buf.
type familyView struct {
	ids  []uint32
	offs []int // element i is buf[offs[i]:offs[i+1]]
	buf  []byte
}

// elem returns the encoded point i.
func (v *familyView) elem(i int) []byte { return v.buf[v.offs[i]:v.offs[i+1]] }

// find returns the index of point id, or -1.
func (v *familyView) find(id uint32) int {
	i, ok := slices.BinarySearch(v.ids, id)
	if !ok {
		return -1
	}
	return i
}

type mirror struct {
	rdb     *redis.Client
	log     *slog.Logger
	metrics *metrics
	fams    map[famKey]*mirrorFamily // fixed at construction; read without a lock
	byName  map[string]*mirrorFamily // pub/sub channel (the values hash) → family
	synced  atomic.Bool
}

func newMirror(rdb *redis.Client, channels []uint32, met *metrics, log *slog.Logger) *mirror {
	m := &mirror{rdb: rdb, log: log, metrics: met, fams: map[famKey]*mirrorFamily{}, byName: map[string]*mirrorFamily{}}
	for _, ch := range channels {
		for _, t := range point.Types {
			f := &mirrorFamily{key: famKey{ch, t}, points: map[uint32]mirrorPoint{}}
			m.fams[f.key] = f
			m.byName[keyspace.ChannelPoints(ch, t)] = f
		}
	}
	return m
}

// family returns the synced mirror of (ch, t), or nil when reads must go to Redis.
func (m *mirror) family(ch uint32, t point.Type) *mirrorFamily {
	if m == nil || !m.synced.Load() {
		return nil
	}
	return m.fams[famKey{ch, t}]
}

// run keeps the mirror current until ctx is done.
func (m *mirror) run(ctx context.Context) {
	if len(m.fams) == 0 {
		return
	}
	names := make([]string, 0, len(m.byName))
	for n := range m.byName {
		names = append(names, n)
	}
	refresh := time.NewTicker(mirrorRefresh)
	defer refresh.Stop()
	up := func(ok bool) {
		if !ok {
			m.setSynced(false)
		}
	}
	statestore.Subscribe(ctx, m.rdb, names, m.log, up, func(ev statestore.Event) bool {
		select {
		case <-refresh.C:
			if !ev.Resync { // also retries a reload that failed while subscribed
				m.setSynced(m.reload(ctx))
			}
		default:
		}
		if ev.Resync {
			m.setSynced(false)
			m.setSynced(m.reload(ctx))
			return true
		}
		if f := m.byName[ev.Channel]; f != nil {
			f.apply(ev.Payload, m.log)
		}
		return true
	})
	m.setSynced(false)
}

func (m *mirror) setSynced(ok bool) {
	m.synced.Store(ok)
	if ok {
		m.metrics.mirrorSynced.Set(1)
	} else {
		m.metrics.mirrorSynced.Set(0)
	}
}

// reload replaces every family with the hashes' content, in one pipeline. It
// runs on the subscription's goroutine, so messages published after the read
// are applied after it.
func (m *mirror) reload(ctx context.Context) bool {
	type reads struct {
		f            *mirrorFamily
		vals, ts, qs *redis.MapStringStringCmd
	}
	pipe := m.rdb.Pipeline()
	all := make([]reads, 0, len(m.fams))
	for _, f := range m.fams {
		fam := channelFamily(f.key.ch, f.key.t)
		r := reads{f: f, vals: pipe.HGetAll(ctx, fam.values), ts: pipe.HGetAll(ctx, fam.ts)}
		if fam.quality != "" {
			r.qs = pipe.HGetAll(ctx, fam.quality)
		}
		all = append(all, r)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		if ctx.Err() == nil {
			m.log.Warn("realtime mirror: reload failed; reads go to Redis until the next resubscription", "err", err)
		}
		return false
	}
	for _, r := range all {
		var qs map[string]string
		if r.qs != nil {
			qs = r.qs.Val()
		}
		ts := r.ts.Val()
		points := make(map[uint32]mirrorPoint, len(r.vals.Val()))
		for id, v := range r.vals.Val() {
			n, err := strconv.ParseUint(id, 10, 32)
			if err != nil {
				continue
			}
			p := mirrorPoint{quality: qs[id]}
			p.value, p.valid = parseValue(v)
			p.ts, _ = strconv.ParseInt(ts[id], 10, 64)
			points[uint32(n)] = p
		}
		r.f.mu.Lock()
		r.f.points = points
		r.f.view.Store(nil)
		r.f.mu.Unlock()
	}
	m.metrics.mirrorReloads.Inc()
	return true
}

// apply merges one change message into the family.
func (f *mirrorFamily) apply(payload string, log *slog.Logger) {
	msg, err := statestore.DecodeMessage([]byte(payload))
	if err != nil {
		log.Warn("realtime mirror: undecodable change message", "channel", f.key.ch, "type", f.key.t.String(), "err", err)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	changed := false
	for id, v := range msg.V {
		n, err := strconv.ParseUint(id, 10, 32)
		if err != nil {
			continue
		}
		ts := msg.PointTS(id)
		old, ok := f.points[uint32(n)]
		if ok && ts < old.ts {
			continue // older than what a reload already brought
		}
		p := mirrorPoint{value: v, valid: !math.IsNaN(v) && !math.IsInf(v, 0), ts: ts, quality: msg.Q[id]}
		if p.quality == point.Good.String() || f.key.t.Writable() {
			p.quality = "" // C and A have no quality hash: a Redis read shows them good
		}
		f.points[uint32(n)] = p
		changed = true
	}
	if changed {
		f.view.Store(nil)
	}
}

// current returns the family's view, building it when a change made it stale.
func (f *mirrorFamily) current() *familyView {
	if v := f.view.Load(); v != nil {
		return v
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if v := f.view.Load(); v != nil {
		return v // another reader built it while this one waited
	}
	v := &familyView{ids: make([]uint32, 0, len(f.points))}
	for id := range f.points {
		v.ids = append(v.ids, id)
	}
	slices.Sort(v.ids)
	v.offs = make([]int, 0, len(v.ids)+1)
	v.buf = make([]byte, 0, len(v.ids)*72)
	typ := f.key.t.String()
	for _, id := range v.ids {
		v.offs = append(v.offs, len(v.buf))
		p := f.points[id]
		v.buf = appendPointValue(v.buf, f.key.ch, typ, id, p)
	}
	v.offs = append(v.offs, len(v.buf))
	f.view.Store(v)
	return v
}

// parseValue reads a hash value; NaN and infinities are not JSON numbers and read
// as invalid.
func parseValue(s string) (float64, bool) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

// appendPointValue encodes one point exactly as encoding/json encodes pointValue.
func appendPointValue(b []byte, ch uint32, typ string, id uint32, p mirrorPoint) []byte {
	b = append(b, `{"channel":`...)
	b = strconv.AppendUint(b, uint64(ch), 10)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, typ)
	b = append(b, `,"point":`...)
	b = strconv.AppendUint(b, uint64(id), 10)
	b = append(b, `,"value":`...)
	q := p.quality
	if p.valid {
		b = appendJSONFloat(b, p.value)
		if q == "" {
			q = point.Good.String()
		}
	} else {
		b = append(b, "null"...)
		if q == "" {
			q = point.Invalid.String()
		}
	}
	b = append(b, `,"quality":`...)
	b = appendJSONString(b, q)
	if p.ts != 0 {
		b = append(b, `,"ts":`...)
		b = strconv.AppendInt(b, p.ts, 10)
	}
	return append(b, '}')
}

// appendJSONFloat formats f as encoding/json does (ES6 number formatting).
func appendJSONFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
