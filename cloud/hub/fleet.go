package hub

import (
	"cmp"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/uplink"
)

// The fleet state is kept in memory and rebuilt at start by replaying each site's
// hub stream: the stream is the durable copy already (bounded by streams.*), a
// second copy in a KV bucket would have to be kept consistent with it, and a
// replay at start costs seconds even for millions of messages. A point whose last
// change has aged out of the stream is no longer known — which is also true of
// every other view the hub has of that site.

// registry is every site the hub knows, with its fleet state.
type registry struct {
	interval time.Duration // heartbeat interval of the sites
	now      func() time.Time

	mu    sync.RWMutex
	sites map[string]*siteState
}

func newRegistry(interval time.Duration) *registry {
	return &registry{interval: interval, now: time.Now, sites: map[string]*siteState{}}
}

// siteState is one site: registry entry and fleet state. Its own lock guards it.
type siteState struct {
	mu         sync.Mutex
	id, name   string
	configured bool
	firstSeen  time.Time // first heartbeat (live, or the oldest still in the stream)
	lastSeen   time.Time // last heartbeat
	status     *uplink.Status
	points     map[string]map[string]PointValue // hash key → point id → value
	alarms     map[string]json.RawMessage       // alarm key → the alarm as its last event shows it
	persisted  time.Time                        // last registry write (registry_store.go)
	applied    uint64                           // hub stream sequence applied last
	messages   uint64                           // messages applied since start
	figures    *figureTracker                   // key figures (keyfigures.go); nil: none
}

// useKeyFigures sets the points of the site's key figures. It is called before
// the site's hub stream is replayed, so the figures see every value.
func (s *siteState) useKeyFigures(k KeyFigures) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.figures = newFigureTracker(k)
}

// PointValue is the latest value of one point.
type PointValue struct {
	Value   float64 `json:"value"`
	TS      int64   `json:"ts"` // Unix ms
	Quality string  `json:"quality"`
}

// add registers a site; it reports whether the site is new. A configured site
// keeps its configured name.
func (r *registry) add(id, name string, configured bool) (*siteState, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.sites[id]; ok {
		s.mu.Lock()
		if name != "" && (s.name == "" || configured) {
			s.name = name
		}
		s.configured = s.configured || configured
		s.mu.Unlock()
		return s, false
	}
	s := &siteState{id: id, name: name, configured: configured,
		points: map[string]map[string]PointValue{}, alarms: map[string]json.RawMessage{}}
	r.sites[id] = s
	return s, true
}

func (r *registry) get(id string) *siteState {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.sites[id]
}

// list returns the sites sorted by id.
func (r *registry) list() []*siteState {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := slices.Collect(maps.Values(r.sites))
	slices.SortFunc(out, func(a, b *siteState) int { return cmp.Compare(a.id, b.id) })
	return out
}

// heartbeat records a live heartbeat received at the hub's time at.
func (s *siteState) heartbeat(st *uplink.Status, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen(at)
	if s.name == "" && st.Name != "" {
		s.name = st.Name
	}
	if s.status == nil || st.TS >= s.status.TS {
		s.status = st
	}
}

func (s *siteState) seen(at time.Time) {
	if s.firstSeen.IsZero() || at.Before(s.firstSeen) {
		s.firstSeen = at
	}
	if at.After(s.lastSeen) {
		s.lastSeen = at
	}
}

// apply folds one message of the site's hub stream into the fleet state. A message
// it cannot read is skipped and reported: one bad message must not stop a site.
func (s *siteState) apply(subject string, seq uint64, data []byte, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq != 0 {
		if seq <= s.applied {
			return nil
		}
		s.applied = seq
	}
	s.messages++
	u, ok := subjects.ParseUp(subject)
	if !ok || u.Site != s.id {
		return errUnknownSubject
	}
	switch u.Kind {
	case subjects.KindChannel, subjects.KindInstance:
		m, err := statestore.DecodeMessage(data)
		if err != nil {
			return err
		}
		key := hashKey(u)
		figures := s.figures != nil && s.figures.watches(key)
		vals := s.points[key]
		if vals == nil {
			vals = map[string]PointValue{}
			s.points[key] = vals
		}
		for id, v := range m.V {
			ts := m.PointTS(id)
			if old, ok := vals[id]; ok && old.TS > ts {
				continue
			}
			pv := PointValue{Value: v, TS: ts, Quality: m.Quality(id).String()}
			vals[id] = pv
			if figures {
				s.figures.observe(key, id, pv)
			}
		}
	case subjects.KindAlarm:
		var ev uplink.AlarmEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			return err
		}
		key := ev.Fields["key"]
		if key == "" {
			return errNoAlarmKey
		}
		if strings.HasPrefix(ev.Fields["state"], "active") && ev.Fields["type"] != "removed" {
			raw := json.RawMessage(ev.Fields["alarm"])
			if !json.Valid(raw) {
				raw, _ = json.Marshal(ev.Fields)
			}
			s.alarms[key] = raw
		} else {
			delete(s.alarms, key)
		}
	case subjects.KindStatus:
		var st uplink.Status
		if err := json.Unmarshal(data, &st); err != nil {
			return err
		}
		// A replayed heartbeat counts as seen at its own time, never in the future.
		at := time.UnixMilli(st.TS)
		if at.After(now) {
			at = now
		}
		s.seen(at)
		if s.name == "" && st.Name != "" {
			s.name = st.Name
		}
		if s.status == nil || st.TS >= s.status.TS {
			s.status = &st
		}
	}
	return nil
}

