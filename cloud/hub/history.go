package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/voltageems/voltage/services/hissrv/embedded"
	"github.com/voltageems/voltage/services/hissrv/influx"
	"github.com/voltageems/voltage/services/hissrv/query"
	"github.com/voltageems/voltage/services/hissrv/sample"
	"github.com/voltageems/voltage/shared/changefeed"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/subjects"
)

// HistoryConsumer is the durable consumer on every hub stream that feeds history.
const HistoryConsumer = "history"

// historyBatch is how many uplink messages one history write takes at most.
const historyBatch = 500

// history is the cloud's history: hissrv's backends, one per site (the site is
// the series' site label in the embedded store and the site tag in InfluxDB).
type history struct {
	cfg History
	log *slog.Logger

	mu    sync.Mutex
	sites map[string]*siteHistory
}

type siteHistory struct {
	store  *embedded.Store // embedded backend
	influx *influx.Backend // influx backend
	query  *query.History  // embedded only: range queries
}

func (h *hub) openHistory() error {
	if h.cfg.History.Backend == HistoryNone {
		return nil
	}
	if h.cfg.History.Backend == HistoryEmbedded {
		if err := os.MkdirAll(h.cfg.History.Dir, 0o755); err != nil {
			return fmt.Errorf("history.dir: %w", err)
		}
	}
	h.hist = &history{cfg: h.cfg.History, log: h.log, sites: map[string]*siteHistory{}}
	return nil
}

func (h *hub) closeHistory() {
	if h.hist == nil {
		return
	}
	h.hist.mu.Lock()
	defer h.hist.mu.Unlock()
	for id, s := range h.hist.sites {
		if s.store != nil {
			if err := s.store.Close(); err != nil {
				h.log.Warn("close history store", "site", id, "err", err)
			}
		}
		if s.influx != nil {
			_ = s.influx.Close()
		}
	}
	h.hist.sites = map[string]*siteHistory{}
}

// tiers are the embedded store's downsampled tiers (hissrv's defaults).
var tiers = []embedded.TierOptions{
	{Name: "1m", Width: time.Minute, Retention: embedded.Retention{Age: 365 * 24 * time.Hour}},
	{Name: "1h", Width: time.Hour, Retention: embedded.Retention{Age: 5 * 365 * 24 * time.Hour}},
}

// site opens (once) the backend of one site.
func (hs *history) site(id string) (*siteHistory, error) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if s, ok := hs.sites[id]; ok {
		return s, nil
	}
	s := &siteHistory{}
	switch hs.cfg.Backend {
	case HistoryEmbedded:
		st, err := embedded.Open(embedded.Options{
			Dir: filepath.Join(hs.cfg.Dir, id), Site: id,
			Raw: embedded.Retention{Age: hs.cfg.Retention.Duration}, Tiers: tiers,
			// The batch is acknowledged in the stream right after the write: the
			// write must be on disk by then, as hissrv's default (sync_wal).
			SyncWAL: true,
			Log:     hs.log.With("site", id),
		})
		if err != nil {
			return nil, fmt.Errorf("open history store of site %s in %s: %w", id, hs.cfg.Dir, err)
		}
		s.store = st
		qt := make([]query.Tier, len(tiers))
		for i, t := range tiers {
			qt[i] = query.Tier{Name: t.Name, Width: t.Width, Retention: t.Retention.Age}
		}
		s.query = &query.History{Store: st, Site: id, Tiers: qt, RawRetention: hs.cfg.Retention.Duration}
	case HistoryInflux:
		s.influx = influx.New(influx.Options{
			Name: "cloud-influx", URL: hs.cfg.Influx.URL, Org: hs.cfg.Influx.Org, Bucket: hs.cfg.Influx.Bucket,
			Token: os.Getenv(hs.cfg.Influx.TokenEnv), Site: id, Gzip: true,
		})
	}
	hs.sites[id] = s
	return s, nil
}

// write stores samples in the site's backend.
func (s *siteHistory) write(ctx context.Context, smp []sample.Sample, caughtUp bool) error {
	if s.store != nil {
		if _, err := s.store.Write(ctx, smp); err != nil {
			return err
		}
		_, err := s.store.Tick(ctx, time.Now(), caughtUp)
		return err
	}
	_, _, err := s.influx.Write(ctx, smp)
	return err
}

// samplesOf turns one uplink message into history samples; nil for messages
// without point values (status, alarms) and for unreadable ones.
func samplesOf(subject string, data []byte, dst []sample.Sample) ([]sample.Sample, error) {
	u, ok := subjects.ParseUp(subject)
	if !ok || (u.Kind != subjects.KindChannel && u.Kind != subjects.KindInstance) {
		return dst, nil
	}
	m, err := statestore.DecodeMessage(data)
	if err != nil {
		return dst, err
	}
	return sample.FromEntry(changefeed.Entry{Key: hashKey(u), Message: m}, dst)
}

