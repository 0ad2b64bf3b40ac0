package redisx

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// IsNoScript reports whether err says the server does not know a script's SHA
// (after a restart, a failover or SCRIPT FLUSH): load the script and retry.
func IsNoScript(err error) bool {
	return err != nil && (errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT"))
}

// IsBusyGroup reports whether err is XGROUP CREATE's answer for a group that
// already exists.
func IsBusyGroup(err error) bool {
	return err != nil && redis.HasErrorPrefix(err, "BUSYGROUP")
}

// IsNoGroup reports whether err says the stream or its consumer group is missing,
// as after a Redis restart without persistence: create the group and read again.
func IsNoGroup(err error) bool {
	return err != nil && redis.HasErrorPrefix(err, "NOGROUP")
}

// EnsureGroup creates the consumer group on stream (and the stream, if needed)
// starting at start ("$" for new entries only, "0" for the whole stream). An
// existing group is left as it is.
func EnsureGroup(ctx context.Context, c redis.UniversalClient, stream, group, start string) error {
	err := c.XGroupCreateMkStream(ctx, stream, group, start).Err()
	if err != nil && !IsBusyGroup(err) {
		return fmt.Errorf("create consumer group %s on %s: %w", group, stream, err)
	}
	return nil
}
