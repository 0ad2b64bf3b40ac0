package alarmsrv

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/expression"
	"github.com/voltageems/voltage/shared/model"
	"github.com/voltageems/voltage/shared/notify"
	"github.com/voltageems/voltage/shared/point"
)

// Files of alarmsrv/ in a site folder.
const (
	Folder    = "alarmsrv"
	RulesFile = "alarms.yaml"
)

// Kinds of alarm rules.
const (
	KindLimit      = "limit"      // HH/H/L/LL limits with deadband
	KindRate       = "rate"       // rate of change above a limit (units per second)
	KindDigital    = "digital"    // a signal (S point) in its alarm state
	KindExpression = "expression" // an expression over instance measurements is true
	KindCommLoss   = "comm_loss"  // a channel is down
	KindStale      = "stale"      // a point not updated for a timeout, or of stale quality
)

// Kinds lists the rule kinds.
var Kinds = []string{KindLimit, KindRate, KindDigital, KindExpression, KindCommLoss, KindStale}

// Levels of a limit rule, most severe first within each side.
var Levels = []string{"hh", "h", "l", "ll"}

// MaxRules bounds the rules of one file (a hostile or broken file cannot make
// the service allocate without bound).
const MaxRules = 100_000

// RulesDoc is alarmsrv/alarms.yaml. It is written back by the rules API, so every
// field round-trips.
type RulesDoc struct {
	Flapping      *FlappingDoc `yaml:"flapping,omitempty" json:"flapping,omitempty"`
	History       *HistoryDoc  `yaml:"history,omitempty" json:"history,omitempty"`
	Notifications []ChannelDoc `yaml:"notifications,omitempty" json:"notifications,omitempty"`
	Alarms        []RuleDoc    `yaml:"alarms" json:"alarms"`
}

// FlappingDoc configures flapping suppression for every rule.
type FlappingDoc struct {
	Transitions int    `yaml:"transitions" json:"transitions"` // raises and clears within window that make an alarm flap; 0 = off
	Window      string `yaml:"window" json:"window"`           // e.g. 60s
}

// HistoryDoc bounds alarm:events.
type HistoryDoc struct {
	MaxEvents int64 `yaml:"max_events" json:"max_events"` // approximate cap of alarm:events; default 100000
}

