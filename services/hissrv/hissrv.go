// Package hissrv is the history service (DESIGN §7): it reads voltage:changes with
// one consumer group per backend, writes every sample with its sample time to the
// embedded TSDB (the default) and to any InfluxDB 2 servers configured, and
// acknowledges an entry only once its backend made it durable. While a backend
// is down its backlog stays in the stream, and moves to a bounded on-disk spool
// before the stream's cap would trim it. The history is read through the query
// API (range, latest, CSV) and a Prometheus-compatible API for Grafana.
//
// Run is the whole service; cmd/hissrv is a thin main around it.
package hissrv

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voltageems/voltage/services/hissrv/embedded"
	"github.com/voltageems/voltage/services/hissrv/influx"
	"github.com/voltageems/voltage/services/hissrv/query"
	"github.com/voltageems/voltage/shared/changefeed"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/obs"
	"github.com/voltageems/voltage/shared/service"
	"github.com/voltageems/voltage/shared/spool"
)

// Config is what Run needs.
type Config struct {
	Site      *config.Config
	ConfigDir string // hissrv.yaml is read from ConfigDir/hissrv/hissrv.yaml
	HTTPAddr  string
	Log       *slog.Logger
	Reload    <-chan struct{}

	// File is hissrv.yaml already loaded; nil loads it from ConfigDir.
	File *File
	// DataDir overrides the file's data_dir (the --data flag).
	DataDir string
	// Bound, when set, receives the HTTP listener's address (tests use port 0).
	Bound func(net.Addr)
}

// Run runs hissrv until ctx is done. A bad hissrv.yaml is a *service.ConfigError.
func Run(ctx context.Context, cfg Config) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	file := cfg.File
	if file == nil {
		f, err := LoadFile(cfg.ConfigDir)
		if err != nil {
			return &service.ConfigError{Err: err}
		}
		file = &f
	}
	dataDir := file.DataDir
	if cfg.DataDir != "" {
		dataDir = cfg.DataDir
	}
	site := cfg.Site.Site.Site.ID
	maxLen := cfg.Site.Site.Redis.ChangesMaxLen
	if maxLen <= 0 {
		maxLen = config.DefaultChangesMaxLen
	}

	base, err := service.Open(ctx, "hissrv", cfg.Site, log)
	if err != nil {
		return err
	}
	defer base.Close()
	rdb, srv := base.Redis, base.HTTP
	srv.HandleProfiles()
	m := newMetrics(srv.Registry)

	var backends []Backend
	defer func() {
		for _, b := range backends {
			_ = b.Close()
		}
	}()
	var store *embedded.Store
	if *file.Embedded.Enabled {
		store, err = openEmbedded(file, dataDir, site, log, srv)
		if err != nil {
			return err
		}
		defer store.Close()
		backends = append(backends, embeddedBackend{store})
		api := &query.API{History: newHistory(store, file, site), Prom: query.NewProm(store, log), Log: log}
		api.Register(srv.Handle)
	}
	for _, ic := range file.Influx {
		tok, err := ic.token()
		if err != nil {
			return &service.ConfigError{Err: err}
		}
		backends = append(backends, influxBackend{influx.New(influx.Options{
			Name: "influx-" + ic.Name, URL: ic.URL, Token: tok, Org: ic.Org, Bucket: ic.Bucket,
			Measurement: ic.Measurement, Site: site, BatchSize: ic.BatchSize, Gzip: *ic.Gzip, Timeout: ic.Timeout.D(),
		})})
	}

	var pipes []*pipeline
	for _, b := range backends {
		sp, err := spool.Open(spool.Options{
			Dir:      filepath.Join(dataDir, "spool", b.Name()),
			MaxBytes: file.Spool.MaxBytes.N(),
			MaxAge:   file.Spool.MaxAge.D(),
		})
		if err != nil {
			return fmt.Errorf("spool of %s: %w", b.Name(), err)
		}
		defer sp.Close()
		maxBackoff := 30 * time.Second
		for _, ic := range file.Influx {
			if "influx-"+ic.Name == b.Name() {
				maxBackoff = ic.MaxBackoff.D()
			}
		}
		pipes = append(pipes, &pipeline{
			backend: b,
			feed: changefeed.New(rdb, changefeed.Options{
				Group: GroupPrefix + b.Name(), Count: file.BatchSize, Block: time.Second,
			}),
			spool: sp, metrics: m, log: log.With("backend", b.Name()),
			maxLen: maxLen, spillAt: file.Spool.Threshold, batch: file.BatchSize,
			backoff: maxBackoff, minPause: 100 * time.Millisecond,
		})
	}

	var wg sync.WaitGroup
	for _, p := range pipes {
		wg.Go(func() { p.run(ctx) })
	}
	names := make([]string, len(backends))
	for i, b := range backends {
		names[i] = b.Name()
	}
	log.Info("hissrv running", "backends", names, "data", dataDir, "http", cfg.HTTPAddr)

	// hissrv.yaml is read at start only (reload = nil: SIGHUP is logged, POST
	// /reload answers 501).
	bound := func(a net.Addr) {
		log.Info("hissrv listening", "addr", a.String())
		if cfg.Bound != nil {
			cfg.Bound(a)
		}
	}
	err = base.Serve(ctx, cfg.HTTPAddr, bound, cfg.Reload, nil)
	cancel()
	wg.Wait()
	return err
}

func openEmbedded(file *File, dataDir, site string, log *slog.Logger, srv *obs.Server) (*embedded.Store, error) {
	e := file.Embedded
	tiers := make([]embedded.TierOptions, len(e.Tiers))
	for i, t := range e.Tiers {
		tiers[i] = embedded.TierOptions{Name: t.Name, Width: t.Width.D(),
			Retention: embedded.Retention{Age: t.Retention.Age.D(), MaxBytes: t.Retention.Size.N()}}
	}
	store, err := embedded.Open(embedded.Options{
		Dir: filepath.Join(dataDir, "embedded"), Site: site,
		Raw:   embedded.Retention{Age: e.Retention.Age.D(), MaxBytes: e.Retention.Size.N()},
		Tiers: tiers, Grace: e.Grace.D(), SyncWAL: *e.SyncWAL,
		Log: log, Registerer: srv.Registry,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded history store: %w", err)
	}
	for _, t := range e.Tiers {
		name := t.Name
		srv.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "hissrv_tier_late_samples_total", ConstLabels: prometheus.Labels{"tier": name},
			Help: "Samples that arrived for a tier bucket already closed: in the raw store, not in the tier.",
		}, func() float64 { return float64(store.LateSamples()[name]) }))
	}
	return store, nil
}

func newHistory(store *embedded.Store, file *File, site string) *query.History {
	h := &query.History{Store: store, Site: site, RawRetention: file.Embedded.Retention.Age.D()}
	for _, t := range file.Embedded.Tiers {
		h.Tiers = append(h.Tiers, query.Tier{Name: t.Name, Width: t.Width.D(), Retention: t.Retention.Age.D()})
	}
	return h
}
