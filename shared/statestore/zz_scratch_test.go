package statestore_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
)

func BenchmarkScratch(b *testing.B) {
	r := testharness.StartRedis(b)
	c := benchClient(b, r)
	w := statestore.NewWriter(c, benchMaxLen)
	batches := benchBatches(1, 4, 1000)
	ctx := context.Background()
	b.Run("evalsha", func(b *testing.B) {
		c.ConfigResetStat(ctx)
		writeLoop(b, w, batches, b.Loop)
		reportPoints(b, int64(b.N)*4000)
		info, _ := c.Info(ctx, "commandstats").Result()
		b.Log(info)
	})
	mk := func(tx bool) func(b *testing.B) {
		return func(b *testing.B) {
			for b.Loop() {
				p := c.Pipeline()
				if tx {
					p = c.TxPipeline()
				}
				for _, bt := range batches {
					v := make([]any, 0, 2002)
					ts := make([]any, 0, 2002)
					raw := make([]any, 0, 2002)
					v = append(v, "hset", bt.Key)
					ts = append(ts, "hset", bt.TSKey)
					raw = append(raw, "hset", bt.RawKey)
					msg := []byte(`{"ts":1700000000000,"v":{`)
					for _, s := range bt.Samples {
						id := strconv.Itoa(int(s.ID))
						val := point.FormatValue(s.Value)
						v = append(v, id, val)
						ts = append(ts, id, "1700000000000")
						raw = append(raw, id, point.FormatValue(s.Raw))
						msg = append(msg, '"')
						msg = append(msg, id...)
						msg = append(msg, '"', ':')
						msg = append(msg, val...)
						msg = append(msg, ',')
					}
					msg = append(msg, '}', '}')
					p.Do(ctx, v...)
					p.Do(ctx, ts...)
					p.Do(ctx, raw...)
					p.Exists(ctx, bt.QualityKey)
					p.Publish(ctx, bt.Key, msg)
					p.Do(ctx, "xadd", "voltage:changes", "maxlen", "~", "1000", "*", "key", bt.Key, "m", msg)
				}
				if _, err := p.Exec(ctx); err != nil {
					b.Fatal(err)
				}
			}
			reportPoints(b, int64(b.N)*4000)
		}
	}
	b.Run("multi", mk(true))
	b.Run("plain", mk(false))
}
