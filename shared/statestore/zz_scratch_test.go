package statestore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
)

func BenchmarkScratchSmall(b *testing.B) {
	r := testharness.StartRedis(b)
	c := benchClient(b, r)
	w := statestore.NewWriter(c, benchMaxLen)
	ctx := context.Background()
	c.ConfigResetStat(ctx)
	writeLoop(b, w, benchBatches(1, 10, 100), b.Loop)
	reportPoints(b, int64(b.N)*1000)
	info, _ := c.Info(ctx, "commandstats").Result()
	for line := range strings.Lines(info) {
		if strings.HasPrefix(line, "cmdstat") { b.Log(strings.TrimSpace(line)) }
	}
}
