package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	shbackoff "github.com/voltageems/voltage/shared/backoff"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/uplink"
)

// onHeartbeat handles a live heartbeat on ems.*.up.status: it marks the site seen
// and registers a site the hub did not know yet.
func (h *hub) onHeartbeat(m *nats.Msg) {
	id := subjects.SiteFromSubject(m.Subject)
	if err := subjects.ValidSiteID(id); err != nil {
		h.log.Warn("heartbeat on an invalid subject dropped", "subject", m.Subject, "err", err)
		return
	}
	var st uplink.Status
	if err := json.Unmarshal(m.Data, &st); err != nil {
		h.log.Warn("unreadable heartbeat dropped", "site", id, "err", err)
		return
	}
	if st.Site != "" && st.Site != id {
		h.log.Warn("heartbeat names another site than its subject; dropped", "subject", m.Subject, "site", st.Site)
		return
	}
	s := h.reg.get(id)
	if s == nil {
		if !*h.cfg.Registry.AutoRegister {
			h.log.Debug("heartbeat of a site not in cloud.yaml ignored (registry.auto_register is off)", "site", id)
			return
		}
		s = h.addSite(id, st.Name, false)
	}
	now := h.reg.now()
	s.heartbeat(&st, now)
	h.persistSite(h.ctx, s, now)
}

// streamConfig is the hub stream of one site: no subjects of its own, one source,
// the site's UPLINK in JetStream domain {site}.
func (h *hub) streamConfig(id string) jetstream.StreamConfig {
	storage := jetstream.FileStorage
	if h.cfg.Streams.Storage == "memory" {
		storage = jetstream.MemoryStorage
	}
	return jetstream.StreamConfig{
		Name:        subjects.HubStream(id),
		Description: "uplink of site " + id + ", sourced from its UPLINK stream across the leaf link",
		Sources: []*jetstream.StreamSource{{
			Name: subjects.UplinkStream,
			External: &jetstream.ExternalStream{
				APIPrefix:     subjects.JSDomainAPI(id),
				DeliverPrefix: subjects.SourceDeliver(id),
			},
		}},
		Retention:  jetstream.LimitsPolicy,
		Storage:    storage,
		MaxAge:     h.cfg.Streams.MaxAge.Duration,
		MaxBytes:   h.cfg.Streams.MaxBytes,
		MaxMsgs:    h.cfg.Streams.MaxMsgs,
		Duplicates: h.cfg.Streams.Duplicates.Duration,
		Discard:    jetstream.DiscardOld,
	}
}

// backoff is a capped exponential delay with jitter (DESIGN §11).
type backoff struct{ n int }

// retryPolicy paces the hub's retries of NATS, JetStream and history writes.
var retryPolicy = shbackoff.Policy{Min: 100 * time.Millisecond, Max: 6400 * time.Millisecond}

func (b *backoff) next() time.Duration {
	d := retryPolicy.Delay(b.n)
	b.n++
	return d
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// runSite keeps one site's hub stream, fleet follower and history writer running
// until ctx is done, retrying with backoff while NATS or JetStream is unavailable.
func (h *hub) runSite(ctx context.Context, s *siteState) {
	log := h.log.With("site", s.id)
	s.useKeyFigures(h.cfg.keyFiguresFor(s.id))
	var b backoff
	for {
		if _, err := h.js.CreateOrUpdateStream(ctx, h.streamConfig(s.id)); err == nil {
			break
		} else if ctx.Err() == nil {
			log.Warn("cannot create the site's hub stream; retrying", "stream", subjects.HubStream(s.id), "err", err)
		}
		if !sleep(ctx, b.next()) {
			return
		}
	}
	log.Info("sourcing the site's uplink", "stream", subjects.HubStream(s.id), "from", subjects.JSDomainAPI(s.id)+"/"+subjects.UplinkStream)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); h.followFleet(ctx, s, log) }()
	go func() { defer wg.Done(); h.superviseSource(ctx, s.id, log) }()
	if h.hist != nil {
		h.writeHistory(ctx, s, log)
	}
	wg.Wait()
}

// Source supervision. nats-server retries a source whose consumer request got no
// answer (the link was down) only after 30 s and then with a backoff of up to two
// minutes, so a link that returns would sit idle for minutes. The hub therefore
// checks every sourceCheckInterval: when the source has been silent for longer
// than sourceIdle (a healthy source hears the consumer's heartbeat every second)
// and the site's JetStream answers across the link, it restarts the source by
// removing and re-adding it. Re-adding starts at the sequence after the last one
// the hub stream holds from that source, so nothing is skipped or doubled.
const (
	sourceCheckInterval = 2 * time.Second
	sourceIdle          = 5 * time.Second
	sourceKickInterval  = 10 * time.Second // at most one restart per site in this time
)

