package rulesrv

import (
	"time"

	"github.com/robfig/cron/v3"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/expression"
	"github.com/voltageems/voltage/shared/point"
)

// RuleFile is one rule as written in config/rulesrv/rules/{id}.yaml. Every key
// is documented in docs/rulesrv.md; unknown keys are errors.
type RuleFile struct {
	ID          string `yaml:"id" json:"id"`
	Name        string `yaml:"name,omitempty" json:"name,omitempty"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Enabled defaults to true.
	Enabled *bool `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	// Priority decides conflicts: of two rules writing the same point at the same
	// moment the higher priority wins. Default 0.
	Priority int          `yaml:"priority,omitempty" json:"priority,omitempty"`
	Trigger  *TriggerFile `yaml:"trigger,omitempty" json:"trigger,omitempty"`
	// Condition is an expression; non-zero is true.
	Condition string `yaml:"condition,omitempty" json:"condition,omitempty"`
	// Threshold is a condition with a hysteresis band, instead of condition+reset.
	Threshold *ThresholdFile `yaml:"threshold,omitempty" json:"threshold,omitempty"`
	// Reset re-arms a rule that fired; default: the condition is false.
	Reset string `yaml:"reset,omitempty" json:"reset,omitempty"`
	// For is how long the condition must hold before the rule fires.
	For string `yaml:"for,omitempty" json:"for,omitempty"`
	// ResetFor is how long the reset must hold before a rule that fired re-arms:
	// readings that arrive one after the other (a meter before the inverter that
	// just changed it) cannot re-arm it for a moment.
	ResetFor string `yaml:"reset_for,omitempty" json:"reset_for,omitempty"`
	// Level fires on every evaluation while the condition holds, not once.
	Level bool `yaml:"level,omitempty" json:"level,omitempty"`
	// Cooldown is the least time between two firings.
	Cooldown string `yaml:"cooldown,omitempty" json:"cooldown,omitempty"`
	// MaxAge: an input whose sample is older does not count (the rule is blocked).
	MaxAge  string       `yaml:"max_age,omitempty" json:"max_age,omitempty"`
	Actions []ActionFile `yaml:"actions" json:"actions"`
	// OnReset runs when a rule that fired re-arms.
	OnReset []ActionFile `yaml:"on_reset,omitempty" json:"on_reset,omitempty"`
}

// TriggerFile says when a rule is evaluated. Without one, on every change of
// any of its inputs.
type TriggerFile struct {
	// OnChange limits the inputs whose changes evaluate the rule (the others are
	// read but do not trigger).
	OnChange []string `yaml:"on_change,omitempty" json:"on_change,omitempty"`
	// Interval evaluates the rule periodically (a Go duration, ≥ 100ms).
	Interval string `yaml:"interval,omitempty" json:"interval,omitempty"`
	// Cron fires the rule at scheduled times (6 fields, seconds first), when its
	// condition (optional) holds.
	Cron string `yaml:"cron,omitempty" json:"cron,omitempty"`
}

// ThresholdFile is value > above (or value < below), re-armed only when the
// value is back by band: a hysteresis band.
type ThresholdFile struct {
	Value string   `yaml:"value" json:"value"`
	Above *float64 `yaml:"above,omitempty" json:"above,omitempty"`
	Below *float64 `yaml:"below,omitempty" json:"below,omitempty"`
	Band  float64  `yaml:"band,omitempty" json:"band,omitempty"`
}

