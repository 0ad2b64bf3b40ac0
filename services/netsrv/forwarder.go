package netsrv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/voltageems/voltage/shared/backoff"
	"github.com/voltageems/voltage/shared/changefeed"
	"github.com/voltageems/voltage/shared/spool"
)

// feed is the part of changefeed.Consumer a forwarder uses.
type feed interface {
	Read(ctx context.Context) (changefeed.Batch, error)
	Ack(ctx context.Context, ids ...string) error
	Lag(ctx context.Context) (lag, pending int64, err error)
}

// forwarder moves one link's selection of voltage:changes to its endpoint.
//
// Delivery: a batch read from the link's consumer group is encoded into
// messages; after each message is acknowledged (PUBACK, HTTP 2xx) the entries it
// completes are acknowledged in the stream, so a restart resumes right after the
// last delivered message. While the endpoint is down the entries stay pending in
// the stream; once the outage lasts spool.after_s, messages go to the link's
// on-disk spool (and are then acknowledged in the stream). While the spool holds
// anything, new messages are appended behind them, and the spool is drained
// (throttled to replay_rate) before the stream is read again, so order is kept.
//
// One goroutine runs a forwarder; only the counters are read concurrently.
type forwarder struct {
	cfg     *LinkConfig
	log     *slog.Logger
	feed    feed
	spool   *spool.Spool
	link    link
	enc     *encoder
	sel     *selector
	m       *metrics
	limiter *rate.Limiter

	spoolAtEntries int64 // stream backlog that moves an outage to the spool

	wmPath    string   // spooled-through watermark file
	watermark streamID // last stream entry moved to the spool

	outageSince time.Time
	failures    int
	// drainAt is when a failed spool drain is tried again.
	drainAt       time.Time
	drainFailures int
	queuedAt      time.Time // last updateQueued

	// aggregation window
	acc      []tagged
	accIDs   []string
	accSince time.Time

	st status
}

// status is what /links reports; written by the forwarder, read by the API.
type status struct {
	sent, points, dropped, spooled, errors atomic.Uint64
	lag, pending                           atomic.Int64
	spoolDropped                           atomic.Uint64 // as last seen in spool.Stats
	mu                                     sync.Mutex
	lastErr                                string
	lastErrAt                              time.Time
}

func (s *status) setErr(err error) {
	s.mu.Lock()
	s.lastErr, s.lastErrAt = err.Error(), time.Now()
	s.mu.Unlock()
}

// spoolRecord is one message in the spool.
type spoolRecord struct {
	Message
	Points int    `json:"n"`
	High   string `json:"h,omitempty"` // newest stream entry this message completes
}

func (f *forwarder) label() string { return f.cfg.Name }

// run forwards until ctx is done. Entries read but not yet delivered stay pending
// in the stream and are delivered again after a restart.
func (f *forwarder) run(ctx context.Context) {
	f.updateQueued(ctx)
	for ctx.Err() == nil {
		f.maybeUpdateQueued(ctx)
		if f.spool.Stats().Records > 0 && f.link.connected() && !time.Now().Before(f.drainAt) {
			if f.drain(ctx) {
				f.drainFailures = 0
			} else {
				// Retry later; meanwhile new entries keep moving to the spool
				// behind the old ones, so the stream does not fill up.
				f.drainFailures++
				f.drainAt = time.Now().Add(retryPolicy.Delay(f.drainFailures))
			}
			continue
		}
		b, err := f.feed.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.log.Warn("read voltage:changes", "err", err)
			f.st.setErr(fmt.Errorf("read voltage:changes: %w", err))
			f.pause(ctx)
			continue
		}
		f.handle(ctx, b)
	}
}

// retryPolicy is the pause after consecutive failures (Delay(n) after n).
var retryPolicy = backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second}

// pause waits a capped, jittered, growing delay after a failure.
func (f *forwarder) pause(ctx context.Context) {
	f.failures++
	t := time.NewTimer(retryPolicy.Delay(f.failures))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	f.maybeUpdateQueued(ctx)
}

