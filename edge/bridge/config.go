package bridge

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
)

// ConfigPath is where the bridge's file lives in a site folder.
func ConfigPath(dir string) string { return filepath.Join(dir, "edge", "uplink.yaml") }

// Defaults of uplink.yaml.
const (
	DefaultWindow            = 4096  // JetStream publishes awaiting their ack
	DefaultMaxAgeH           = 168   // a week of link outage
	DefaultMaxMB             = 1024  // 1 GiB of backlog on the edge's disk
	DefaultDuplicateWindowS  = 600   // see Stream.DuplicateWindowS
	DefaultCommandWaitMS     = 5000  // a downlink command without wait_ms
	DefaultMaxCommandWaitMS  = 30000 // the longest a downlink command may wait
	maxDuplicateWindowS      = 86400
	maxCommandWaitMSAccepted = 300000
)

// Config is config/edge/uplink.yaml: what the site sends up, how much the edge
// keeps while the hub is away, and what the cloud may command.
type Config struct {
	Uplink   Uplink   `yaml:"uplink"`
	Stream   Stream   `yaml:"stream"`
	Downlink Downlink `yaml:"downlink"`
}

// Uplink selects what goes into the UPLINK stream. A change batch goes up point by
// point: each point is sent under the first selection that matches it, and
// dropped when none does.
type Uplink struct {
	// Channels selects channel points (T and S only: C and A are commands).
	// Missing = every T and S point of every channel; [] = none.
	Channels []ChannelSelection `yaml:"channels"`
	// Instances selects instance measurements. Missing = every measurement of
	// every instance; [] = none.
	Instances []InstanceSelection `yaml:"instances"`
	// Alarms sends alarm:events up on ems.{site}.up.alarm. Default true.
	Alarms *bool `yaml:"alarms"`
	// Window is how many JetStream publishes may await their ack at once.
	Window int `yaml:"window"`
}

// ChannelSelection selects channel points.
type ChannelSelection struct {
	Channels []uint32 `yaml:"channels"` // empty = every channel
	Types    []string `yaml:"types"`    // T and/or S (any alias); empty = both
	Points   []uint32 `yaml:"points"`   // empty = every point
	Filter   `yaml:",inline"`
}

// InstanceSelection selects instance measurements.
type InstanceSelection struct {
	Instances []uint32 `yaml:"instances"` // empty = every instance
	Points    []uint32 `yaml:"points"`    // measurement ids; empty = every one
	Filter    `yaml:",inline"`
}

// Filter thins a selection out. A point's value is sent when it is the point's
// first since the bridge started, when its quality changed, or when it passes
// both the deadband and the sampling interval.
type Filter struct {
	// Deadband: send only when the value moved at least this much (absolute,
	// engineering units) from the last value sent. 0 = every change.
	Deadband float64 `yaml:"deadband"`
	// SampleMS: send at most one value per point every SampleMS milliseconds (by
	// the samples' own timestamps). 0 = no limit.
	SampleMS int64 `yaml:"sample_ms"`
}

func (f Filter) active() bool { return f.Deadband > 0 || f.SampleMS > 0 }

// Stream sizes the edge's UPLINK stream, the store-and-forward buffer of a link cut.
type Stream struct {
	MaxAgeH int64 `yaml:"max_age_h"` // oldest message kept, hours; default 168
	MaxMB   int64 `yaml:"max_mb"`    // most bytes kept, MiB; default 1024
	// DuplicateWindowS is JetStream's de-duplication window: a message re-published
	// after an edge crash (stored, but its Redis entry not yet acknowledged) is
	// stored once if it comes back within this time. It must exceed the longest
	// restart of the edge; each message id in the window costs memory (about 100
	// bytes). Default 600.
	DuplicateWindowS int64 `yaml:"duplicate_window_s"`
}

// Downlink governs commands from the cloud.
type Downlink struct {
	DefaultWaitMS int64 `yaml:"default_wait_ms"` // a request without wait_ms; default 5000
	MaxWaitMS     int64 `yaml:"max_wait_ms"`     // wait_ms above this is cut to it; default 30000
	// Allow lists what the cloud may command. Empty (the default) = nothing.
	Allow []Allow `yaml:"allow"`
}

// Allow is one entry of the allow-list: channel points of one type, or actions of
// one instance.
type Allow struct {
	Channel  *uint32  `yaml:"channel"`
	Type     string   `yaml:"type"`   // C or A (any alias)
	Points   []uint32 `yaml:"points"` // the allowed point ids
	Instance *uint32  `yaml:"instance"`
	Actions  []string `yaml:"actions"` // the allowed action names
	// All allows every point of Type on Channel, or every action of Instance.
	All bool `yaml:"all"`
}

// AlarmsEnabled reports whether alarm events go up.
func (u *Uplink) AlarmsEnabled() bool { return u.Alarms == nil || *u.Alarms }

// MaxAge is the stream's age limit.
func (s Stream) MaxAge() time.Duration { return time.Duration(s.MaxAgeH) * time.Hour }

