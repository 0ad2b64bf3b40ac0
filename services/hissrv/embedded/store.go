// Package embedded is hissrv's default history backend: the Prometheus TSDB
// library inside the process — a write-ahead log, compressed chunks, blocks with
// retention by age and size — holding the raw samples, plus one TSDB per
// downsampled tier (1 min and 1 h by default: min/max/avg/last/count) kept longer.
//
// Exactly once: a sample is stored at most once per (series, time). The TSDB
// itself refuses a sample older than the newest one of its series and ignores an
// exact repeat of the newest, so entries re-delivered after a crash leave the
// store as it was. The tiers are computed incrementally from what the raw store
// accepted and, after a restart, recomputed from the raw store (and the finer
// tier) over the window where buckets may still have been open, so a kill -9
// neither loses nor double counts a bucket.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/voltageems/voltage/services/hissrv/sample"
	"github.com/voltageems/voltage/shared/point"
)

// Retention bounds what a store keeps; zero values mean no bound of that kind.
type Retention struct {
	Age      time.Duration
	MaxBytes int64
}

// TierOptions describe one downsampled tier.
type TierOptions struct {
	Name      string        // e.g. "1m"; part of the metric names (voltage_point:avg_1m)
	Width     time.Duration // bucket width; a multiple of the previous tier's
	Retention Retention
}

// Options configure the store.
type Options struct {
	Dir  string // raw/ and one folder per tier are created inside
	Site string // the site label of every series

	Raw   Retention
	Tiers []TierOptions
	// Grace is how long after its end a bucket waits for late samples before the
	// watermark closes it. Default 2 minutes.
	Grace time.Duration
	// SyncWAL fsyncs the write-ahead log before Write returns, so an acknowledged
	// batch also survives a power cut (a process crash never loses it anyway).
	SyncWAL bool
	// BlockDuration is the raw store's head block span. Default 2 h (Prometheus').
	BlockDuration time.Duration

	Log        *slog.Logger
	Registerer prometheus.Registerer // TSDB metrics; nil = not registered
}

// Aggregations stored per tier bucket, in this order.
var Aggregations = []string{"min", "max", "avg", "last", "count"}

// TierMetric is the metric name of one aggregation of one tier, e.g. voltage_point:avg_1m.
func TierMetric(agg, tier string) string { return sample.Metric + ":" + agg + "_" + tier }

// WriteStats says what one Write did.
type WriteStats struct {
	Appended int // samples stored
	Repeats  int // samples already stored (same time), ignored
	Rejected int // samples refused (older than the newest of their point, or a different value at the same time)
	Buckets  int // tier buckets written
}

// Store is the embedded backend. Write and Tick are called by one goroutine; the
// query methods are safe for concurrent use.
type Store struct {
	opts  Options
	log   *slog.Logger
	raw   *tsdb.DB
	tiers []*tier
	wal   walSyncer

	refs    map[sample.Point]*seriesRef // raw value series
	qrefs   map[sample.Point]*seriesRef // raw quality series
	quality map[sample.Point]point.Quality
	scratch labels.ScratchBuilder
	buckets []Bucket
	maxData int64 // newest sample time taken
	mu      sync.Mutex
	closed  bool
}

type seriesRef struct {
	ref  storage.SeriesRef
	lset labels.Labels
	last int64 // newest time stored; a sample at or before it is a repeat or out of order
	// decimals is the number of decimals of the last boxed value (see codec.go),
	// reused while it still represents the value exactly; -1 when unknown.
	decimals int
}

type tier struct {
	opts  TierOptions
	db    *tsdb.DB
	agg   *aggregator
	refs  map[sample.Point]*[5]seriesRef
	retry []Bucket // closed buckets whose write failed
}