// maybeUpdateQueued refreshes the queue gauges at most once a second.
func (f *forwarder) maybeUpdateQueued(ctx context.Context) {
	if time.Since(f.queuedAt) >= time.Second {
		f.updateQueued(ctx)
	}
}

func (f *forwarder) handle(ctx context.Context, b changefeed.Batch) {
	for _, bad := range b.Bad {
		f.log.Warn("undecodable change entry; skipped", "id", bad.ID, "key", bad.Key, "err", bad.Err)
		f.drop("bad_entry", 1)
	}
	if len(b.Bad) > 0 {
		ids := make([]string, len(b.Bad))
		for i, bad := range b.Bad {
			ids[i] = bad.ID
		}
		f.ack(ctx, ids)
	}
	var fresh []changefeed.Entry
	var already []string
	for _, e := range b.Entries {
		if id, ok := parseStreamID(e.ID); ok && !f.watermark.less(id) {
			// Spooled before a crash that came before its stream acknowledgement.
			already = append(already, e.ID)
			continue
		}
		fresh = append(fresh, e)
	}
	f.ack(ctx, already)
	for _, e := range fresh {
		for _, s := range f.sel.samples(e.Key, &e.Message) {
			f.acc = append(f.acc, tagged{Sample: s, entry: e.ID})
		}
		f.accIDs = append(f.accIDs, e.ID)
	}
	if len(f.accIDs) == 0 {
		return
	}
	if f.cfg.WindowMS > 0 {
		if f.accSince.IsZero() {
			f.accSince = time.Now()
		}
		if time.Since(f.accSince) < time.Duration(f.cfg.WindowMS)*time.Millisecond && len(f.acc) < maxWindowSamples {
			return
		}
	}
	f.flush(ctx)
}

// maxWindowSamples bounds what an aggregation window holds before it is flushed early.
const maxWindowSamples = 200_000

// flush encodes and delivers what was accumulated.
func (f *forwarder) flush(ctx context.Context) {
	samples, ids := f.acc, f.accIDs
	f.acc, f.accIDs, f.accSince = nil, nil, time.Time{}
	if f.cfg.WindowMS > 0 {
		samples = latestPerPoint(samples)
	}
	kept := samples[:0:0]
	for _, s := range samples {
		if f.sel.pass(s.Sample) {
			kept = append(kept, s)
		}
	}
	msgs, idle, err := f.enc.build(kept, ids)
	if err != nil {
		f.log.Error("cannot encode changes; dropped", "entries", len(ids), "err", err)
		f.st.setErr(err)
		reason := "encode"
		if errors.Is(err, errTooLarge) {
			reason = "too_large"
		}
		f.drop(reason, uint64(len(ids)))
		f.ack(ctx, ids)
		return
	}
	f.ack(ctx, idle)
	f.deliver(ctx, msgs)
}

// latestPerPoint keeps the newest sample of each point, in the order of their
// newest changes.
func latestPerPoint(in []tagged) []tagged {
	type key struct {
		kind       string
		source, pt uint32
		typ        string
	}
	last := map[key]int{}
	for i, s := range in {
		last[key{s.Kind, s.Source, s.Point, s.Type}] = i
	}
	out := make([]tagged, 0, len(last))
	for i, s := range in {
		if last[key{s.Kind, s.Source, s.Point, s.Type}] == i {
			out = append(out, s)
		}
	}
	return out
}

// deliver publishes msgs in order. It returns when every message is delivered or
// spooled, or when ctx is done (the rest stays pending in the stream).
func (f *forwarder) deliver(ctx context.Context, msgs []Message) {
	for i := 0; i < len(msgs); {
		if ctx.Err() != nil {
			return
		}
		if f.spool.Stats().Records > 0 {
			f.toSpool(ctx, msgs[i:]) // keep order behind what is already spooled
			return
		}
		if f.link.connected() {
			err := f.link.publish(ctx, msgs[i])
			if err == nil {
				f.delivered(ctx, msgs[i])
				i++
				continue
			}
			if ctx.Err() != nil {
				return
			}
			f.failed(err)
		}
		if f.outageSince.IsZero() {
			f.outageSince = time.Now()
		}
		if time.Since(f.outageSince) >= f.cfg.SpoolAfter() || f.backlog() >= f.spoolAtEntries {
			f.toSpool(ctx, msgs[i:])
			return
		}
		f.pause(ctx)
	}
}

