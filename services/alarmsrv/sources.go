package alarmsrv

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/expression"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/model"
	"github.com/voltageems/voltage/shared/notify"
	"github.com/voltageems/voltage/shared/point"
)

func channelHash(ch uint32, t point.Type) string { return keyspace.ChannelPoints(ch, t) }

// resolveSource fills a rule's hash, field, unit and instance from channel/type/point
// or instance/measurement.
func resolveSource(r *Rule, d RuleDoc, at func(string) config.Position, l *errList, site *config.Config, m *model.Model) {
	switch {
	case d.Instance != "" && d.Channel != 0:
		l.add(at(""), "alarm rule %s: name either channel/type/point or instance/measurement, not both", d.ID)
	case d.Instance != "":
		if d.Type != "" || d.Point != 0 {
			l.add(at(""), "alarm rule %s: an instance source names measurement, not type/point", d.ID)
			return
		}
		if m == nil {
			l.add(at("instance"), "alarm rule %s: no thing model (modsrv/) to find instance %q in", d.ID, d.Instance)
			return
		}
		inst := m.InstanceByName(d.Instance)
		if inst == nil {
			l.add(at("instance"), "alarm rule %s: no instance named %q", d.ID, d.Instance)
			return
		}
		md := inst.Product.MeasurementByName(d.Measurement)
		if md == nil {
			l.add(at("measurement"), "alarm rule %s: product %s has no measurement %q", d.ID, inst.Product.ID, d.Measurement)
			return
		}
		r.Hash = keyspace.InstanceMeasurements(inst.ID)
		r.Field = strconv.FormatUint(uint64(md.ID), 10)
		r.Instance, r.Unit = inst.Name, md.Unit
		r.Source = inst.Name + "." + md.Name
	case d.Channel != 0:
		if d.Measurement != "" {
			l.add(at("measurement"), "alarm rule %s: a channel source names type and point, not measurement", d.ID)
			return
		}
		t, err := point.ParseType(d.Type)
		if err != nil || (t != point.Telemetry && t != point.Signal) {
			l.add(at("type"), "alarm rule %s: type %q; want T (telemetry) or S (signal)", d.ID, d.Type)
			return
		}
		if d.Point == 0 {
			l.add(at(""), "alarm rule %s: a channel source needs point", d.ID)
			return
		}
		if site != nil {
			ch := site.Channel(d.Channel)
			if ch == nil {
				l.add(at("channel"), "alarm rule %s: no channel %d in comsrv/channels.yaml", d.ID, d.Channel)
				return
			}
			p := ch.Point(t, d.Point)
			if p == nil {
				l.add(at("point"), "alarm rule %s: channel %d (%s) has no %s point %d", d.ID, d.Channel, ch.Name, d.Type, d.Point)
				return
			}
			r.Unit = p.Unit
		}
		r.Channel = d.Channel
		r.Hash = channelHash(d.Channel, t)
		r.Field = strconv.FormatUint(uint64(d.Point), 10)
		r.Source = fmt.Sprintf("%s:%d", r.Hash, d.Point)
		if m != nil {
			if rts := m.MeasurementRoutes(d.Channel, t, d.Point); len(rts) > 0 {
				r.Instance = rts[0].Instance.Name
			}
		}
	default:
		l.add(at(""), "alarm rule %s: name the source: channel, type and point, or instance and measurement", d.ID)
	}
}

