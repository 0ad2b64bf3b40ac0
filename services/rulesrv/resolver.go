package rulesrv

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/expression"
	"github.com/voltageems/voltage/shared/model"
	"github.com/voltageems/voltage/shared/point"
)

// clockInstance is the name of the site clock in expressions: clock.hour,
// clock.minute_of_day, clock.weekday... (local time of the rulesrv host).
const clockInstance = "clock"

var clockFields = map[string]func(time.Time) float64{
	"hour":          func(t time.Time) float64 { return float64(t.Hour()) },
	"minute":        func(t time.Time) float64 { return float64(t.Minute()) },
	"second":        func(t time.Time) float64 { return float64(t.Second()) },
	"minute_of_day": func(t time.Time) float64 { return float64(t.Hour()*60 + t.Minute()) },
	"weekday":       func(t time.Time) float64 { return float64(t.Weekday()) }, // 0 = Sunday
	"day":           func(t time.Time) float64 { return float64(t.Day()) },
	"month":         func(t time.Time) float64 { return float64(t.Month()) },
}

// resolver resolves the names of rule expressions: instance measurements and
// properties of the model, channel points (ch2.T101) and the clock.
type resolver struct {
	m    *model.Model
	site *config.Config
}

func newResolver(m *model.Model, site *config.Config) expression.Resolver {
	r := &resolver{m: m, site: site}
	return &expression.ChannelResolver{
		Base:  r,
		Check: r.checkChannelPoint,
		Known: func(inst string) bool { return m != nil && m.InstanceByName(inst) != nil },
	}
}

func (r *resolver) checkChannelPoint(ch uint32, t point.Type, id point.ID) error {
	if r.site == nil {
		return nil
	}
	c := r.site.Channel(ch)
	if c == nil {
		return fmt.Errorf("no channel %d in comsrv/channels.yaml", ch)
	}
	if c.Point(t, id) == nil {
		return fmt.Errorf("channel %d has no %s point %d", ch, t.Name(), id)
	}
	return nil
}

func (r *resolver) Lookup(instance, name string) (expression.Ref, any, bool, error) {
	var inst *model.Instance
	if r.m != nil {
		inst = r.m.InstanceByName(instance)
	}
	if inst == nil && instance == clockInstance {
		if clockFields[name] == nil {
			return expression.Ref{}, nil, false, fmt.Errorf("the clock has no %q; it has %s", name, clockNames())
		}
		return expression.Ref{Instance: clockInstance, Point: name}, nil, false, nil
	}
	if inst == nil {
		return expression.Ref{}, nil, false, fmt.Errorf("no instance named %q", instance)
	}
	if inst.Product.MeasurementByName(name) != nil {
		return expression.Ref{Instance: instance, Point: name}, nil, false, nil
	}
	if d := inst.Product.Property(name); d != nil {
		v, ok := inst.Properties[name]
		if !ok {
			return expression.Ref{}, nil, false, fmt.Errorf("property %s of %s has no value", name, instance)
		}
		return expression.Ref{}, v, true, nil
	}
	return expression.Ref{}, nil, false, fmt.Errorf("product %s has no measurement or property %q", inst.Product.ID, name)
}

func clockNames() string {
	return "hour, minute, second, minute_of_day, weekday (0 = Sunday), day, month"
}

// Select resolves product:ID, parent:NAME, name:A,B and * like modsrv does.
func (r *resolver) Select(selector, name string) ([]expression.Ref, error) {
	if r.m == nil {
		return nil, errors.New("no model loaded")
	}
	terms := strings.Fields(selector)
	if len(terms) == 0 {
		return nil, errors.New(`empty selector; write "product:ID", "parent:NAME", "name:A,B" or "*"`)
	}
	match := func(*model.Instance) bool { return true }
	for _, t := range terms {
		prev := match
		key, val, _ := strings.Cut(t, ":")
		switch {
		case t == "*":
		case key == "product":
			if r.m.Products[val] == nil {
				return nil, fmt.Errorf("unknown product %q", val)
			}
			match = func(i *model.Instance) bool { return prev(i) && i.Product.ID == val }
		case key == "parent":
			if r.m.InstanceByName(val) == nil {
				return nil, fmt.Errorf("no instance named %q", val)
			}
			match = func(i *model.Instance) bool { return prev(i) && i.Parent != nil && i.Parent.Name == val }
		case key == "name":
			set := map[string]bool{}
			for _, n := range strings.Split(val, ",") {
				if r.m.InstanceByName(n) == nil {
					return nil, fmt.Errorf("no instance named %q", n)
				}
				set[n] = true
			}
			match = func(i *model.Instance) bool { return prev(i) && set[i.Name] }
		default:
			return nil, fmt.Errorf(`selector term %q: want product:ID, parent:NAME, name:A,B or *`, t)
		}
	}
	var out []expression.Ref
	for _, inst := range r.m.Instances {
		if match(inst) && inst.Product.MeasurementByName(name) != nil {
			out = append(out, expression.Ref{Instance: inst.Name, Point: name})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no instance matching %q has a measurement %q", selector, name)
	}
	return out, nil
}
