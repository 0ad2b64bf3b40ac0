package apigateway

import (
	"context"
	"time"

	"github.com/voltageems/voltage/shared/command"
)

// audit appends who did what to audit:log. fields are key, value pairs. A failed
// write is logged: the action has happened and must not be undone by it.
func (s *server) audit(ctx context.Context, action, user string, fields ...any) {
	values := map[string]any{"ts": time.Now().UnixMilli(), "action": action, "user": user, "source": "api"}
	for i := 0; i+1 < len(fields); i += 2 {
		if k, ok := fields[i].(string); ok {
			values[k] = fields[i+1]
		}
	}
	err := s.rdb.XAdd(context.WithoutCancel(ctx), command.Audit(values)).Err()
	if err != nil {
		s.log.Error("audit write failed", "action", action, "user", user, "err", err)
	}
}
