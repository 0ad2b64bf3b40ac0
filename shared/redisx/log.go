package redisx

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// UseSlog sends go-redis's own log lines (reconnect failures, pool warnings) to l
// at warn level, instead of plain text on stderr next to the service's structured
// log. go-redis has one process-wide logger, so call it once at start-up.
func UseSlog(l *slog.Logger) {
	redis.SetLogger(slogLogger{l: l.With("component", "go-redis")})
}

type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Printf(ctx context.Context, format string, v ...any) {
	s.l.WarnContext(ctx, fmt.Sprintf(format, v...))
}