// writeHistory feeds the site's hub stream to its history backend through the
// durable consumer "history", acknowledging a batch only after it was written: a
// backend that is away holds the backlog in the stream, and a restart resumes at
// the last acknowledged message.
func (h *hub) writeHistory(ctx context.Context, s *siteState, log *slog.Logger) {
	var b backoff
	var cons jetstream.Consumer
	for ctx.Err() == nil {
		var err error
		cons, err = h.historyConsumer(ctx, s.id, log)
		if err == nil {
			break
		}
		if ctx.Err() == nil {
			log.Warn("cannot create the history consumer; retrying", "err", err)
		}
		if !sleep(ctx, b.next()) {
			return
		}
	}
	var smp []sample.Sample
	for ctx.Err() == nil {
		batch, err := cons.FetchNoWait(historyBatch)
		if err == nil {
			// FetchNoWait returns at once when nothing is pending; wait a little then.
			var msgs []jetstream.Msg
			for m := range batch.Messages() {
				msgs = append(msgs, m)
			}
			if batch.Error() != nil && !errors.Is(batch.Error(), jetstream.ErrNoMessages) {
				err = batch.Error()
			}
			if len(msgs) == 0 && err == nil {
				batch, err = cons.Fetch(historyBatch, jetstream.FetchMaxWait(time.Second))
				if err == nil {
					for m := range batch.Messages() {
						msgs = append(msgs, m)
					}
				}
			}
			if len(msgs) > 0 {
				smp = smp[:0]
				for _, m := range msgs {
					var berr error
					if smp, berr = samplesOf(m.Subject(), m.Data(), smp); berr != nil {
						log.Warn("uplink message without history", "subject", m.Subject(), "err", berr)
					}
				}
				caughtUp := len(msgs) < historyBatch
				if !h.storeHistory(ctx, s.id, smp, caughtUp, log) {
					return
				}
				if aerr := msgs[len(msgs)-1].Ack(); aerr != nil && ctx.Err() == nil {
					log.Warn("cannot acknowledge written history; it will be written again", "err", aerr)
				}
				h.metrics.historySamples.WithLabelValues(s.id).Add(float64(len(smp)))
				b = backoff{}
				continue
			}
		}
		if err != nil && ctx.Err() == nil && !errors.Is(err, jetstream.ErrNoMessages) {
			log.Warn("history fetch failed; retrying", "err", err)
			if !sleep(ctx, b.next()) {
				return
			}
		}
	}
}

// historyConfig is the history consumer of a site's hub stream, delivering from
// start (a stream sequence; 0: from the beginning).
func historyConfig(start uint64) jetstream.ConsumerConfig {
	c := jetstream.ConsumerConfig{
		Durable:       HistoryConsumer,
		Description:   "writes the site's uplink to the cloud history",
		AckPolicy:     jetstream.AckAllPolicy,
		AckWait:       time.Minute,
		MaxAckPending: 10 * historyBatch,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if start > 0 {
		c.DeliverPolicy, c.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	}
	return c
}

// historyConsumer opens the site's history consumer so that it resumes right
// after the last acknowledged message. Messages a previous hub process took and
// never acknowledged (it was killed mid-batch) would otherwise wait out AckWait, a
// minute, before coming again: the consumer is then made anew from the
// acknowledgement floor, which re-delivers them at once (a batch written twice
// is stored once: repeats are recognised).
func (h *hub) historyConsumer(ctx context.Context, site string, log *slog.Logger) (jetstream.Consumer, error) {
	stream := subjects.HubStream(site)
	if old, err := h.js.Consumer(ctx, stream, HistoryConsumer); err == nil {
		info, err := old.Info(ctx)
		if err != nil {
			return nil, err
		}
		if info.NumAckPending == 0 {
			return old, nil // its deliver policy may be a start sequence: kept as it is
		}
		log.Info("history consumer resumes after its acknowledged messages", "ack_floor", info.AckFloor.Stream,
			"unacknowledged", info.NumAckPending)
		if err := h.js.DeleteConsumer(ctx, stream, HistoryConsumer); err != nil {
			return nil, err
		}
		return h.js.CreateOrUpdateConsumer(ctx, stream, historyConfig(info.AckFloor.Stream+1))
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, err
	}
	return h.js.CreateOrUpdateConsumer(ctx, stream, historyConfig(0))
}

// storeHistory writes samples, retrying with backoff until it succeeds or ctx is
// done (then false: the batch stays unacknowledged and is written after restart).
func (h *hub) storeHistory(ctx context.Context, id string, smp []sample.Sample, caughtUp bool, log *slog.Logger) bool {
	var b backoff
	for {
		site, err := h.hist.site(id)
		if err == nil {
			if len(smp) == 0 {
				return true
			}
			if err = site.write(ctx, smp, caughtUp); err == nil {
				return true
			}
		}
		h.metrics.historyErrors.WithLabelValues(id).Inc()
		if ctx.Err() != nil {
			return false
		}
		log.Warn("cannot write history; keeping the batch unacknowledged and retrying", "samples", len(smp), "err", err)
		if !sleep(ctx, b.next()) {
			return false
		}
	}
}

// errNoHistory: the cloud keeps no history (history.backend none or influx, which
// is queried in InfluxDB itself).
var errNoHistory = errors.New("the hub's history backend does not answer queries (history.backend is not embedded)")

// historyRange answers a range request of one site.
func (h *hub) historyRange(ctx context.Context, id string, v url.Values) ([]query.Series, error) {
	if h.hist == nil || h.hist.cfg.Backend != HistoryEmbedded {
		return nil, errNoHistory
	}
	site, err := h.hist.site(id)
	if err != nil {
		return nil, err
	}
	r, err := query.ParseRange(v, time.Now(), site.query.TierNames())
	if err != nil {
		return nil, badRequest{err}
	}
	return site.query.Range(ctx, r)
}

// badRequest marks an error in the caller's input.
type badRequest struct{ error }

func (e badRequest) Unwrap() error { return e.error }
