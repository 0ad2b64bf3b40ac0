package redisx

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// RunID returns the server's run_id, which changes whenever the server restarts.
// Writers that only report changes compare it to notice a Redis that came back
// without their data.
func RunID(ctx context.Context, c redis.UniversalClient) (string, error) {
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return "", fmt.Errorf("read redis run_id: %w", err)
	}
	id := infoField(info, "run_id")
	if id == "" {
		return "", errors.New("read redis run_id: INFO server has no run_id")
	}
	return id, nil
}
