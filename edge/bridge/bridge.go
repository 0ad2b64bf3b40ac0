// Package bridge is the edge's link to the cloud hub (DESIGN §6): the uplink
// moves the selected part of voltage:changes and alarm:events into the site's
// JetStream stream UPLINK, which the hub sources across the leaf link; the
// downlink answers commands from the cloud on ems.{site}.down.cmd against the
// site's allow-list; the status publisher sends the site heartbeat.
//
// Delivery up is at least once into JetStream and exactly once in the stream: a
// Redis entry is acknowledged only after JetStream stored its message, and every
// message carries Nats-Msg-Id = uplink.MsgID(site, source, entry), so an entry
// published again after a crash or a failed publish is stored once as long as it
// comes back within the stream's duplicate window (uplink.yaml
// stream.duplicate_window_s).
//
// What it reads and writes is configured in config/edge/uplink.yaml (Config).
package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/subjects"
)

// Defaults of Options.
const (
	DefaultAckTimeout = 5 * time.Second
	DefaultBatch      = 1000
	DefaultBlock      = 200 * time.Millisecond
)

// Options are what a Bridge needs.
type Options struct {
	Site   *config.Config // the site (id, name, channels)
	Config Config         // uplink.yaml
	Redis  redis.UniversalClient
	NATS   *nats.Conn // a connection to the site's own NATS server (JetStream domain = site id)
	Log    *slog.Logger

	// AckTimeout is how long a publish may wait for JetStream's ack before it
	// counts as failed and is sent again. Default DefaultAckTimeout.
	AckTimeout time.Duration
	// Batch is the most Redis entries read at once; default DefaultBatch.
	Batch int
	// Block is how long a read waits for new entries; default DefaultBlock. It
	// also bounds how long the acknowledgements of a backlog's last full batch
	// wait for the read after it.
	Block time.Duration

	// GatewayURL is the site gateway the API proxy calls (apiproxy.go), e.g.
	// http://127.0.0.1:6005. Default: site.yaml's listen address of apigateway,
	// on loopback; SetGatewayAddr overrides both.
	GatewayURL string

	beforeAck func(feed string, ids []string) error // tests: see pipeline.beforeAck
}

// Bridge is the edge↔cloud bridge of one site.
type Bridge struct {
	o    Options
	site string
	js   jetstream.JetStream
	log  *slog.Logger

	// Changes and Alarms count the uplink's work, for /status and the tests.
	Changes, Alarms Counters

	streamMu sync.Mutex // one stream create/update at a time

	// cfg is the configuration in force: Options.Config, then what Reload gave.
	cfg atomic.Pointer[Config]
	// generation counts reloads, so the changes feed knows to rebuild its selection.
	generation atomic.Uint64

	downReady chan struct{} // closed once the downlink subscription is in place
	downOnce  sync.Once

	gateway atomic.Pointer[string] // the API proxy's gateway base URL (SetGatewayAddr)
}

// DownlinkReady is closed once RunDownlink listens for commands.
func (b *Bridge) DownlinkReady() <-chan struct{} { return b.downReady }

// New checks opts and returns a bridge; nothing runs until its Run methods.
func New(opts Options) (*Bridge, error) {
	if opts.Site == nil || opts.Redis == nil || opts.NATS == nil {
		return nil, errors.New("bridge: site, redis and nats are required")
	}
	site := opts.Site.Site.Site.ID
	if err := subjects.ValidSiteID(site); err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = DefaultAckTimeout
	}
	if opts.Batch <= 0 {
		opts.Batch = DefaultBatch
	}
	if opts.Block <= 0 {
		opts.Block = DefaultBlock
	}
	if opts.Config.Uplink.Window <= 0 {
		opts.Config.applyDefaults()
	}
	js, err := jetstream.New(opts.NATS,
		jetstream.WithPublishAsyncTimeout(opts.AckTimeout),
		// The pipeline bounds what is in flight itself; this only must not be lower.
		jetstream.WithPublishAsyncMaxPending(opts.Config.Uplink.Window+opts.Batch))
	if err != nil {
		return nil, fmt.Errorf("bridge: jetstream: %w", err)
	}
	b := &Bridge{o: opts, site: site, js: js, log: opts.Log, downReady: make(chan struct{})}
	b.cfg.Store(&opts.Config)
	return b, nil
}

// Config is the configuration in force.
func (b *Bridge) Config() Config { return *b.cfg.Load() }

// Reload puts c in force without a restart: the selection (with fresh deadband
// and sampling memory), the allow-list and waits, and the stream's limits.
// uplink.window and uplink.alarms take effect at the next start.
func (b *Bridge) Reload(ctx context.Context, c Config) error {
	c.applyDefaults()
	b.cfg.Store(&c)
	b.generation.Add(1)
	return b.EnsureStream(ctx)
}

// StreamConfig is the UPLINK stream the bridge keeps on the edge.
func StreamConfig(site string, s Stream) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        subjects.UplinkStream,
		Description: "what site " + site + " sends to the cloud hub (DESIGN §6)",
		Subjects:    subjects.UplinkSubjects(site),
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      s.MaxAge(),
		MaxBytes:    s.MaxBytes(),
		Duplicates:  s.DuplicateWindow(),
	}
}

// EnsureStream creates UPLINK, or updates its limits to the configured ones.
func (b *Bridge) EnsureStream(ctx context.Context) error {
	b.streamMu.Lock()
	defer b.streamMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, max(2*b.o.AckTimeout, 2*time.Second))
	defer cancel()
	if _, err := b.js.CreateOrUpdateStream(ctx, StreamConfig(b.site, b.Config().Stream)); err != nil {
		return fmt.Errorf("create or update stream %s: %w", subjects.UplinkStream, err)
	}
	return nil
}

// RunUplink moves voltage:changes (and alarm:events unless uplink.alarms is false)
// into UPLINK until ctx is done. JetStream or Redis going away is never an error:
// entries stay pending in Redis and are sent once both are back.
func (b *Bridge) RunUplink(ctx context.Context) error {
	for failures := 1; ctx.Err() == nil; failures++ {
		err := b.EnsureStream(ctx)
		if err == nil {
			break
		}
		b.log.Warn("uplink: stream not ready; retrying", "err", err)
		wait(ctx, retryPolicy.Delay(failures))
	}
	if ctx.Err() != nil {
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	start := func(name string, f feed, c *Counters) {
		p := &pipeline{name: name, js: b.js, feed: f, window: b.o.Config.Uplink.Window, batch: b.o.Batch,
			log: b.log, c: c, ensure: b.EnsureStream}
		if b.o.beforeAck != nil {
			p.beforeAck = func(ids []string) error { return b.o.beforeAck(name, ids) }
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.run(ctx); err != nil {
				errs <- fmt.Errorf("uplink %s: %w", name, err)
			}
		}()
	}
	start("changes", newChangesFeed(b, b.o.Batch, b.o.Block), &b.Changes)
	if b.o.Config.Uplink.AlarmsEnabled() {
		start("alarms", newAlarmsFeed(b.o.Redis, b.site, b.o.Batch, b.o.Block), &b.Alarms)
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