func compileExpression(r *Rule, pos config.Position, l *errList, m *model.Model) {
	if strings.TrimSpace(r.Doc.Expression) == "" {
		l.add(pos, "alarm rule %s: an expression rule needs expression", r.ID)
		return
	}
	if m == nil {
		l.add(pos, "alarm rule %s: no thing model (modsrv/) to resolve the expression against", r.ID)
		return
	}
	prog, err := expression.Compile(r.Doc.Expression, &resolver{m: m})
	if err != nil {
		var ee *expression.Error
		if errors.As(err, &ee) {
			// Point at the place inside a one-line plain scalar; otherwise at the value.
			if ee.Line == 1 {
				pos.Column += ee.Column - 1
			}
			l.add(pos, "alarm rule %s: %s", r.ID, ee.Msg)
			return
		}
		l.add(pos, "alarm rule %s: %v", r.ID, err)
		return
	}
	r.Program = prog
	for _, in := range prog.Inputs() {
		inst := m.InstanceByName(in.Instance)
		md := inst.Product.MeasurementByName(in.Point)
		r.Inputs = append(r.Inputs, inputRef{hash: keyspace.InstanceMeasurements(inst.ID), field: strconv.FormatUint(uint64(md.ID), 10)})
		if r.Instance == "" {
			r.Instance = inst.Name
		}
	}
	if len(r.Inputs) == 0 {
		l.add(pos, "alarm rule %s: the expression reads no measurement, so it never changes", r.ID)
	}
	r.Source = r.Doc.Expression
}

// resolver resolves expression names against the model: instance.measurement is an
// input, instance.property a constant; selectors product:ID and * for aggregates.
type resolver struct{ m *model.Model }

func (r *resolver) Lookup(instance, name string) (expression.Ref, any, bool, error) {
	inst := r.m.InstanceByName(instance)
	if inst == nil {
		return expression.Ref{}, nil, false, fmt.Errorf("no instance named %q", instance)
	}
	if inst.Product.MeasurementByName(name) != nil {
		return expression.Ref{Instance: instance, Point: name}, nil, false, nil
	}
	if inst.Product.Property(name) != nil {
		if v, ok := inst.Properties[name]; ok {
			return expression.Ref{}, v, true, nil
		}
		return expression.Ref{}, nil, false, fmt.Errorf("property %s of %s has no value", name, instance)
	}
	return expression.Ref{}, nil, false, fmt.Errorf("product %s has no measurement or property %q", inst.Product.ID, name)
}

func (r *resolver) Select(selector, name string) ([]expression.Ref, error) {
	key, val, _ := strings.Cut(strings.TrimSpace(selector), ":")
	var out []expression.Ref
	for _, inst := range r.m.Instances {
		ok := selector == "*" || (key == "product" && inst.Product.ID == val)
		if ok && inst.Product.MeasurementByName(name) != nil {
			out = append(out, expression.Ref{Instance: inst.Name, Point: name})
		}
	}
	if key != "product" && selector != "*" {
		return nil, fmt.Errorf(`selector %q: alarm expressions accept "product:ID" or "*"`, selector)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no instance matching %q has a measurement %q", selector, name)
	}
	return out, nil
}

// Channel types.
const (
	ChannelWebhook = "webhook"
	ChannelEmail   = "email"
)

// Events a channel can be sent (Events in the channel config).
var notifiable = []string{EventRaised, EventCleared, EventEscalated, EventFlapping, EventRequest}