// backlog is the link's stream backlog as last measured.
func (f *forwarder) backlog() int64 { return max(f.st.lag.Load(), 0) + f.st.pending.Load() }

func (f *forwarder) delivered(ctx context.Context, m Message) {
	f.outageSince, f.failures = time.Time{}, 0
	n := uint64(countPoints(m))
	f.st.sent.Add(1)
	f.st.points.Add(n)
	f.m.sentMsgs.WithLabelValues(f.label()).Inc()
	f.m.sentPts.WithLabelValues(f.label()).Add(float64(n))
	f.ack(ctx, m.acks)
}

func (f *forwarder) failed(err error) {
	f.st.errors.Add(1)
	f.st.setErr(err)
	f.m.errors.WithLabelValues(f.label()).Inc()
	f.log.Debug("delivery failed", "err", err)
}

// countPoints is the number of samples a message carries (its acks are entries,
// the points were counted when it was built).
func countPoints(m Message) int { return m.points }

// toSpool appends msgs to the spool and only then acknowledges their entries in
// the stream. The spool's high-water stream id is recorded around the append
// (intent before, watermark after), so a restart can tell entries that are
// already in the spool from entries that are not, whenever the crash came.
func (f *forwarder) toSpool(ctx context.Context, msgs []Message) {
	recs := make([][]byte, 0, len(msgs))
	var ids []string
	var high streamID
	for _, m := range msgs {
		var mh streamID
		for _, id := range m.acks {
			ids = append(ids, id)
			if s, ok := parseStreamID(id); ok && mh.less(s) {
				mh = s
			}
		}
		if high.less(mh) {
			high = mh
		}
		b, err := json.Marshal(spoolRecord{Message: m, Points: m.points, High: mh.String()})
		if err != nil {
			f.log.Error("encode spool record", "err", err)
			continue
		}
		recs = append(recs, b)
	}
	moves := f.watermark.less(high)
	if moves {
		if err := writeWatermark(f.wmPath+".intent", high); err != nil {
			f.log.Warn("write spool intent", "err", err)
		}
	}
	for {
		err := f.spool.Append(recs...)
		if err == nil {
			break
		}
		f.log.Error("spool append failed; entries stay in the stream", "err", err)
		f.st.setErr(fmt.Errorf("spool: %w", err))
		f.pause(ctx)
		if ctx.Err() != nil {
			return
		}
	}
	if moves {
		if err := writeWatermark(f.wmPath, high); err != nil {
			f.log.Warn("write spool watermark", "err", err)
		}
		f.watermark = high
	}
	f.st.spooled.Add(uint64(len(recs)))
	f.m.spooled.WithLabelValues(f.label()).Add(float64(len(recs)))
	f.ack(ctx, ids)
	f.syncSpoolDrops()
}

// recoverWatermark finds the spool's high-water stream id after a crash between
// an intent and its watermark: from the records themselves, which are read only
// in that case.
func recoverWatermark(sp *spool.Spool, wmPath string) (streamID, error) {
	wm, err := readWatermark(wmPath)
	if err != nil {
		return wm, err
	}
	intent, err := readWatermark(wmPath + ".intent")
	if err != nil || !wm.less(intent) {
		return wm, err
	}
	n := sp.Stats().Records
	if n > 0 {
		recs, err := sp.Peek(int(n))
		if err != nil {
			return wm, fmt.Errorf("scan spool: %w", err)
		}
		for _, r := range recs {
			var rec spoolRecord
			if json.Unmarshal(r.Data, &rec) != nil {
				continue
			}
			if h, ok := parseStreamID(rec.High); ok && wm.less(h) {
				wm = h
			}
		}
	}
	return wm, writeWatermark(wmPath, wm)
}