// ChannelDoc is a notification channel.
type ChannelDoc struct {
	Name       string         `yaml:"name" json:"name"`
	Type       string         `yaml:"type" json:"type"` // webhook | email
	Severities []string       `yaml:"severities,omitempty" json:"severities,omitempty"`
	Instances  []string       `yaml:"instances,omitempty" json:"instances,omitempty"`
	Events     []string       `yaml:"events,omitempty" json:"events,omitempty"`
	QuietHours *QuietHoursDoc `yaml:"quiet_hours,omitempty" json:"quiet_hours,omitempty"`
	RateLimit  *RateLimitDoc  `yaml:"rate_limit,omitempty" json:"rate_limit,omitempty"`

	// webhook
	URL         string            `yaml:"url,omitempty" json:"url,omitempty"`
	Secret      string            `yaml:"secret,omitempty" json:"-"`
	SecretEnv   string            `yaml:"secret_env,omitempty" json:"secret_env,omitempty"`
	Headers     map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	Timeout     string            `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	MaxAttempts int               `yaml:"max_attempts,omitempty" json:"max_attempts,omitempty"`

	// email
	SMTP *SMTPDoc `yaml:"smtp,omitempty" json:"smtp,omitempty"`
	To   []string `yaml:"to,omitempty" json:"to,omitempty"`
}

// QuietHoursDoc is a daily window in which a channel sends nothing below a severity.
type QuietHoursDoc struct {
	From     string   `yaml:"from" json:"from"` // HH:MM local time
	To       string   `yaml:"to" json:"to"`
	Timezone string   `yaml:"timezone,omitempty" json:"timezone,omitempty"`
	Except   []string `yaml:"except,omitempty" json:"except,omitempty"` // severities still sent
}

// RateLimitDoc caps a channel's notifications.
type RateLimitDoc struct {
	Count int    `yaml:"count" json:"count"`
	Per   string `yaml:"per" json:"per"`
}

// SMTPDoc is an e-mail channel's server.
type SMTPDoc struct {
	Host        string `yaml:"host" json:"host"`
	Port        int    `yaml:"port" json:"port"`
	Username    string `yaml:"username,omitempty" json:"username,omitempty"`
	Password    string `yaml:"password,omitempty" json:"-"`
	PasswordEnv string `yaml:"password_env,omitempty" json:"password_env,omitempty"`
	From        string `yaml:"from" json:"from"`
	StartTLS    *bool  `yaml:"starttls,omitempty" json:"starttls,omitempty"` // default true
	// InsecureSkipVerify accepts any server certificate (tests, self-signed relays).
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify,omitempty" json:"insecure_skip_verify,omitempty"`
	CAFile             string `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
	Timeout            string `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// LimitDoc is one level of a limit rule.
type LimitDoc struct {
	Value    float64 `yaml:"value" json:"value"`
	Severity string  `yaml:"severity,omitempty" json:"severity,omitempty"`
}

// RuleDoc is one alarm rule as written.
type RuleDoc struct {
	ID          string `yaml:"id" json:"id"`
	Name        string `yaml:"name,omitempty" json:"name,omitempty"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	Kind        string `yaml:"kind" json:"kind"`
	Enabled     *bool  `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	Severity    string `yaml:"severity,omitempty" json:"severity,omitempty"`

	// The source: a channel point, an instance measurement, or (comm_loss) a channel.
	Channel     uint32 `yaml:"channel,omitempty" json:"channel,omitempty"`
	Type        string `yaml:"type,omitempty" json:"type,omitempty"`
	Point       uint32 `yaml:"point,omitempty" json:"point,omitempty"`
	Instance    string `yaml:"instance,omitempty" json:"instance,omitempty"`
	Measurement string `yaml:"measurement,omitempty" json:"measurement,omitempty"`

	Limits     map[string]LimitDoc `yaml:"limits,omitempty" json:"limits,omitempty"`
	Deadband   float64             `yaml:"deadband,omitempty" json:"deadband,omitempty"`
	Rate       float64             `yaml:"rate,omitempty" json:"rate,omitempty"`
	State      *float64            `yaml:"state,omitempty" json:"state,omitempty"`
	Expression string              `yaml:"expression,omitempty" json:"expression,omitempty"`
	Timeout    string              `yaml:"timeout,omitempty" json:"timeout,omitempty"`

	OnDelay       string `yaml:"on_delay,omitempty" json:"on_delay,omitempty"`
	OffDelay      string `yaml:"off_delay,omitempty" json:"off_delay,omitempty"`
	EscalateAfter string `yaml:"escalate_after,omitempty" json:"escalate_after,omitempty"`
	EscalateTo    string `yaml:"escalate_to,omitempty" json:"escalate_to,omitempty"`
	Message       string `yaml:"message,omitempty" json:"message,omitempty"`
}

// Rule is a checked alarm rule.
type Rule struct {
	Doc      RuleDoc
	ID       string
	Name     string
	Kind     string
	Severity string // for every kind but limit

	// Source.
	Hash     string // the hash (and pub/sub channel) the source lives in; "" for expressions
	Field    string // the point's field in Hash; "" for comm_loss
	Channel  uint32
	Instance string // instance name ("" for a channel point without routing)
	Unit     string
	Source   string // human-readable, e.g. "comsrv:1:T:3" or "pv1.active_power"

	Limits   []Limit
	Deadband float64
	Rate     float64
	State    float64
	Program  *expression.Program
	Inputs   []inputRef // per Program.Inputs
	Timeout  time.Duration

	OnDelay, OffDelay time.Duration
	EscalateAfter     time.Duration
	EscalateTo        string
	Message           string

	Pos config.Position
}

// Limit is one level of a limit rule.
type Limit struct {
	Level    string // hh, h, l, ll
	Value    float64
	Severity string
	High     bool // hh and h alarm above the value, l and ll below
}

type inputRef struct{ hash, field string }

// RuleSet is everything loaded from alarmsrv/alarms.yaml.
type RuleSet struct {
	Path       string
	Doc        RulesDoc
	Rules      []*Rule
	Channels   []*Channel
	FlapCount  int
	FlapWindow time.Duration
	MaxEvents  int64
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)

// LoadRules reads alarmsrv/alarms.yaml of the site folder dir and checks it against
// the site's channels and model (m may be nil: instance sources are then
// refused). A missing file is an empty rule set. On any error it returns a
// *config.LoadError with every problem at file:line:col.
func LoadRules(dir string, site *config.Config, m *model.Model) (*RuleSet, error) {
	path := filepath.Join(dir, Folder, RulesFile)
	src, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &RuleSet{Path: path, FlapWindow: time.Minute, MaxEvents: defaultMaxEvents}, nil
	}
	if err != nil {
		return nil, &config.LoadError{Dir: dir, Errors: []*config.PosError{{Pos: config.Position{File: path}, Msg: "cannot read: " + err.Error()}}}
	}
	return ParseRules(path, src, site, m)
}