// ActionFile is one action: exactly one of the kinds, plus its timeout.
type ActionFile struct {
	Action  *InstanceActionFile `yaml:"action,omitempty" json:"action,omitempty"`
	Command *CommandFile        `yaml:"command,omitempty" json:"command,omitempty"`
	Virtual *CommandFile        `yaml:"virtual,omitempty" json:"virtual,omitempty"`
	Event   *EventFile          `yaml:"event,omitempty" json:"event,omitempty"`
	Webhook *WebhookFile        `yaml:"webhook,omitempty" json:"webhook,omitempty"`
	Notify  *NotifyFile         `yaml:"notify,omitempty" json:"notify,omitempty"`
	// Timeout bounds the action (submit and wait for the device). Default 10s.
	Timeout string `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Wait for the command's outcome (default true); false records "submitted".
	Wait *bool `yaml:"wait,omitempty" json:"wait,omitempty"`
	// RestoreAfter (write actions): when someone else (the API, the cloud) writes
	// the same point, the rule's value is written again after this long.
	RestoreAfter string `yaml:"restore_after,omitempty" json:"restore_after,omitempty"`
}

// InstanceActionFile commands an instance action through modsrv (DESIGN §5).
type InstanceActionFile struct {
	Instance string `yaml:"instance" json:"instance"`
	Name     string `yaml:"name" json:"name"`
	// Value is a number or an expression.
	Value any `yaml:"value" json:"value"`
}

// CommandFile commands a channel point (C or A) directly.
type CommandFile struct {
	Channel uint32 `yaml:"channel" json:"channel"`
	Type    string `yaml:"type" json:"type"`
	Point   uint32 `yaml:"point" json:"point"`
	Value   any    `yaml:"value" json:"value"`
}

// EventFile appends an event to rule:events.
type EventFile struct {
	Name    string `yaml:"name" json:"name"`
	Message string `yaml:"message,omitempty" json:"message,omitempty"`
}

// WebhookFile posts the firing as JSON (shared/webhook: signed, retried).
type WebhookFile struct {
	URL      string            `yaml:"url" json:"url"`
	Secret   string            `yaml:"secret,omitempty" json:"secret,omitempty"`
	Headers  map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	Attempts int               `yaml:"attempts,omitempty" json:"attempts,omitempty"`
}

// NotifyFile asks alarmsrv to notify people (shared/notify).
type NotifyFile struct {
	Severity string `yaml:"severity" json:"severity"`
	Title    string `yaml:"title" json:"title"`
	Message  string `yaml:"message,omitempty" json:"message,omitempty"`
	Instance string `yaml:"instance,omitempty" json:"instance,omitempty"`
}

// Rule is a loaded, compiled rule.
type Rule struct {
	ID          string
	File        RuleFile // as written, for the API
	Path        string
	Pos         config.Position
	Enabled     bool
	Priority    int
	Condition   *expression.Program // nil: always true (cron rules only)
	Reset       *expression.Program // nil: the condition is false
	For         time.Duration
	ResetFor    time.Duration
	Level       bool
	Cooldown    time.Duration
	MaxAge      time.Duration
	Interval    time.Duration
	Cron        cron.Schedule
	CronSpec    string
	OnChange    map[expression.Ref]bool // nil: every input triggers
	Actions     []*Action
	OnReset     []*Action
	Fingerprint string // of the definition; a reload keeps the state of an unchanged rule
}

// ActionKind names an action kind.
type ActionKind string

// Action kinds.
const (
	KindInstanceAction ActionKind = "action"
	KindCommand        ActionKind = "command"
	KindVirtual        ActionKind = "virtual"
	KindEvent          ActionKind = "event"
	KindWebhook        ActionKind = "webhook"
	KindNotify         ActionKind = "notify"
)

// Action is a compiled action.
type Action struct {
	Kind    ActionKind
	Timeout time.Duration
	Wait    bool
	Restore time.Duration

	// Write actions: the target and the value.
	Instance     uint32
	InstanceName string
	ActionName   string
	Channel      uint32
	Type         point.Type
	Point        point.ID
	Value        valueSource

	Event   *EventFile
	Webhook *WebhookFile
	Notify  *NotifyFile
}

// Target names the point a write action writes, for conflicts and the watchdog;
// "" for other actions.
func (a *Action) Target() string {
	switch a.Kind {
	case KindInstanceAction, KindCommand, KindVirtual:
		// An instance action is named by the channel point it is routed to, so an
		// action and a direct command on the same point are the same target.
		return expression.ChannelRef(a.Channel, a.Type, a.Point).String()
	}
	return ""
}

// valueSource is a constant or an expression.
type valueSource struct {
	Const   float64
	Program *expression.Program
}

// inputs lists the programs of a rule, condition first.
func (r *Rule) programs() []*expression.Program {
	var ps []*expression.Program
	add := func(p *expression.Program) {
		if p != nil {
			ps = append(ps, p)
		}
	}
	add(r.Condition)
	add(r.Reset)
	for _, a := range r.Actions {
		add(a.Value.Program)
	}
	for _, a := range r.OnReset {
		add(a.Value.Program)
	}
	return ps
}