// MaxBytes is the stream's size limit.
func (s Stream) MaxBytes() int64 { return s.MaxMB << 20 }

// DuplicateWindow is the stream's de-duplication window.
func (s Stream) DuplicateWindow() time.Duration {
	return time.Duration(s.DuplicateWindowS) * time.Second
}

// DefaultConfig is what a site without uplink.yaml gets: every T and S point of
// every channel, every instance measurement and the alarm events go up; nothing
// can be commanded from the cloud.
func DefaultConfig() Config {
	var c Config
	c.applyDefaults()
	return c
}

func (c *Config) applyDefaults() {
	if c.Uplink.Channels == nil {
		c.Uplink.Channels = []ChannelSelection{{}}
	}
	if c.Uplink.Instances == nil {
		c.Uplink.Instances = []InstanceSelection{{}}
	}
	for i := range c.Uplink.Channels {
		if len(c.Uplink.Channels[i].Types) == 0 {
			c.Uplink.Channels[i].Types = []string{"T", "S"}
		}
	}
	def := func(p *int64, v int64) {
		if *p == 0 {
			*p = v
		}
	}
	if c.Uplink.Window == 0 {
		c.Uplink.Window = DefaultWindow
	}
	def(&c.Stream.MaxAgeH, DefaultMaxAgeH)
	def(&c.Stream.MaxMB, DefaultMaxMB)
	def(&c.Stream.DuplicateWindowS, DefaultDuplicateWindowS)
	def(&c.Downlink.DefaultWaitMS, DefaultCommandWaitMS)
	def(&c.Downlink.MaxWaitMS, DefaultMaxCommandWaitMS)
}

// LoadConfig reads dir/edge/uplink.yaml; a missing file gives DefaultConfig. site,
// when not nil, is the site the file belongs to: channels and points it names must
// exist there. Problems come back as a *config.LoadError naming file:line:col.
func LoadConfig(dir string, site *config.Config) (Config, error) {
	path := ConfigPath(dir)
	src, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return DefaultConfig(), nil
	case err != nil:
		return Config{}, &config.LoadError{Dir: dir, Errors: []*config.PosError{{Pos: config.Position{File: path}, Msg: "read: " + err.Error()}}}
	}
	c, errs := ParseConfig(path, src, site)
	if len(errs) > 0 {
		return Config{}, &config.LoadError{Dir: dir, Errors: errs}
	}
	return c, nil
}

// ParseConfig decodes and checks the text of an uplink.yaml found at path.
func ParseConfig(path string, src []byte, site *config.Config) (Config, []*config.PosError) {
	var c Config
	if pe := config.DecodeStrict(path, src, &c); pe != nil {
		return Config{}, []*config.PosError{pe}
	}
	v := checker{y: config.ParseYAMLFile(path, src), site: site}
	v.check(&c)
	if len(v.errs) > 0 {
		return Config{}, v.errs
	}
	c.applyDefaults()
	return c, nil
}

// checker validates decoded values and reports each at the key that set it.
type checker struct {
	y    *config.YAMLFile
	site *config.Config
	errs []*config.PosError
}

func (v *checker) add(at config.Position, format string, args ...any) {
	v.errs = append(v.errs, &config.PosError{Pos: at, Msg: fmt.Sprintf(format, args...)})
}

// pos is the position of the value at path p, else of its
// closest written parent.
func (v *checker) pos(p string) config.Position {
	for p != "$" && p != "" {
		if v.y.Node("%s", p) != nil {
			return v.y.Pos("%s", p)
		}
		cut := max(lastIndexAny(p, ".["), 1)
		p = p[:cut]
	}
	return config.Position{File: v.y.Path}
}

func lastIndexAny(s, chars string) int {
	for i := len(s) - 1; i >= 0; i-- {
		for j := 0; j < len(chars); j++ {
			if s[i] == chars[j] {
				return i
			}
		}
	}
	return -1
}

