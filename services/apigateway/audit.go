package apigateway

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/keyspace"
)

// audit appends who did what to audit:log. fields are key, value pairs. A failed
// write is logged: the action has happened and must not be undone by it.
func (s *server) audit(ctx context.Context, action, user string, fields ...any) {
	values := append([]any{"ts", time.Now().UnixMilli(), "action", action, "user", user, "source", "api"}, fields...)
	err := s.rdb.XAdd(context.WithoutCancel(ctx), &redis.XAddArgs{
		Stream: keyspace.Audit, MaxLen: command.AuditMaxLen, Approx: true, Values: values,
	}).Err()
	if err != nil {
		s.log.Error("audit write failed", "action", action, "user", user, "err", err)
	}
}
