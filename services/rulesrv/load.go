package rulesrv

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/expression"
	"github.com/voltageems/voltage/shared/model"
	"github.com/voltageems/voltage/shared/notify"
	"github.com/voltageems/voltage/shared/point"
)

// RulesFolder is where rules live in a site folder.
var RulesFolder = filepath.Join("rulesrv", "rules")

// MaxRuleFileSize bounds one rule file.
const MaxRuleFileSize = 256 << 10

// Defaults of rules and actions.
const (
	DefaultActionTimeout = 10 * time.Second
	MinInterval          = 100 * time.Millisecond
)

var cronParser = cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Rules is a loaded rule set.
type Rules struct {
	Dir   string // the rules folder
	Site  *config.Config
	Model *model.Model
	List  []*Rule // by id
}

// Rule returns the rule with the id, or nil.
func (rs *Rules) Rule(id string) *Rule {
	for _, r := range rs.List {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// LoadRules reads every rule file of the site folder siteDir and compiles it
// against the site's channels and model. Any error makes it return a
// *config.LoadError listing every problem, each positioned file:line:col, and
// no rules: rulesrv never runs part of its rules.
func LoadRules(siteDir string, site *config.Config, m *model.Model) (*Rules, error) {
	dir := filepath.Join(siteDir, RulesFolder)
	rs := &Rules{Dir: dir, Site: site, Model: m}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return rs, nil
	}
	if err != nil {
		return nil, &config.LoadError{Dir: siteDir, Errors: []*config.PosError{{Pos: config.Position{File: dir}, Msg: err.Error()}}}
	}
	var errs []*config.PosError
	seen := map[string]string{}
	for _, e := range entries {
		name := e.Name()
		ext := filepath.Ext(name)
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") || strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name)
		src, err := readLimited(path)
		if err != nil {
			errs = append(errs, &config.PosError{Pos: config.Position{File: path}, Msg: err.Error()})
			continue
		}
		r, perrs := ParseRule(path, src, site, m)
		errs = append(errs, perrs...)
		if r == nil {
			continue
		}
		if prev, ok := seen[r.ID]; ok {
			errs = append(errs, &config.PosError{Pos: r.Pos, Msg: fmt.Sprintf("rule %s is also defined in %s", r.ID, prev)})
			continue
		}
		seen[r.ID] = path
		rs.List = append(rs.List, r)
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b *config.PosError) int {
			return cmp.Or(strings.Compare(a.Pos.File, b.Pos.File), cmp.Compare(a.Pos.Line, b.Pos.Line), cmp.Compare(a.Pos.Column, b.Pos.Column))
		})
		return nil, &config.LoadError{Dir: siteDir, Errors: errs}
	}
	slices.SortFunc(rs.List, func(a, b *Rule) int { return strings.Compare(a.ID, b.ID) })
	return rs, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxRuleFileSize {
		return nil, fmt.Errorf("file is %d bytes; a rule file may have at most %d", st.Size(), MaxRuleFileSize)
	}
	b := make([]byte, st.Size())
	_, err = f.Read(b)
	if err != nil && st.Size() > 0 {
		return nil, err
	}
	return b, nil
}

// IDFromPath is the rule id a file name gives: its name without .yaml.
func IDFromPath(path string) string {
	base := filepath.Base(path)
	return strings.TrimSuffix(strings.TrimSuffix(base, ".yaml"), ".yml")
}