// drain publishes spooled messages, throttled, committing each one delivered.
// It reports whether it made progress without an error.
func (f *forwarder) drain(ctx context.Context) bool {
	recs, err := f.spool.Peek(64)
	f.syncSpoolDrops()
	if err != nil {
		f.log.Error("read spool", "err", err)
		f.st.setErr(fmt.Errorf("spool: %w", err))
		return false
	}
	for _, r := range recs {
		if err := f.limiter.Wait(ctx); err != nil {
			return false
		}
		var rec spoolRecord
		if err := json.Unmarshal(r.Data, &rec); err != nil {
			f.log.Error("undecodable spool record; dropped", "seq", r.Seq, "err", err)
			f.drop("bad_entry", 1)
		} else {
			rec.points = rec.Points
			if err := f.link.publish(ctx, rec.Message); err != nil {
				f.failed(err)
				return false
			}
			f.delivered(ctx, rec.Message)
		}
		if err := f.spool.Commit(r.Seq); err != nil {
			f.log.Error("commit spool", "err", err)
			f.st.setErr(fmt.Errorf("spool commit: %w", err))
			return false
		}
	}
	return true
}

func (f *forwarder) syncSpoolDrops() {
	d := f.spool.Stats().Dropped
	if prev := f.st.spoolDropped.Swap(d); d > prev {
		f.drop("spool_full_or_age", d-prev)
	}
}

func (f *forwarder) drop(reason string, n uint64) {
	f.st.dropped.Add(n)
	f.m.dropped.WithLabelValues(f.label(), reason).Add(float64(n))
}

func (f *forwarder) ack(ctx context.Context, ids []string) {
	if len(ids) == 0 {
		return
	}
	for attempt := 0; ; attempt++ {
		err := f.feed.Ack(ctx, ids...)
		if err == nil || ctx.Err() != nil {
			return
		}
		f.log.Warn("ack voltage:changes", "err", err)
		if attempt == 5 {
			// The entries were delivered; they come again after a restart and are
			// sent twice rather than lost.
			return
		}
		f.pause(ctx)
	}
}

func (f *forwarder) updateQueued(ctx context.Context) {
	f.queuedAt = time.Now()
	lctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if lag, pending, err := f.feed.Lag(lctx); err == nil {
		f.st.lag.Store(lag)
		f.st.pending.Store(pending)
		f.m.queued.WithLabelValues(f.label(), "stream").Set(float64(max(lag, 0) + pending))
	}
	f.m.queued.WithLabelValues(f.label(), "spool").Set(float64(f.spool.Stats().Records))
	up, _ := f.link.state()
	v := 0.0
	if up {
		v = 1
	}
	f.m.connected.WithLabelValues(f.label()).Set(v)
}

// streamID is a voltage:changes entry id.
type streamID struct{ ms, seq uint64 }

func parseStreamID(s string) (streamID, bool) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return streamID{}, false
	}
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	return streamID{ms, seq}, err1 == nil && err2 == nil
}

func (a streamID) less(b streamID) bool {
	return a.ms < b.ms || a.ms == b.ms && a.seq < b.seq
}

func (a streamID) String() string { return fmt.Sprintf("%d-%d", a.ms, a.seq) }

func readWatermark(path string) (streamID, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return streamID{}, nil
	}
	if err != nil {
		return streamID{}, err
	}
	id, ok := parseStreamID(strings.TrimSpace(string(b)))
	if !ok {
		return streamID{}, fmt.Errorf("%s: %q is not a stream id", path, b)
	}
	return id, nil
}

// writeWatermark replaces the file atomically and durably.
func writeWatermark(path string, id streamID) error {
	tmp := path + ".tmp"
	fh, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := fh.WriteString(id.String() + "\n"); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