type fleetError string

func (e fleetError) Error() string { return string(e) }

const (
	errUnknownSubject = fleetError("not an uplink subject of this site")
	errNoAlarmKey     = fleetError(`alarm event without a "key" field`)
)

// hashKey is the Redis hash a change batch came from on the site.
func hashKey(u subjects.UpSubject) string {
	if u.Kind == subjects.KindInstance {
		return keyspace.InstanceMeasurements(u.ID)
	}
	return keyspace.ChannelPoints(u.ID, point.Type(u.Family[0]))
}

// SiteSummary is one site as the registry shows it.
type SiteSummary struct {
	ID         string `json:"id"`
	Name       string `json:"name,omitempty"`
	Configured bool   `json:"configured" doc:"listed in cloud.yaml (else registered by its first heartbeat)"`
	Online     bool   `json:"online" doc:"a heartbeat came within 3 heartbeat intervals"`
	FirstSeen  *int64 `json:"first_seen,omitempty" doc:"Unix ms of the first heartbeat"`
	LastSeen   *int64 `json:"last_seen,omitempty" doc:"Unix ms of the last heartbeat"`
	Version    string `json:"version,omitempty" doc:"the edge appliance's version"`
	Points     int    `json:"points" doc:"points with a known value"`
	Alarms     int    `json:"active_alarms"`
	Channels   int    `json:"channels"`
	ChannelsUp int    `json:"channels_up"`
	Messages   uint64 `json:"messages" doc:"uplink messages applied since the hub started"`
	// KeyFigures are absent until the site sent a value of one of its key figure points.
	KeyFigures *SiteKeyFigures `json:"key_figures,omitempty" doc:"power, PV, grid, energy today and SOC, from the points cloud.yaml key_figures names"`
}

func (r *registry) online(last, now time.Time) bool {
	return !last.IsZero() && now.Sub(last) <= OfflineAfter*r.interval
}

func unixMilli(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	ms := t.UnixMilli()
	return &ms
}

// summary is the registry entry and key figures of s.
func (r *registry) summary(s *siteState) SiteSummary {
	now := r.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := SiteSummary{ID: s.id, Name: s.name, Configured: s.configured, Online: r.online(s.lastSeen, now),
		FirstSeen: unixMilli(s.firstSeen), LastSeen: unixMilli(s.lastSeen), Alarms: len(s.alarms), Messages: s.messages}
	for _, vals := range s.points {
		out.Points += len(vals)
	}
	if s.figures != nil {
		out.KeyFigures = s.figures.figures(now, out.Online)
	}
	if s.status != nil {
		out.Version = s.status.Version
		out.Channels = len(s.status.Channels)
		for _, c := range s.status.Channels {
			if c.State == "up" {
				out.ChannelsUp++
			}
		}
	}
	return out
}

// SiteStatus is a site's registry entry and its last heartbeat.
type SiteStatus struct {
	SiteSummary
	Heartbeat *uplink.Status `json:"heartbeat,omitempty" doc:"the last heartbeat the site sent"`
}

func (r *registry) status(s *siteState) SiteStatus {
	sum := r.summary(s)
	s.mu.Lock()
	defer s.mu.Unlock()
	return SiteStatus{SiteSummary: sum, Heartbeat: s.status}
}

// Value is the latest value of one point of a site.
type Value struct {
	Key   string `json:"key" doc:"the Redis hash on the site, e.g. comsrv:1:T or inst:5:M"`
	Point string `json:"point" doc:"the point id"`
	PointValue
}

// values lists the latest values, optionally of one hash key, sorted by key and
// point id (numerically where both are numbers).
func (s *siteState) values(key string) []Value {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Value{}
	for k, vals := range s.points {
		if key != "" && k != key {
			continue
		}
		for id, v := range vals {
			out = append(out, Value{Key: k, Point: id, PointValue: v})
		}
	}
	slices.SortFunc(out, func(a, b Value) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), compareIDs(a.Point, b.Point))
	})
	return out
}

func compareIDs(a, b string) int {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA == nil && errB == nil {
		return cmp.Compare(x, y)
	}
	return cmp.Compare(a, b)
}

// Alarm is an active alarm of a site.
type Alarm struct {
	Site  string          `json:"site"`
	Key   string          `json:"key"`
	Alarm json.RawMessage `json:"alarm" doc:"the alarm as the site's alarmsrv last reported it"`
}

func (s *siteState) activeAlarms() []Alarm {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Alarm, 0, len(s.alarms))
	for k, a := range s.alarms {
		out = append(out, Alarm{Site: s.id, Key: k, Alarm: a})
	}
	slices.SortFunc(out, func(a, b Alarm) int { return cmp.Compare(a.Key, b.Key) })
	return out
}