// ValidID reports whether id can name a rule (a file, a Redis key).
func ValidID(id string) bool {
	if id == "" || len(id) > 64 || id[0] == '_' || id[0] == '-' {
		return false
	}
	for _, r := range id {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// ParseRule decodes and compiles one rule file. It returns the rule, or nil and
// every problem found.
func ParseRule(path string, src []byte, site *config.Config, m *model.Model) (*Rule, []*config.PosError) {
	var f RuleFile
	if perr := config.DecodeStrict(path, src, &f); perr != nil {
		return nil, []*config.PosError{perr}
	}
	y := parseYAMLPositions(path, src)
	c := &compiler{y: y, res: newResolver(m, site), site: site, m: m}
	r := c.rule(&f, IDFromPath(path))
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	r.Path = path
	return r, nil
}

type compiler struct {
	y    *yamlFile
	res  expression.Resolver
	site *config.Config
	m    *model.Model
	errs []*config.PosError
}

func (c *compiler) add(pos config.Position, format string, args ...any) {
	c.errs = append(c.errs, &config.PosError{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

func (c *compiler) duration(path, s string, min time.Duration) time.Duration {
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < min {
		c.add(c.y.pos("%s", path), "%s: want a duration such as 500ms, 30s or 5m (at least %s), not %q", strings.TrimPrefix(path, "$."), min, s)
		return 0
	}
	return d
}

func (c *compiler) compile(path, src string) *expression.Program {
	p, err := expression.Compile(src, c.res)
	if err != nil {
		c.add(c.y.exprPos(path, err), "%s: %s", strings.TrimPrefix(path, "$."), exprMessage(err))
		return nil
	}
	return p
}

func (c *compiler) rule(f *RuleFile, stem string) *Rule {
	r := &Rule{ID: f.ID, File: *f, Pos: c.y.pos("$"), Enabled: f.Enabled == nil || *f.Enabled, Priority: f.Priority, Level: f.Level}
	r.Pos = config.Position{File: c.y.Path, Line: 1, Column: 1}
	if r.ID == "" {
		r.ID = stem
	}
	switch {
	case !ValidID(r.ID):
		c.add(c.y.pos("$.id"), "rule id %q: want lowercase letters, digits, _ and -", r.ID)
	case stem != "" && r.ID != stem:
		c.add(c.y.pos("$.id"), "rule id %q differs from its file name %s.yaml; name the file after the id", r.ID, stem)
	}
	r.For = c.duration("$.for", f.For, 0)
	r.ResetFor = c.duration("$.reset_for", f.ResetFor, 0)
	r.Cooldown = c.duration("$.cooldown", f.Cooldown, 0)
	r.MaxAge = c.duration("$.max_age", f.MaxAge, time.Millisecond)

	if t := f.Trigger; t != nil {
		r.Interval = c.duration("$.trigger.interval", t.Interval, MinInterval)
		if t.Cron != "" {
			s, err := cronParser.Parse(t.Cron)
			if err != nil {
				c.add(c.y.pos("$.trigger.cron"), "trigger.cron %q: %v (6 fields, seconds first: \"0 0 17 * * *\" is 17:00 every day)", t.Cron, err)
			}
			r.Cron, r.CronSpec = s, t.Cron
		}
		if t.Cron != "" && t.Interval != "" {
			c.add(c.y.pos("$.trigger"), "trigger: cron and interval exclude each other")
		}
	}
	cronRule := f.Trigger != nil && f.Trigger.Cron != ""

	switch {
	case f.Condition != "" && f.Threshold != nil:
		c.add(c.y.pos("$.threshold"), "condition and threshold exclude each other")
	case f.Threshold != nil:
		c.threshold(r, f.Threshold)
	case f.Condition != "":
		r.Condition = c.compile("$.condition", f.Condition)
	case !cronRule:
		c.add(c.y.pos("$"), "rule %s has no condition (or threshold); only a cron rule may go without", r.ID)
	}
	if f.Reset != "" {
		if f.Threshold != nil {
			c.add(c.y.pos("$.reset"), "a threshold has its own reset (its band); drop reset")
		} else {
			r.Reset = c.compile("$.reset", f.Reset)
		}
	}
	if cronRule {
		for key, set := range map[string]bool{"for": f.For != "", "reset": f.Reset != "", "reset_for": f.ResetFor != "", "level": f.Level, "threshold": f.Threshold != nil, "on_reset": len(f.OnReset) > 0} {
			if set {
				c.add(c.y.pos("$.%s", key), "%s does not apply to a cron rule, which fires at its times when its condition holds", key)
			}
		}
	}
	if len(f.Actions) == 0 && len(f.OnReset) == 0 {
		c.add(c.y.pos("$"), "rule %s has no actions", r.ID)
	}
	for i := range f.Actions {
		if a := c.action(fmt.Sprintf("$.actions[%d]", i), &f.Actions[i]); a != nil {
			r.Actions = append(r.Actions, a)
		}
	}
	for i := range f.OnReset {
		if a := c.action(fmt.Sprintf("$.on_reset[%d]", i), &f.OnReset[i]); a != nil {
			r.OnReset = append(r.OnReset, a)
		}
	}
	if f.Trigger != nil && len(f.Trigger.OnChange) > 0 {
		r.OnChange = map[expression.Ref]bool{}
		inputs := map[expression.Ref]bool{}
		for _, p := range r.programs() {
			for _, in := range p.Inputs() {
				inputs[in] = true
			}
		}
		for i, s := range f.Trigger.OnChange {
			path := fmt.Sprintf("$.trigger.on_change[%d]", i)
			p := c.compile(path, s)
			if p == nil {
				continue
			}
			if len(p.Inputs()) != 1 {
				c.add(c.y.pos("%s", path), "trigger.on_change: %q is not one input (write instance.measurement or ch2.T1)", s)
				continue
			}
			in := p.Inputs()[0]
			if !inputs[in] {
				c.add(c.y.pos("%s", path), "trigger.on_change: the rule does not read %s", in)
				continue
			}
			r.OnChange[in] = true
		}
	}
	fp := *f
	fp.Enabled = nil
	b, _ := json.Marshal(fp)
	sum := sha256.Sum256(b)
	r.Fingerprint = hex.EncodeToString(sum[:8])
	return r
}

func (c *compiler) threshold(r *Rule, t *ThresholdFile) {
	if t.Value == "" {
		c.add(c.y.pos("$.threshold"), "threshold.value is required")
		return
	}
	if (t.Above == nil) == (t.Below == nil) {
		c.add(c.y.pos("$.threshold"), "threshold: give exactly one of above and below")
		return
	}
	if t.Band < 0 {
		c.add(c.y.pos("$.threshold.band"), "threshold.band must not be negative")
		return
	}
	if c.compile("$.threshold.value", t.Value) == nil {
		return
	}
	v := "(" + t.Value + ")"
	var cond, reset string
	if t.Above != nil {
		cond = v + " > " + formatFloat(*t.Above)
		reset = v + " < " + formatFloat(*t.Above-t.Band)
		if t.Band == 0 {
			reset = v + " <= " + formatFloat(*t.Above)
		}
	} else {
		cond = v + " < " + formatFloat(*t.Below)
		reset = v + " > " + formatFloat(*t.Below+t.Band)
		if t.Band == 0 {
			reset = v + " >= " + formatFloat(*t.Below)
		}
	}
	r.Condition = c.compile("$.threshold.value", cond)
	r.Reset = c.compile("$.threshold.value", reset)
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func (c *compiler) action(path string, f *ActionFile) *Action {
	a := &Action{Timeout: DefaultActionTimeout, Wait: f.Wait == nil || *f.Wait}
	if f.Timeout != "" {
		a.Timeout = c.duration(path+".timeout", f.Timeout, time.Millisecond)
	}
	a.Restore = c.duration(path+".restore_after", f.RestoreAfter, time.Second)
	kinds := 0
	for _, set := range []bool{f.Action != nil, f.Command != nil, f.Virtual != nil, f.Event != nil, f.Webhook != nil, f.Notify != nil} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		c.add(c.y.pos("%s", path), "an action is exactly one of action, command, virtual, event, webhook, notify (%d given)", kinds)
		return nil
	}
	n := len(c.errs)
	switch {
	case f.Action != nil:
		a.Kind = KindInstanceAction
		c.instanceAction(path+".action", f.Action, a)
	case f.Command != nil:
		a.Kind = KindCommand
		c.command(path+".command", f.Command, a, false)
	case f.Virtual != nil:
		a.Kind = KindVirtual
		c.command(path+".virtual", f.Virtual, a, true)
	case f.Event != nil:
		a.Kind, a.Event = KindEvent, f.Event
		if !ValidID(f.Event.Name) {
			c.add(c.y.pos("%s.event.name", path), "event.name %q: want lowercase letters, digits, _ and -", f.Event.Name)
		}
	case f.Webhook != nil:
		a.Kind, a.Webhook = KindWebhook, f.Webhook
		u, err := url.Parse(f.Webhook.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.add(c.y.pos("%s.webhook.url", path), "webhook.url %q: want an http:// or https:// URL", f.Webhook.URL)
		}
		if f.Webhook.Attempts < 0 || f.Webhook.Attempts > 20 {
			c.add(c.y.pos("%s.webhook.attempts", path), "webhook.attempts: 1 to 20")
		}
	case f.Notify != nil:
		a.Kind, a.Notify = KindNotify, f.Notify
		if !slices.Contains(notify.Severities, f.Notify.Severity) {
			c.add(c.y.pos("%s.notify.severity", path), "notify.severity %q: want one of %s", f.Notify.Severity, strings.Join(notify.Severities, ", "))
		}
		if strings.TrimSpace(f.Notify.Title) == "" {
			c.add(c.y.pos("%s.notify", path), "notify.title is required")
		}
		if f.Notify.Instance != "" && (c.m == nil || c.m.InstanceByName(f.Notify.Instance) == nil) {
			c.add(c.y.pos("%s.notify.instance", path), "notify.instance: no instance named %q", f.Notify.Instance)
		}
	}
	if a.Restore > 0 && a.Target() == "" {
		c.add(c.y.pos("%s.restore_after", path), "restore_after applies to actions that write a point (action, command, virtual)")
	}
	if len(c.errs) > n {
		return nil
	}
	return a
}

func (c *compiler) instanceAction(path string, f *InstanceActionFile, a *Action) {
	var inst *model.Instance
	if c.m != nil {
		inst = c.m.InstanceByName(f.Instance)
	}
	if inst == nil {
		c.add(c.y.pos("%s.instance", path), "no instance named %q", f.Instance)
		return
	}
	def := inst.Product.ActionByName(f.Name)
	if def == nil {
		if n, err := strconv.ParseUint(f.Name, 10, 32); err == nil {
			def = inst.Product.Action(uint32(n))
		}
	}
	if def == nil {
		c.add(c.y.pos("%s.name", path), "product %s has no action %q", inst.Product.ID, f.Name)
		return
	}
	if rt := c.m.ActionRoute(inst.ID, def.ID); rt == nil {
		c.add(c.y.pos("%s.name", path), "action %s of %s is not routed to a channel point: modsrv would reject it", def.Name, inst.Name)
	} else {
		a.Channel, a.Type, a.Point = rt.Channel, rt.ChannelType, rt.ChannelPoint
	}
	a.Instance, a.InstanceName, a.ActionName = inst.ID, inst.Name, def.Name
	a.Value = c.value(path+".value", f.Value)
	if def.Type == model.TypeBool && a.Value.Program == nil && a.Value.Const != 0 && a.Value.Const != 1 {
		c.add(c.y.pos("%s.value", path), "action %s is a bool: the value is 0 or 1", def.Name)
	}
}

func (c *compiler) command(path string, f *CommandFile, a *Action, virtual bool) {
	t, err := point.ParseType(f.Type)
	if err != nil || !t.Writable() {
		c.add(c.y.pos("%s.type", path), "type %q: a command writes a control (C) or adjustment (A) point", f.Type)
		return
	}
	a.Channel, a.Type, a.Point = f.Channel, t, point.ID(f.Point)
	if c.site != nil {
		ch := c.site.Channel(f.Channel)
		switch {
		case ch == nil:
			c.add(c.y.pos("%s.channel", path), "no channel %d in comsrv/channels.yaml", f.Channel)
			return
		case virtual && ch.Protocol != config.ProtocolVirtual:
			c.add(c.y.pos("%s.channel", path), "channel %d is %s, not virtual; use command to write a device", f.Channel, ch.Protocol)
		case ch.Point(t, a.Point) == nil:
			c.add(c.y.pos("%s.point", path), "channel %d has no %s point %d", f.Channel, t.Name(), f.Point)
		}
	}
	a.Value = c.value(path+".value", f.Value)
	if t.Digital() && a.Value.Program == nil && a.Value.Const != 0 && a.Value.Const != 1 {
		c.add(c.y.pos("%s.value", path), "a control point takes 0 or 1")
	}
}

func (c *compiler) value(path string, v any) valueSource {
	switch x := v.(type) {
	case nil:
		c.add(c.y.pos("%s", path), "%s is required (a number or an expression)", strings.TrimPrefix(path, "$."))
	case bool:
		if x {
			return valueSource{Const: 1}
		}
		return valueSource{}
	case string:
		if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
			return valueSource{Const: f}
		}
		return valueSource{Program: c.compile(path, x)}
	default:
		if f, ok := toNumber(x); ok {
			return valueSource{Const: f}
		}
		c.add(c.y.pos("%s", path), "%s: want a number or an expression, not %T", strings.TrimPrefix(path, "$."), v)
	}
	return valueSource{}
}

func toNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}