func compileChannel(y *config.YAMLFile, l *errList, i int, d ChannelDoc) *Channel {
	at := func(f string) config.Position {
		if p := y.Pos("$.notifications[%d].%s", i, f); p.Line > 0 {
			return p
		}
		return y.Pos("$.notifications[%d]", i)
	}
	n := len(l.errs)
	c := &Channel{Doc: d, Name: d.Name, Type: d.Type}
	if !idPattern.MatchString(d.Name) {
		l.add(at("name"), "notification channel name %q: want letters, digits, '_', '-' or '.'", d.Name)
	}
	for _, s := range d.Severities {
		if !slices.Contains(notify.Severities, s) {
			l.add(at("severities"), "notification channel %s: severity %q; want %s", d.Name, s, strings.Join(notify.Severities, ", "))
		}
	}
	for _, e := range d.Events {
		if !slices.Contains(notifiable, e) {
			l.add(at("events"), "notification channel %s: event %q; want %s", d.Name, e, strings.Join(notifiable, ", "))
		}
	}
	if len(d.Events) == 0 {
		c.Events = []string{EventRaised, EventEscalated, EventFlapping, EventRequest}
	} else {
		c.Events = d.Events
	}
	if q := d.QuietHours; q != nil {
		var err error
		c.quietFrom, err = clock(q.From)
		if err != nil {
			l.add(at("quiet_hours.from"), "notification channel %s: quiet_hours.from: %v", d.Name, err)
		}
		c.quietTo, err = clock(q.To)
		if err != nil {
			l.add(at("quiet_hours.to"), "notification channel %s: quiet_hours.to: %v", d.Name, err)
		}
		c.quietLoc = time.Local
		if q.Timezone != "" {
			loc, err := time.LoadLocation(q.Timezone)
			if err != nil {
				l.add(at("quiet_hours.timezone"), "notification channel %s: timezone %q: %v", d.Name, q.Timezone, err)
			} else {
				c.quietLoc = loc
			}
		}
		for _, s := range q.Except {
			if !slices.Contains(notify.Severities, s) {
				l.add(at("quiet_hours.except"), "notification channel %s: severity %q", d.Name, s)
			}
		}
		c.quiet = true
	}
	if rl := d.RateLimit; rl != nil {
		per := duration(y, l, rl.Per, fmt.Sprintf("$.notifications[%d].rate_limit.per", i), "rate_limit.per")
		if rl.Count <= 0 || per <= 0 {
			l.add(at("rate_limit"), "notification channel %s: rate_limit needs count > 0 and per (e.g. 1m)", d.Name)
		} else {
			c.rateCount, c.ratePer = rl.Count, per
		}
	}
	switch d.Type {
	case ChannelWebhook:
		if !strings.HasPrefix(d.URL, "http://") && !strings.HasPrefix(d.URL, "https://") {
			l.add(at("url"), "notification channel %s: url %q: want http:// or https://", d.Name, d.URL)
		}
		if d.SMTP != nil || len(d.To) > 0 {
			l.add(at("type"), "notification channel %s: smtp and to belong to email channels", d.Name)
		}
		c.timeout = duration(y, l, d.Timeout, fmt.Sprintf("$.notifications[%d].timeout", i), "timeout")
		if d.MaxAttempts < 0 {
			l.add(at("max_attempts"), "notification channel %s: max_attempts must be ≥ 0", d.Name)
		}
	case ChannelEmail:
		if d.SMTP == nil {
			l.add(at("type"), "notification channel %s: an email channel needs smtp (host, port, from)", d.Name)
			break
		}
		if d.SMTP.Host == "" || d.SMTP.Port <= 0 || d.SMTP.Port > 65535 || d.SMTP.From == "" {
			l.add(at("smtp"), "notification channel %s: smtp needs host, port (1-65535) and from", d.Name)
		}
		if len(d.To) == 0 {
			l.add(at("to"), "notification channel %s: an email channel needs to (a list of addresses)", d.Name)
		}
		for _, a := range append([]string{d.SMTP.From}, d.To...) {
			if strings.ContainsAny(a, "\r\n<>") || !strings.Contains(a, "@") {
				l.add(at("to"), "notification channel %s: address %q is not an e-mail address", d.Name, a)
			}
		}
		c.timeout = duration(y, l, d.SMTP.Timeout, fmt.Sprintf("$.notifications[%d].smtp.timeout", i), "smtp.timeout")
		if d.URL != "" {
			l.add(at("url"), "notification channel %s: url belongs to webhook channels", d.Name)
		}
	default:
		l.add(at("type"), "notification channel %s: type %q; want webhook or email", d.Name, d.Type)
	}
	if len(l.errs) > n {
		return nil
	}
	return c
}

// clock parses HH:MM into minutes after midnight.
func clock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("%q: want HH:MM", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}
