package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/voltageems/voltage/shared/subjects"
)

// The registry's durable part: every site's name and first and last heartbeat, in
// the KV bucket subjects.CloudSitesBucket. Fleet values and alarms are rebuilt from
// the hub streams; heartbeats are not stored in UPLINK (DESIGN §6), so without this
// a hub restart would forget when a site was first seen and which sites registered
// by heartbeat.

// persistEvery bounds how often a site's last-seen time is written.
const persistEvery = 30 * time.Second

type siteRecord struct {
	ID        string `json:"id"`
	Name      string `json:"name,omitempty"`
	FirstSeen int64  `json:"first_seen,omitempty"` // Unix ms
	LastSeen  int64  `json:"last_seen,omitempty"`  // Unix ms
}

func (h *hub) openSiteStore(ctx context.Context) error {
	var b backoff
	for {
		kv, err := h.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: subjects.CloudSitesBucket, Description: "VoltageEMS cloud site registry",
			History: 1, Storage: jetstream.FileStorage,
		})
		if err == nil {
			h.siteKV.Store(&kv)
			return nil
		}
		h.log.Warn("cannot open the site registry bucket; retrying", "bucket", subjects.CloudSitesBucket, "err", err)
		if !sleep(ctx, b.next()) {
			return fmt.Errorf("open KV bucket %s: %w", subjects.CloudSitesBucket, err)
		}
	}
}

// restoreSites registers the sites the hub knew before it stopped: those in the
// registry bucket and those with a hub stream (SITE_{site}).
func (h *hub) restoreSites(ctx context.Context) error {
	kv := *h.siteKV.Load()
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("list %s: %w", subjects.CloudSitesBucket, err)
	}
	for key := range lister.Keys() {
		e, err := kv.Get(ctx, key)
		if err != nil {
			continue
		}
		var rec siteRecord
		if json.Unmarshal(e.Value(), &rec) != nil || subjects.ValidSiteID(rec.ID) != nil {
			h.log.Warn("unreadable site registry entry skipped", "key", key)
			continue
		}
		if h.reg.get(rec.ID) == nil && !*h.cfg.Registry.AutoRegister {
			continue
		}
		s := h.addSite(rec.ID, rec.Name, false)
		s.mu.Lock()
		if rec.FirstSeen != 0 {
			s.seen(time.UnixMilli(rec.FirstSeen))
		}
		if rec.LastSeen != 0 {
			s.seen(time.UnixMilli(rec.LastSeen))
		}
		s.persisted = time.UnixMilli(rec.LastSeen)
		s.mu.Unlock()
	}
	if *h.cfg.Registry.AutoRegister {
		for name := range h.js.StreamNames(ctx).Name() {
			if id, ok := strings.CutPrefix(name, subjects.HubStream("")); ok && subjects.ValidSiteID(id) == nil {
				h.addSite(id, "", false)
			}
		}
	}
	return nil
}

// persistSite writes a site's registry entry when it was never written or its
// last write is older than persistEvery.
func (h *hub) persistSite(ctx context.Context, s *siteState, now time.Time) {
	kvp := h.siteKV.Load()
	if kvp == nil {
		return // not open yet; the next heartbeat writes it
	}
	s.mu.Lock()
	if !s.persisted.IsZero() && now.Sub(s.persisted) < persistEvery {
		s.mu.Unlock()
		return
	}
	rec := siteRecord{ID: s.id, Name: s.name}
	if !s.firstSeen.IsZero() {
		rec.FirstSeen = s.firstSeen.UnixMilli()
	}
	if !s.lastSeen.IsZero() {
		rec.LastSeen = s.lastSeen.UnixMilli()
	}
	s.persisted = now
	s.mu.Unlock()
	b, _ := json.Marshal(rec)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := (*kvp).Put(ctx, s.id, b); err != nil && !errors.Is(err, context.Canceled) {
		h.log.Warn("cannot write the site registry entry", "site", s.id, "err", err)
		s.mu.Lock()
		s.persisted = time.Time{} // try again with the next heartbeat
		s.mu.Unlock()
	}
}
