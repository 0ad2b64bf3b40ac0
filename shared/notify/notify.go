// Package notify is the producer side of notification requests: any service (a
// rule's notify action, a script) asks alarmsrv to notify people, and alarmsrv
// routes the request through its notification channels (webhook, e-mail) with the
// same severity routing, quiet hours and rate limits as alarm notifications.
package notify

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
)

// Severities, most severe first (DESIGN §6 alarm severities).
const (
	Critical = "critical"
	Major    = "major"
	Minor    = "minor"
	Warning  = "warning"
	Info     = "info"
)

// Severities lists the valid severities, most severe first.
var Severities = []string{Critical, Major, Minor, Warning, Info}

// MaxLen caps the request stream (approximate trimming).
const MaxLen = 100_000

// Request is one notification request, an entry of keyspace.NotificationRequests.
type Request struct {
	Severity string // one of Severities
	Title    string // a short subject line
	Message  string // the body
	Source   string // who asks, e.g. "rule:peak_shaving"
	Instance string // the instance it is about, for routing by instance; "" = site-wide
	TS       int64  // Unix ms; 0 = now
}

// Validate checks a request before it is sent.
func (r Request) Validate() error {
	valid := false
	for _, s := range Severities {
		valid = valid || r.Severity == s
	}
	switch {
	case !valid:
		return fmt.Errorf("severity %q is not one of %v", r.Severity, Severities)
	case r.Title == "":
		return errors.New("title is empty")
	case r.Source == "":
		return errors.New("source is empty")
	}
	return nil
}

// Send appends the request to the stream and returns its entry id.
func Send(ctx context.Context, rdb redis.UniversalClient, r Request) (string, error) {
	if err := r.Validate(); err != nil {
		return "", fmt.Errorf("notification request: %w", err)
	}
	if r.TS == 0 {
		r.TS = time.Now().UnixMilli()
	}
	id, err := rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: keyspace.NotificationRequests, MaxLen: MaxLen, Approx: true,
		Values: []any{"severity", r.Severity, "title", r.Title, "message", r.Message,
			"source", r.Source, "instance", r.Instance, "ts", strconv.FormatInt(r.TS, 10)},
	}).Result()
	if err != nil {
		return "", fmt.Errorf("send notification request from %s: %w", r.Source, err)
	}
	return id, nil
}

// Parse reads a stream entry's fields back into a Request.
func Parse(fields map[string]any) (Request, error) {
	str := func(k string) string { s, _ := fields[k].(string); return s }
	r := Request{Severity: str("severity"), Title: str("title"), Message: str("message"),
		Source: str("source"), Instance: str("instance")}
	if ts := str("ts"); ts != "" {
		v, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			return Request{}, fmt.Errorf("ts %q: %w", ts, err)
		}
		r.TS = v
	}
	if err := r.Validate(); err != nil {
		return Request{}, err
	}
	return r, nil
}
