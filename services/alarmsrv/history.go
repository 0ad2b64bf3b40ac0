package alarmsrv

import (
	"context"
	"encoding/csv"
	"io"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
)

// HistoryQuery selects alarm events. Zero fields match everything.
type HistoryQuery struct {
	From, To time.Time // inclusive; zero = unbounded
	Severity string
	Instance string
	Type     string // raised, cleared, acknowledged, ...
	State    string // active_unacked, active_acked, cleared_unacked, cleared_acked
	Key      string
	Limit    int // at most this many events (newest last); default 1000, max 100000
}

const maxHistory = 100_000

// History reads alarm:events by time range (XRANGE on the entry ids, which are
// the append times) and filters them.
func History(ctx context.Context, rdb redis.UniversalClient, q HistoryQuery) ([]Event, error) {
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	q.Limit = min(q.Limit, maxHistory)
	start, end := "-", "+"
	if !q.From.IsZero() {
		start = strconv.FormatInt(q.From.UnixMilli(), 10)
	}
	if !q.To.IsZero() {
		end = strconv.FormatInt(q.To.UnixMilli(), 10)
	}
	var out []Event
	for {
		msgs, err := rdb.XRangeN(ctx, keyspace.AlarmEvents, start, end, 1000).Result()
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			ev, err := eventFromFields(m.ID, m.Values)
			if err != nil {
				continue
			}
			if q.match(&ev) {
				out = append(out, ev)
				if len(out) >= q.Limit {
					return out, nil
				}
			}
		}
		if len(msgs) < 1000 {
			return out, nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

func (q *HistoryQuery) match(ev *Event) bool {
	a := &ev.Alarm
	return (q.Severity == "" || a.Severity == q.Severity) &&
		(q.Instance == "" || a.Instance == q.Instance) &&
		(q.Type == "" || ev.Type == q.Type) &&
		(q.State == "" || a.State() == q.State) &&
		(q.Key == "" || ev.Key == q.Key)
}

// Counts counts raised events per severity.
func Counts(events []Event) map[string]int {
	out := map[string]int{}
	for _, ev := range events {
		if ev.Type == EventRaised {
			out[ev.Alarm.Severity]++
		}
	}
	return out
}

// WriteCSV writes events as CSV with a header row.
func WriteCSV(w io.Writer, events []Event) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"time", "event", "key", "alarm_id", "rule", "severity", "instance", "state", "value", "unit", "message", "user", "comment"})
	for _, ev := range events {
		a := ev.Alarm
		_ = cw.Write([]string{time.UnixMilli(ev.TS).UTC().Format(time.RFC3339Nano), ev.Type, ev.Key, a.ID, a.Rule, a.Severity,
			a.Instance, a.State(), point.FormatValue(a.Value), a.Unit, a.Message, ev.User, ev.Comment})
	}
	cw.Flush()
	return cw.Error()
}