// Open opens (or creates) the store in opts.Dir and rebuilds the tiers' open
// buckets from what is stored.
func Open(opts Options) (*Store, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Grace <= 0 {
		opts.Grace = 2 * time.Minute
	}
	if opts.BlockDuration <= 0 {
		opts.BlockDuration = 2 * time.Hour
	}
	for i, t := range opts.Tiers {
		if t.Width <= 0 || t.Width%time.Millisecond != 0 {
			return nil, fmt.Errorf("tier %s: width %s must be a positive number of milliseconds", t.Name, t.Width)
		}
		if i > 0 && t.Width%opts.Tiers[i-1].Width != 0 {
			return nil, fmt.Errorf("tier %s: width %s is not a multiple of tier %s's %s", t.Name, t.Width, opts.Tiers[i-1].Name, opts.Tiers[i-1].Width)
		}
	}
	s := &Store{
		opts: opts, log: opts.Log,
		refs: map[sample.Point]*seriesRef{}, qrefs: map[sample.Point]*seriesRef{},
		quality: map[sample.Point]point.Quality{},
		scratch: labels.NewScratchBuilder(8),
	}
	var err error
	s.raw, err = openDB(filepath.Join(opts.Dir, "raw"), opts.Raw, opts.BlockDuration, opts)
	if err != nil {
		return nil, err
	}
	s.wal = walSyncer{dir: filepath.Join(opts.Dir, "raw", "wal")}
	for _, to := range opts.Tiers {
		// A tier's blocks span more time: its samples are sparse.
		block := max(opts.BlockDuration, 12*to.Width)
		db, err := openDB(filepath.Join(opts.Dir, "tier-"+to.Name), to.Retention, block, opts)
		if err != nil {
			_ = s.Close()
			return nil, err
		}
		s.tiers = append(s.tiers, &tier{opts: to, db: db, agg: newAggregator(to.Width.Milliseconds()), refs: map[sample.Point]*[5]seriesRef{}})
	}
	if err := s.recover(context.Background()); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("rebuild history tiers: %w", err)
	}
	return s, nil
}

func openDB(dir string, r Retention, block time.Duration, opts Options) (*tsdb.DB, error) {
	o := tsdb.DefaultOptions()
	o.RetentionDuration = r.Age.Milliseconds()
	if r.Age <= 0 {
		o.RetentionDuration = 0
	}
	o.MaxBytes = r.MaxBytes
	o.MinBlockDuration = block.Milliseconds()
	o.MaxBlockDuration = max(block.Milliseconds(), o.RetentionDuration/10)
	if o.RetentionDuration == 0 {
		o.MaxBlockDuration = 31 * 24 * time.Hour.Milliseconds()
	}
	o.MaxBlockDuration = max(o.MinBlockDuration, o.MaxBlockDuration)
	o.FloatChunkEncoding = chunkenc.EncXOR
	o.StripeSize = 1 << 10 // an edge site has thousands of series, not millions
	o.WALCompression = "snappy"
	var reg prometheus.Registerer
	if opts.Registerer != nil {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"store": filepath.Base(dir)}, opts.Registerer)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("history store %s: %w", dir, err)
	}
	// The TSDB narrates every WAL replay and compaction at info; keep its warnings.
	log := slog.New(warnOnly{opts.Log.Handler()}).With("store", filepath.Base(dir))
	db, err := tsdb.Open(dir, log, reg, o, nil)
	if err != nil {
		return nil, fmt.Errorf("open history store %s: %w", dir, err)
	}
	return db, nil
}

// Raw is the raw store's TSDB (for compaction and tests). Its voltage_point values
// are boxed (codec.go): read them through RawQueryable.
func (s *Store) Raw() *tsdb.DB { return s.raw }

// RawQueryable reads the raw store with plain values.
func (s *Store) RawQueryable() storage.Queryable { return decodingQueryable{s.raw} }

// TierDB returns the store of the named tier, or nil.
func (s *Store) TierDB(name string) *tsdb.DB {
	for _, t := range s.tiers {
		if t.opts.Name == name {
			return t.db
		}
	}
	return nil
}

// LateSamples counts, per tier name, the inputs that arrived for a bucket already
// closed (kept in the raw store, missing from the tier). Safe for concurrent use.
func (s *Store) LateSamples() map[string]uint64 {
	out := make(map[string]uint64, len(s.tiers))
	for _, t := range s.tiers {
		out[t.opts.Name] = t.agg.late.Load()
	}
	return out
}

// Tiers lists the tiers' options.
func (s *Store) Tiers() []TierOptions { return s.opts.Tiers }

// Querier reads every store at once: raw voltage_point and voltage_point_quality,
// and each tier's voltage_point:{agg}_{tier}.
func (s *Store) Querier(mint, maxt int64) (storage.Querier, error) {
	qs := make([]storage.Querier, 0, 1+len(s.tiers))
	q, err := s.RawQueryable().Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	qs = append(qs, q)
	for _, t := range s.tiers {
		q, err := t.db.Querier(mint, maxt)
		if err != nil {
			for _, q := range qs {
				_ = q.Close()
			}
			return nil, err
		}
		qs = append(qs, q)
	}
	return storage.NewMergeQuerier(qs, nil, storage.ChainedSeriesMerge), nil
}

