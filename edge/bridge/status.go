package bridge

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/service"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/uplink"
)

// DefaultStatusInterval is how often the site heartbeat goes out.
const DefaultStatusInterval = 5 * time.Second

// Status reads the site's state from Redis: the services from their svc:*
// heartbeats (expected ones, the appliance's, listed even when absent), the
// channels from comsrv:{ch}:status. What Redis cannot tell reads as not ready
// and state "unknown".
func (b *Bridge) Status(ctx context.Context, expected []string) uplink.Status {
	st := uplink.Status{
		Site: b.site, Name: b.o.Site.Site.Site.Name, TS: time.Now().UnixMilli(), Version: service.Version,
		Services: []uplink.ServiceStatus{}, Channels: []uplink.ChannelStatus{},
	}
	byName := map[string]*uplink.ServiceStatus{}
	for _, name := range expected {
		st.Services = append(st.Services, uplink.ServiceStatus{Name: name})
	}
	rdb := b.o.Redis
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var keys []string
	iter := rdb.Scan(ctx, 0, keyspace.ServiceHeartbeatPattern, 200).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	slices.Sort(keys)
	for _, key := range keys {
		name, _, ok := keyspace.ParseServiceHeartbeat(key)
		if !ok {
			continue
		}
		h, err := rdb.HGetAll(ctx, key).Result()
		if err != nil || len(h) == 0 {
			continue
		}
		beat, _ := strconv.ParseInt(h["heartbeat"], 10, 64)
		ready := time.Since(time.UnixMilli(beat)) < service.HeartbeatTTL
		i := slices.IndexFunc(st.Services, func(s uplink.ServiceStatus) bool { return s.Name == name })
		if i < 0 {
			st.Services = append(st.Services, uplink.ServiceStatus{Name: name})
			i = len(st.Services) - 1
		}
		s := &st.Services[i]
		if _, seen := byName[name]; seen && s.Ready {
			continue // another instance of the same service is alive
		}
		byName[name] = s
		s.Version, s.Ready = h["version"], ready
	}
	for _, ch := range b.o.Site.Channels {
		cs := uplink.ChannelStatus{ID: ch.ID, Name: ch.Name, State: "disabled"}
		if ch.Enabled {
			cs.State = "unknown"
			if h, err := rdb.HMGet(ctx, keyspace.ChannelStatus(ch.ID), "state", "last_error").Result(); err == nil {
				if s, ok := h[0].(string); ok && s != "" {
					cs.State = s
				}
				if e, ok := h[1].(string); ok {
					cs.LastError = e
				}
			}
		}
		st.Channels = append(st.Channels, cs)
	}
	return st
}

// RunStatus publishes the site heartbeat on ems.{site}.up.status now and then
// every interval until ctx is done. It is a plain publish: one that finds no link
// to the hub is lost, as it should be — the next says the same, and newer.
func (b *Bridge) RunStatus(ctx context.Context, interval time.Duration, expected []string) error {
	if interval <= 0 {
		interval = DefaultStatusInterval
	}
	subject := subjects.StatusUp(b.site)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	failing := false
	for {
		data, err := json.Marshal(b.Status(ctx, expected))
		if err == nil {
			err = b.o.NATS.Publish(subject, data)
		}
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			b.log.Warn("site heartbeat not published", "subject", subject, "err", err)
			failing = true
		case err == nil && failing:
			b.log.Info("site heartbeat published again", "subject", subject)
			failing = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
