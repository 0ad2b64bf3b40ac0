package command

import (
	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
)

// AuditMaxLen caps audit:log (approximate trimming).
const AuditMaxLen = 1_000_000

// Audit is the XADD of one audit:log entry (DESIGN §11: everything an operator
// does). Every writer of the log uses it, alone or inside its own transaction, so
// the stream is capped the same way everywhere. values holds at least ts (Unix
// ms), action, user and source.
func Audit(values map[string]any) *redis.XAddArgs {
	return &redis.XAddArgs{Stream: keyspace.Audit, MaxLen: AuditMaxLen, Approx: true, Values: values}
}
