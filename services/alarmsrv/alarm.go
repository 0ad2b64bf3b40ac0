package alarmsrv

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/voltageems/voltage/shared/notify"
	"github.com/voltageems/voltage/shared/point"
)

// Event types in alarm:events.
const (
	EventRaised        = "raised"
	EventCleared       = "cleared"
	EventAcknowledged  = "acknowledged"
	EventShelved       = "shelved"
	EventUnshelved     = "unshelved"
	EventEscalated     = "escalated"
	EventFlapping      = "flapping"
	EventFlappingEnded = "flapping_ended"
	EventRemoved       = "removed" // its rule was deleted
	EventRequest       = "request" // a notification request (alarm:notify), for channel routing only
)

// SystemUser is who the service's own transitions are recorded as.
const SystemUser = "system"

// Alarm is one entry of alarm:active: the state of one alarm key on both axes
// (active/cleared × unacknowledged/acknowledged) plus shelving, escalation and
// flapping. A cleared and acknowledged alarm that is not shelved leaves the hash.
type Alarm struct {
	Key        string   `json:"key"` // rule id, or rule id:level for limit rules
	ID         string   `json:"id"`  // this occurrence: key@raised_ms
	Rule       string   `json:"rule"`
	Name       string   `json:"name"`
	Kind       string   `json:"kind"`
	Level      string   `json:"level,omitempty"`
	Severity   string   `json:"severity"`
	Instance   string   `json:"instance,omitempty"`
	Source     string   `json:"source"`
	Message    string   `json:"message"`
	Value      float64  `json:"value"`
	Limit      *float64 `json:"limit,omitempty"`
	Unit       string   `json:"unit,omitempty"`
	Active     bool     `json:"active"`
	Acked      bool     `json:"acked"`
	Shelved    bool     `json:"shelved"`
	Escalated  bool     `json:"escalated"`
	Flapping   bool     `json:"flapping"`
	Occurrence int      `json:"occurrence"` // raises since the key last left alarm:active

	RaisedAt     int64  `json:"raised_at"`
	ClearedAt    int64  `json:"cleared_at,omitempty"`
	AckedAt      int64  `json:"acked_at,omitempty"`
	AckedBy      string `json:"acked_by,omitempty"`
	AckComment   string `json:"ack_comment,omitempty"`
	ShelvedUntil int64  `json:"shelved_until,omitempty"`
	ShelvedBy    string `json:"shelved_by,omitempty"`
	EscalatedAt  int64  `json:"escalated_at,omitempty"`
	// EscalateFrom is when the escalation clock started: the raise, or the
	// unshelve (a shelved alarm does not escalate).
	EscalateFrom int64 `json:"escalate_from,omitempty"`
	UpdatedAt    int64 `json:"updated_at"`
}

// State names the alarm's place on the two axes, as the API filters it:
// active_unacked, active_acked, cleared_unacked, cleared_acked.
func (a *Alarm) State() string {
	s := "active"
	if !a.Active {
		s = "cleared"
	}
	if a.Acked {
		return s + "_acked"
	}
	return s + "_unacked"
}

// done reports whether the alarm has nothing left to do in alarm:active.
func (a *Alarm) done() bool { return !a.Active && a.Acked && !a.Shelved && !a.Flapping }

// Event is one entry of alarm:events: a transition with who and when, and the
// alarm as it is after it.
type Event struct {
	ID      string `json:"id,omitempty"` // the stream entry id (set when read back)
	Type    string `json:"type"`
	Key     string `json:"key"`
	TS      int64  `json:"ts"`
	User    string `json:"user"`
	Comment string `json:"comment,omitempty"`
	Alarm   Alarm  `json:"alarm"`
}

func (e *Event) fields() map[string]any {
	b, _ := json.Marshal(e.Alarm)
	return e.fieldsWith(b)
}

// fieldsWith is fields with the alarm's JSON already encoded.
func (e *Event) fieldsWith(b []byte) map[string]any {
	return map[string]any{
		"type": e.Type, "key": e.Key, "ts": e.TS, "user": e.User, "comment": e.Comment,
		"severity": e.Alarm.Severity, "instance": e.Alarm.Instance, "rule": e.Alarm.Rule,
		"state": e.Alarm.State(), "alarm": string(b),
	}
}

// eventFromFields reads a stream entry back.
func eventFromFields(id string, f map[string]any) (Event, error) {
	str := func(k string) string { s, _ := f[k].(string); return s }
	ev := Event{ID: id, Type: str("type"), Key: str("key"), User: str("user"), Comment: str("comment")}
	ev.TS, _ = strconv.ParseInt(str("ts"), 10, 64)
	if err := json.Unmarshal([]byte(str("alarm")), &ev.Alarm); err != nil {
		return ev, fmt.Errorf("alarm event %s: %w", id, err)
	}
	return ev, nil
}

// escalated returns the severity one step more severe (critical stays).
func escalated(sev string) string {
	i := slices.Index(notify.Severities, sev)
	if i <= 0 {
		return notify.Critical
	}
	return notify.Severities[i-1]
}

// render fills a message template: {value} {unit} {instance} {limit} {level}
// {name} {severity} {source}.
func render(tmpl string, a *Alarm) string {
	if tmpl == "" {
		switch {
		case a.Kind == KindLimit && a.Limit != nil:
			tmpl = "{name}: {source} = {value}{unit} ({level} limit {limit}{unit})"
		case a.Kind == KindCommLoss:
			tmpl = "{name}: {source} is down"
		case a.Kind == KindStale:
			tmpl = "{name}: {source} has no fresh data"
		default:
			tmpl = "{name}: {source} = {value}{unit}"
		}
	}
	var b strings.Builder
	b.Grow(len(tmpl) + 32)
	for {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		j := strings.IndexByte(tmpl[i:], '}')
		if j < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		b.WriteString(tmpl[:i])
		switch name := tmpl[i+1 : i+j]; name {
		case "value":
			b.WriteString(point.FormatValue(a.Value))
		case "unit":
			b.WriteString(a.Unit)
		case "instance":
			b.WriteString(a.Instance)
		case "limit":
			if a.Limit != nil {
				b.WriteString(point.FormatValue(*a.Limit))
			}
		case "level":
			b.WriteString(strings.ToUpper(a.Level))
		case "name":
			b.WriteString(a.Name)
		case "severity":
			b.WriteString(a.Severity)
		case "source":
			b.WriteString(a.Source)
		default:
			b.WriteString(tmpl[i : i+j+1]) // not a placeholder: as written
		}
		tmpl = tmpl[i+j+1:]
	}
}