// ParseRules checks the content of an alarms.yaml (see LoadRules).
func ParseRules(path string, src []byte, site *config.Config, m *model.Model) (*RuleSet, error) {
	l := &errList{}
	var doc RulesDoc
	if perr := config.DecodeStrict(path, src, &doc); perr != nil {
		return nil, &config.LoadError{Dir: filepath.Dir(path), Errors: []*config.PosError{perr}}
	}
	rs := compile(path, src, doc, site, m, l)
	if len(l.errs) > 0 {
		return nil, l.err(filepath.Dir(path))
	}
	return rs, nil
}

const defaultMaxEvents = 100_000

func compile(path string, src []byte, doc RulesDoc, site *config.Config, m *model.Model, l *errList) *RuleSet {
	y := config.ParseYAMLFile(path, src)
	rs := &RuleSet{Path: path, Doc: doc, FlapWindow: time.Minute, MaxEvents: defaultMaxEvents}
	if f := doc.Flapping; f != nil {
		if f.Transitions < 0 || f.Transitions == 1 {
			l.add(y.Pos("$.flapping.transitions"), "flapping.transitions: want 0 (off) or at least 2")
		}
		rs.FlapCount = f.Transitions
		if f.Window != "" {
			rs.FlapWindow = duration(y, l, f.Window, "$.flapping.window", "flapping.window")
		}
		if rs.FlapCount > 0 && rs.FlapWindow <= 0 {
			l.add(y.Pos("$.flapping.window"), "flapping.window: want a positive duration such as 60s")
		}
	}
	if h := doc.History; h != nil {
		if h.MaxEvents < 100 {
			l.add(y.Pos("$.history.max_events"), "history.max_events: want at least 100")
		}
		rs.MaxEvents = h.MaxEvents
	}
	if len(doc.Alarms) > MaxRules {
		l.add(y.Pos("$.alarms"), "%d rules; at most %d", len(doc.Alarms), MaxRules)
		return rs
	}
	names := map[string]bool{}
	for i, c := range doc.Notifications {
		ch := compileChannel(y, l, i, c)
		if ch == nil {
			continue
		}
		if names[ch.Name] {
			l.add(y.Pos("$.notifications[%d].name", i), "notification channel %q is defined twice", ch.Name)
			continue
		}
		names[ch.Name] = true
		rs.Channels = append(rs.Channels, ch)
	}
	ids := map[string]config.Position{}
	keys := map[string]bool{}
	for i, d := range doc.Alarms {
		r := compileRule(y, l, i, d, site, m)
		if r == nil {
			continue
		}
		if prev, dup := ids[r.ID]; dup {
			l.add(y.Pos("$.alarms[%d].id", i), "alarm rule id %q is also used at %s", r.ID, prev)
			continue
		}
		ids[r.ID] = r.Pos
		for _, k := range r.keys() {
			keys[k] = true
		}
		if d.Enabled != nil && !*d.Enabled {
			continue
		}
		rs.Rules = append(rs.Rules, r)
	}
	return rs
}