// Write stores samples: values and the quality series in the raw store, then the
// tier buckets the new samples closed. When it returns nil everything it accepted
// is in the write-ahead logs (fsynced with SyncWAL).
func (s *Store) Write(ctx context.Context, samples []sample.Sample) (WriteStats, error) {
	var st WriteStats
	app := s.raw.Appender(ctx)
	s.buckets = s.buckets[:0]
	acc := make([]int32, 0, len(samples))
	for i := range samples {
		smp := &samples[i]
		r := s.refs[smp.Point]
		if r == nil {
			r = s.newRef(smp.Point, sample.Metric)
			s.refs[smp.Point] = r
		}
		if smp.TS <= r.last {
			if smp.TS == r.last {
				st.Repeats++
			} else {
				st.Rejected++
			}
			continue
		}
		boxed, decimals := encodeValueLike(smp.Value, r.decimals)
		ref, err := app.Append(r.ref, r.lset, smp.TS, boxed)
		if err != nil {
			if isSampleError(err) {
				st.Rejected++
				continue
			}
			_ = app.Rollback()
			return WriteStats{}, fmt.Errorf("append %s: %w", smp.Point, err)
		}
		r.ref, r.last, r.decimals = ref, smp.TS, decimals
		st.Appended++
		acc = append(acc, int32(i))
		if err := s.appendQuality(app, smp); err != nil {
			_ = app.Rollback()
			return WriteStats{}, err
		}
	}
	if err := app.Commit(); err != nil {
		s.forgetRefs()
		return WriteStats{}, fmt.Errorf("commit raw samples: %w", err)
	}
	if s.opts.SyncWAL && st.Appended > 0 {
		if err := s.wal.sync(); err != nil {
			return WriteStats{}, fmt.Errorf("sync history WAL: %w", err)
		}
	}
	if len(s.tiers) == 0 {
		return st, nil
	}
	t0 := s.tiers[0]
	for _, i := range acc {
		smp := &samples[i]
		s.maxData = max(s.maxData, smp.TS)
		s.buckets = t0.agg.add(smp.Point, smp.TS, single(smp.Value), s.buckets)
	}
	n, err := s.flushBuckets(ctx, 0, math.MinInt64)
	st.Buckets = n
	return st, err
}

func (s *Store) newRef(p sample.Point, metric string) *seriesRef {
	p.AppendLabels(&s.scratch, metric, s.opts.Site)
	return &seriesRef{lset: s.scratch.Labels(), last: math.MinInt64, decimals: -1}
}

// forgetRefs drops the cached series state after a failed commit: the newest
// times it holds may not have been stored.
func (s *Store) forgetRefs() {
	clear(s.refs)
	clear(s.qrefs)
}

// appendQuality records every sample that is not good, and the return to good.
func (s *Store) appendQuality(app storage.Appender, smp *sample.Sample) error {
	prev, bad := s.quality[smp.Point]
	switch {
	case smp.Quality != point.Good:
		s.quality[smp.Point] = smp.Quality
	case bad && prev != point.Good:
		delete(s.quality, smp.Point)
	default:
		return nil
	}
	r := s.qrefs[smp.Point]
	if r == nil {
		r = s.newRef(smp.Point, sample.QualityMetric)
		s.qrefs[smp.Point] = r
	}
	if smp.TS <= r.last {
		return nil
	}
	ref, err := app.Append(r.ref, r.lset, smp.TS, sample.QualityCode(smp.Quality))
	if err != nil {
		if isSampleError(err) {
			return nil
		}
		return fmt.Errorf("append quality of %s: %w", smp.Point, err)
	}
	r.ref, r.last = ref, smp.TS
	return nil
}

func isSampleError(err error) bool {
	return errors.Is(err, storage.ErrOutOfOrderSample) || errors.Is(err, storage.ErrOutOfBounds) ||
		errors.Is(err, storage.ErrTooOldSample) || errors.Is(err, storage.ErrDuplicateSampleForTimestamp)
}

// Tick closes the tier buckets the watermark passed. now is the wall clock;
// caughtUp says the feed has no backlog, so the wall clock (not only the data)
// may close buckets of points that stopped changing.
func (s *Store) Tick(ctx context.Context, now time.Time, caughtUp bool) (int, error) {
	if len(s.tiers) == 0 {
		return 0, nil
	}
	wm := s.watermark(now, caughtUp)
	s.buckets = s.tiers[0].agg.close(wm, s.buckets[:0])
	return s.flushBuckets(ctx, 0, wm)
}

func (s *Store) watermark(now time.Time, caughtUp bool) int64 {
	n := now.UnixMilli()
	wm := min(s.maxData, n)
	if caughtUp {
		wm = n
	}
	return wm - s.opts.Grace.Milliseconds()
}