func (h *hub) superviseSource(ctx context.Context, id string, log *slog.Logger) {
	tick := time.NewTicker(sourceCheckInterval)
	defer tick.Stop()
	var lastKick time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		st, err := h.sourceState(ctx, id)
		if err != nil || (st.Active != nil && time.Duration(*st.Active)*time.Millisecond < sourceIdle) {
			continue
		}
		if time.Since(lastKick) < sourceKickInterval || !h.siteReachable(ctx, id) {
			continue
		}
		lastKick = time.Now()
		if err := h.restartSource(ctx, id); err != nil {
			if ctx.Err() == nil {
				log.Warn("cannot restart the idle source", "err", err)
			}
			continue
		}
		log.Info("site reachable but its source was idle; sourcing restarted", "stream", st.Stream, "messages", st.Messages)
	}
}

// siteReachable asks the site's JetStream for its UPLINK stream across the leaf
// link. The reply subject is inside the site's scope (subjects.CommandReply), so
// a site with restricted credentials can answer it.
func (h *hub) siteReachable(ctx context.Context, id string) bool {
	reply := subjects.CommandReply(id, "probe-"+nuid.Next())
	sub, err := h.nc.SubscribeSync(reply)
	if err != nil {
		return false
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := h.nc.PublishRequest(subjects.JSDomainAPI(id)+".STREAM.INFO."+subjects.UplinkStream, reply, nil); err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	m, err := sub.NextMsgWithContext(ctx)
	if err != nil || m.Header.Get("Status") == "503" {
		return false
	}
	var info struct {
		Error *struct{ Description string } `json:"error"`
	}
	return json.Unmarshal(m.Data, &info) == nil && info.Error == nil
}

// restartSource removes the site's source from its hub stream and adds it again.
func (h *hub) restartSource(ctx context.Context, id string) error {
	cfg := h.streamConfig(id)
	without := cfg
	without.Sources = nil
	if _, err := h.js.UpdateStream(ctx, without); err != nil {
		return fmt.Errorf("remove source: %w", err)
	}
	if _, err := h.js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("add source again: %w", err)
	}
	return nil
}

// followFleet folds the site's hub stream, from its first message, into the fleet
// state. An ordered consumer recreates itself after any gap, so this only retries
// when it cannot be created at all.
func (h *hub) followFleet(ctx context.Context, s *siteState, log *slog.Logger) {
	var b backoff
	for ctx.Err() == nil {
		cons, err := h.js.OrderedConsumer(ctx, subjects.HubStream(s.id), jetstream.OrderedConsumerConfig{})
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("cannot follow the site's hub stream; retrying", "err", err)
			}
			if !sleep(ctx, b.next()) {
				return
			}
			continue
		}
		b = backoff{}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			var seq uint64
			if md, err := m.Metadata(); err == nil {
				seq = md.Sequence.Stream
			}
			if err := s.apply(m.Subject(), seq, m.Data(), h.reg.now()); err != nil {
				h.metrics.badMessages.WithLabelValues(s.id).Inc()
				log.Warn("uplink message skipped", "subject", m.Subject(), "seq", seq, "err", err)
			}
			h.metrics.uplink.WithLabelValues(s.id).Inc()
		})
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("cannot consume the site's hub stream; retrying", "err", err)
			}
			if !sleep(ctx, b.next()) {
				return
			}
			continue
		}
		<-ctx.Done()
		cc.Stop()
		return
	}
}

// SourceState is how the sourcing of a site's UPLINK stands.
type SourceState struct {
	Stream   string `json:"stream" doc:"the hub stream, SITE_{site}"`
	Messages uint64 `json:"messages" doc:"messages in the hub stream"`
	Bytes    uint64 `json:"bytes"`
	LastSeq  uint64 `json:"last_seq"`
	Lag      uint64 `json:"lag" doc:"messages of UPLINK not sourced yet, as last reported"`
	Active   *int64 `json:"active_ms,omitempty" doc:"ms since the source last delivered; absent while the link is down"`
	Error    string `json:"error,omitempty"`
}

// sourceState reads the hub stream's info.
func (h *hub) sourceState(ctx context.Context, id string) (SourceState, error) {
	st := SourceState{Stream: subjects.HubStream(id)}
	str, err := h.js.Stream(ctx, st.Stream)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return st, nil
		}
		return st, fmt.Errorf("stream %s: %w", st.Stream, err)
	}
	info, err := str.Info(ctx)
	if err != nil {
		return st, fmt.Errorf("stream %s info: %w", st.Stream, err)
	}
	st.Messages, st.Bytes, st.LastSeq = info.State.Msgs, info.State.Bytes, info.State.LastSeq
	for _, src := range info.Sources {
		st.Lag = src.Lag
		if src.Active >= 0 && src.Active < 24*time.Hour*365 {
			ms := src.Active.Milliseconds()
			st.Active = &ms
		}
		if src.Error != nil {
			st.Error = src.Error.Description
		}
	}
	return st, nil
}