func compileRule(y *config.YAMLFile, l *errList, i int, d RuleDoc, site *config.Config, m *model.Model) *Rule {
	at := func(field string) config.Position {
		if field != "" {
			if p := y.Pos("$.alarms[%d].%s", i, field); p.Line > 0 {
				return p
			}
		}
		return y.Pos("$.alarms[%d]", i) // a missing key: the rule
	}
	n := len(l.errs)
	r := &Rule{Doc: d, ID: d.ID, Name: d.Name, Kind: d.Kind, Deadband: d.Deadband, Rate: d.Rate, Message: d.Message, Pos: at("")}
	if !idPattern.MatchString(d.ID) {
		l.add(at("id"), "alarm rule id %q: want 1-128 letters, digits, '_', '-' or '.'", d.ID)
	}
	if r.Name == "" {
		r.Name = d.ID
	}
	if !slices.Contains(Kinds, d.Kind) {
		l.add(at("kind"), "alarm rule %s: kind %q; want one of %s", d.ID, d.Kind, strings.Join(Kinds, ", "))
		return nil
	}
	r.Severity = d.Severity
	if d.Kind != KindLimit {
		if d.Severity == "" {
			r.Severity = notify.Major
		} else if !slices.Contains(notify.Severities, d.Severity) {
			l.add(at("severity"), "alarm rule %s: severity %q; want one of %s", d.ID, d.Severity, strings.Join(notify.Severities, ", "))
		}
	} else if d.Severity != "" {
		l.add(at("severity"), "alarm rule %s: a limit rule sets a severity per limit (limits.hh.severity)", d.ID)
	}
	if math.IsNaN(d.Deadband) || math.IsInf(d.Deadband, 0) || d.Deadband < 0 {
		l.add(at("deadband"), "alarm rule %s: deadband must be a finite number ≥ 0", d.ID)
	}
	r.OnDelay = duration(y, l, d.OnDelay, fmt.Sprintf("$.alarms[%d].on_delay", i), "on_delay")
	r.OffDelay = duration(y, l, d.OffDelay, fmt.Sprintf("$.alarms[%d].off_delay", i), "off_delay")
	r.EscalateAfter = duration(y, l, d.EscalateAfter, fmt.Sprintf("$.alarms[%d].escalate_after", i), "escalate_after")
	if d.EscalateTo != "" && !slices.Contains(notify.Severities, d.EscalateTo) {
		l.add(at("escalate_to"), "alarm rule %s: escalate_to %q; want one of %s", d.ID, d.EscalateTo, strings.Join(notify.Severities, ", "))
	}
	r.EscalateTo = d.EscalateTo
	if d.EscalateTo != "" && r.EscalateAfter == 0 {
		l.add(at("escalate_to"), "alarm rule %s: escalate_to needs escalate_after", d.ID)
	}
	if len(d.Message) > 2048 {
		l.add(at("message"), "alarm rule %s: message longer than 2048 characters", d.ID)
	}

	// The source.
	switch d.Kind {
	case KindExpression:
		if d.Channel != 0 || d.Instance != "" || d.Type != "" || d.Point != 0 || d.Measurement != "" {
			l.add(at(""), "alarm rule %s: an expression rule names its inputs in the expression, not with channel/instance", d.ID)
		}
		compileExpression(r, at("expression"), l, m)
	case KindCommLoss:
		if d.Channel == 0 {
			l.add(at(""), "alarm rule %s: a comm_loss rule needs channel", d.ID)
		} else if site != nil && site.Channel(d.Channel) == nil {
			l.add(at("channel"), "alarm rule %s: no channel %d in comsrv/channels.yaml", d.ID, d.Channel)
		}
		if d.Instance != "" || d.Type != "" || d.Point != 0 || d.Measurement != "" {
			l.add(at(""), "alarm rule %s: a comm_loss rule names only channel", d.ID)
		}
		r.Channel = d.Channel
		r.Hash = channelHash(d.Channel, point.Telemetry)
		r.Source = fmt.Sprintf("channel %d", d.Channel)
	default:
		resolveSource(r, d, at, l, site, m)
	}
	// Kind specifics.
	switch d.Kind {
	case KindLimit:
		if len(d.Limits) == 0 {
			l.add(at(""), "alarm rule %s: a limit rule needs limits (hh, h, l, ll)", d.ID)
		}
		for _, lv := range Levels {
			ld, ok := d.Limits[lv]
			if !ok {
				continue
			}
			if math.IsNaN(ld.Value) || math.IsInf(ld.Value, 0) {
				l.add(y.Pos("$.alarms[%d].limits.%s.value", i, lv), "alarm rule %s: limit %s must be a finite number", d.ID, lv)
			}
			sev := ld.Severity
			if sev == "" {
				sev = map[string]string{"hh": notify.Critical, "h": notify.Major, "l": notify.Major, "ll": notify.Critical}[lv]
			} else if !slices.Contains(notify.Severities, sev) {
				l.add(y.Pos("$.alarms[%d].limits.%s.severity", i, lv), "alarm rule %s: severity %q; want one of %s", d.ID, sev, strings.Join(notify.Severities, ", "))
			}
			r.Limits = append(r.Limits, Limit{Level: lv, Value: ld.Value, Severity: sev, High: lv[0] == 'h'})
		}
		for lv := range d.Limits {
			if !slices.Contains(Levels, lv) {
				l.add(y.Pos("$.alarms[%d].limits.%s", i, lv), "alarm rule %s: limit %q; want hh, h, l or ll", d.ID, lv)
			}
		}
		lim := map[string]float64{}
		for _, x := range r.Limits {
			lim[x.Level] = x.Value
		}
		order := []string{"ll", "l", "h", "hh"}
		for a := 0; a < len(order); a++ {
			for b := a + 1; b < len(order); b++ {
				va, oka := lim[order[a]]
				vb, okb := lim[order[b]]
				if oka && okb && va >= vb {
					l.add(at("limits"), "alarm rule %s: limits must rise ll < l < h < hh; %s (%v) ≥ %s (%v)", d.ID, order[a], va, order[b], vb)
				}
			}
		}
	case KindRate:
		if !(d.Rate > 0) || math.IsInf(d.Rate, 0) {
			l.add(at("rate"), "alarm rule %s: a rate rule needs rate > 0 (units per second)", d.ID)
		}
	case KindDigital:
		if d.State == nil {
			l.add(at(""), "alarm rule %s: a digital rule needs state (0 or 1): the value that is the alarm", d.ID)
		} else {
			r.State = *d.State
			if r.State != 0 && r.State != 1 {
				l.add(at("state"), "alarm rule %s: state must be 0 or 1", d.ID)
			}
		}
		if d.Type != "" && r.Hash != "" && !strings.HasSuffix(r.Hash, ":S") && d.Instance == "" {
			l.add(at("type"), "alarm rule %s: a digital rule watches a signal (type S)", d.ID)
		}
	case KindStale:
		r.Timeout = duration(y, l, d.Timeout, fmt.Sprintf("$.alarms[%d].timeout", i), "timeout")
		if r.Timeout <= 0 {
			l.add(at("timeout"), "alarm rule %s: a stale rule needs timeout (e.g. 90s; more than the channel's integrity interval)", d.ID)
		}
	}
	if d.Kind != KindLimit && len(d.Limits) > 0 {
		l.add(at("limits"), "alarm rule %s: limits belong to limit rules", d.ID)
	}
	if d.Kind != KindExpression && d.Expression != "" {
		l.add(at("expression"), "alarm rule %s: expression belongs to expression rules", d.ID)
	}
	if d.Kind != KindRate && d.Rate != 0 {
		l.add(at("rate"), "alarm rule %s: rate belongs to rate rules", d.ID)
	}
	if d.Kind != KindStale && d.Timeout != "" {
		l.add(at("timeout"), "alarm rule %s: timeout belongs to stale rules", d.ID)
	}
	if d.Kind != KindDigital && d.State != nil {
		l.add(at("state"), "alarm rule %s: state belongs to digital rules", d.ID)
	}
	if len(l.errs) > n {
		return nil
	}
	return r
}

// keys are the alarm keys a rule raises: the rule id, or id:level for limits.
func (r *Rule) keys() []string {
	if r.Kind != KindLimit {
		return []string{r.ID}
	}
	out := make([]string, len(r.Limits))
	for i, lv := range r.Limits {
		out[i] = r.ID + ":" + lv.Level
	}
	return out
}

func duration(y *config.YAMLFile, l *errList, s, path, what string) time.Duration {
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		l.add(y.Pos("%s", path), "%s %q: want a duration such as 500ms, 10s or 5m", what, s)
		return 0
	}
	return d
}

// errList collects the problems of one file.
type errList struct{ errs []*config.PosError }

func (l *errList) add(pos config.Position, format string, args ...any) {
	l.errs = append(l.errs, &config.PosError{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

func (l *errList) err(dir string) error {
	slices.SortStableFunc(l.errs, func(a, b *config.PosError) int {
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line - b.Pos.Line
		}
		return a.Pos.Column - b.Pos.Column
	})
	return &config.LoadError{Dir: dir, Errors: l.errs}
}