func (v *checker) check(c *Config) {
	for i, s := range c.Uplink.Channels {
		at := fmt.Sprintf("$.uplink.channels[%d]", i)
		for j, id := range s.Channels {
			if v.site != nil && v.site.Channel(id) == nil {
				v.add(v.pos(fmt.Sprintf("%s.channels[%d]", at, j)), "uplink.channels[%d].channels: no channel %d in comsrv/channels.yaml", i, id)
			}
		}
		for j, t := range s.Types {
			pt, err := point.ParseType(t)
			if err != nil || (pt != point.Telemetry && pt != point.Signal) {
				v.add(v.pos(fmt.Sprintf("%s.types[%d]", at, j)), "uplink.channels[%d].types: %q: only T and S go up (C and A are commands)", i, t)
			}
		}
		v.checkFilter(at, s.Filter)
	}
	for i, s := range c.Uplink.Instances {
		at := fmt.Sprintf("$.uplink.instances[%d]", i)
		v.checkFilter(at, s.Filter)
	}
	if c.Uplink.Window < 0 || c.Uplink.Window > 1<<20 {
		v.add(v.pos("$.uplink.window"), "uplink.window: want 1..%d publishes awaiting their ack, got %d", 1<<20, c.Uplink.Window)
	}
	nonNeg := func(key string, n, most int64) {
		if n < 0 || n > most {
			v.add(v.pos("$."+key), "%s: want 0..%d (0 = default), got %d", key, most, n)
		}
	}
	nonNeg("stream.max_age_h", c.Stream.MaxAgeH, 24*3650)
	nonNeg("stream.max_mb", c.Stream.MaxMB, 1<<30)
	nonNeg("stream.duplicate_window_s", c.Stream.DuplicateWindowS, maxDuplicateWindowS)
	nonNeg("downlink.default_wait_ms", c.Downlink.DefaultWaitMS, maxCommandWaitMSAccepted)
	nonNeg("downlink.max_wait_ms", c.Downlink.MaxWaitMS, maxCommandWaitMSAccepted)
	if c.Stream.DuplicateWindowS > 0 && c.Stream.MaxAgeH > 0 && time.Duration(c.Stream.DuplicateWindowS)*time.Second > time.Duration(c.Stream.MaxAgeH)*time.Hour {
		v.add(v.pos("$.stream.duplicate_window_s"), "stream.duplicate_window_s: longer than stream.max_age_h")
	}
	if d, m := c.Downlink.DefaultWaitMS, c.Downlink.MaxWaitMS; d > 0 && m > 0 && d > m {
		v.add(v.pos("$.downlink.default_wait_ms"), "downlink.default_wait_ms: %d is above downlink.max_wait_ms %d", d, m)
	}
	for i, a := range c.Downlink.Allow {
		v.checkAllow(i, a)
	}
}

func (v *checker) checkFilter(at string, f Filter) {
	if f.Deadband < 0 || math.IsNaN(f.Deadband) || math.IsInf(f.Deadband, 0) {
		v.add(v.pos(at+".deadband"), "%s.deadband: want a finite number >= 0, got %v", at[2:], f.Deadband)
	}
	if f.SampleMS < 0 {
		v.add(v.pos(at+".sample_ms"), "%s.sample_ms: want >= 0 milliseconds, got %d", at[2:], f.SampleMS)
	}
}

func (v *checker) checkAllow(i int, a Allow) {
	at := fmt.Sprintf("$.downlink.allow[%d]", i)
	name := at[2:]
	switch {
	case a.Channel != nil && a.Instance != nil:
		v.add(v.pos(at+".instance"), "%s: give either channel (with type and points) or instance (with actions), not both", name)
		return
	case a.Channel == nil && a.Instance == nil:
		v.add(v.pos(at), "%s: give channel (with type and points) or instance (with actions)", name)
		return
	}
	if a.Instance != nil {
		if a.Type != "" || len(a.Points) > 0 {
			v.add(v.pos(at+".instance"), "%s: type and points are for channel entries; an instance entry lists actions", name)
		}
		if len(a.Actions) == 0 && !a.All {
			v.add(v.pos(at+".instance"), "%s: list the allowed actions, or set all: true", name)
		}
		for j, act := range a.Actions {
			if act == "" {
				v.add(v.pos(fmt.Sprintf("%s.actions[%d]", at, j)), "%s.actions: empty action name", name)
			}
		}
		return
	}
	if len(a.Actions) > 0 {
		v.add(v.pos(at+".actions"), "%s: actions are for instance entries; a channel entry lists points", name)
	}
	t, err := point.ParseType(a.Type)
	if err != nil || !t.Writable() {
		v.add(v.pos(at+".type"), "%s.type: want C or A (control or adjustment), got %q", name, a.Type)
		return
	}
	if len(a.Points) == 0 && !a.All {
		v.add(v.pos(at+".channel"), "%s: list the allowed points, or set all: true", name)
	}
	if v.site == nil {
		return
	}
	ch := v.site.Channel(*a.Channel)
	if ch == nil {
		v.add(v.pos(at+".channel"), "%s.channel: no channel %d in comsrv/channels.yaml", name, *a.Channel)
		return
	}
	for j, p := range a.Points {
		if ch.Point(t, point.ID(p)) == nil {
			v.add(v.pos(fmt.Sprintf("%s.points[%d]", at, j)), "%s.points: channel %d has no %s point %d", name, *a.Channel, t, p)
		}
	}
}

// allows reports whether the allow-list lets the cloud command a channel point.
func (d *Downlink) allowsPoint(ch uint32, t point.Type, p uint32) bool {
	for _, a := range d.Allow {
		if a.Channel == nil || *a.Channel != ch {
			continue
		}
		if at, err := point.ParseType(a.Type); err != nil || at != t {
			continue
		}
		if a.All || slices.Contains(a.Points, p) {
			return true
		}
	}
	return false
}

// allowsAction reports whether the allow-list lets the cloud run an instance action.
func (d *Downlink) allowsAction(inst uint32, action string) bool {
	for _, a := range d.Allow {
		if a.Instance != nil && *a.Instance == inst && (a.All || slices.Contains(a.Actions, action)) {
			return true
		}
	}
	return false
}