// flushBuckets writes s.buckets (closed in tier i) to tier i, feeds them to tier
// i+1 and so on, one commit per tier. With a watermark (wm > MinInt64) the coarser
// tiers also close what the watermark passed.
func (s *Store) flushBuckets(ctx context.Context, i int, wm int64) (int, error) {
	total := 0
	for ; i < len(s.tiers); i++ {
		t := s.tiers[i]
		closed := s.buckets
		if len(t.retry) > 0 {
			closed = append(t.retry, closed...)
		}
		if len(closed) > 0 {
			if err := s.writeBuckets(ctx, t, closed); err != nil {
				// Kept for the next flush: the aggregator has moved on.
				t.retry = append([]Bucket(nil), closed...)
				return total, err
			}
			t.retry = nil
			total += len(closed)
		}
		if i+1 == len(s.tiers) {
			break
		}
		next := s.tiers[i+1]
		var out []Bucket
		for _, b := range closed {
			out = next.agg.add(b.Point, b.Start, b.Agg, out)
		}
		if wm > math.MinInt64 {
			out = next.agg.close(wm, out)
		}
		s.buckets = out
	}
	return total, nil
}

func (s *Store) writeBuckets(ctx context.Context, t *tier, bs []Bucket) error {
	app := t.db.Appender(ctx)
	for _, b := range bs {
		refs := t.refs[b.Point]
		if refs == nil {
			refs = new([5]seriesRef)
			for k, agg := range Aggregations {
				b.Point.AppendLabels(&s.scratch, TierMetric(agg, t.opts.Name), s.opts.Site)
				refs[k] = seriesRef{lset: s.scratch.Labels(), last: math.MinInt64}
			}
			t.refs[b.Point] = refs
		}
		vals := [5]float64{b.Agg.Min, b.Agg.Max, b.Agg.Avg(), b.Agg.Last, b.Agg.Count}
		for k := range refs {
			r := &refs[k]
			ref, err := app.Append(r.ref, r.lset, b.Start, vals[k])
			if err != nil {
				if isSampleError(err) {
					continue // already written before a restart
				}
				_ = app.Rollback()
				return fmt.Errorf("append tier %s bucket of %s: %w", t.opts.Name, b.Point, err)
			}
			r.ref = ref
		}
	}
	if err := app.Commit(); err != nil {
		clear(t.refs)
		return fmt.Errorf("commit tier %s: %w", t.opts.Name, err)
	}
	if s.opts.SyncWAL {
		w := walSyncer{dir: filepath.Join(t.db.Dir(), "wal")}
		if err := w.sync(); err != nil {
			return fmt.Errorf("sync tier %s WAL: %w", t.opts.Name, err)
		}
		w.close()
	}
	return nil
}

// Close flushes nothing more (open buckets are rebuilt at the next Open) and
// closes the stores.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.wal.close()
	var errs []error
	if s.raw != nil {
		errs = append(errs, s.raw.Close())
	}
	for _, t := range s.tiers {
		errs = append(errs, t.db.Close())
	}
	return errors.Join(errs...)
}

// warnOnly passes on records at warn level and above.
type warnOnly struct{ slog.Handler }

func (w warnOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && w.Handler.Enabled(ctx, l)
}

func (w warnOnly) WithAttrs(as []slog.Attr) slog.Handler { return warnOnly{w.Handler.WithAttrs(as)} }

func (w warnOnly) WithGroup(g string) slog.Handler { return warnOnly{w.Handler.WithGroup(g)} }

// walSyncer fsyncs the newest segment of a write-ahead log. The TSDB writes every
// commit to the OS before it returns (so a killed process loses nothing); this
// also puts it on the disk.
type walSyncer struct {
	dir  string
	name string
	f    *os.File
}

func (w *walSyncer) sync() error {
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		return err
	}
	newest, newestN := "", -1
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err == nil && n > newestN && !e.IsDir() {
			newest, newestN = e.Name(), n
		}
	}
	if newest == "" {
		return nil
	}
	if newest != w.name {
		w.close()
		f, err := os.Open(filepath.Join(w.dir, newest))
		if err != nil {
			return err
		}
		w.f, w.name = f, newest
	}
	return w.f.Sync()
}

func (w *walSyncer) close() {
	if w.f != nil {
		_ = w.f.Close()
		w.f, w.name = nil, ""
	}
}

// sortedPoints returns the keys of m in a stable order (for deterministic replays).
func sortedPoints[V any](m map[sample.Point]V) []sample.Point {
	ps := make([]sample.Point, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].String() < ps[j].String() })
	return ps
}
