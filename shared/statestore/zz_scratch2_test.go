package statestore

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/redisx"
	"github.com/voltageems/voltage/shared/testharness"
)

func multiWrite(ctx context.Context, rc redis.UniversalClient, tx bool, batches []Batch) error {
	var p redis.Pipeliner
	if tx {
		p = rc.TxPipeline()
	} else {
		p = rc.Pipeline()
	}
	var calls []*call
	for i := range batches {
		c := getCall()
		calls = append(calls, c)
		c.encode(&batches[i], "x", "1000")
		strs := c.strs
		var lens [5]int
		for j := range lens {
			lens[j], _ = strconv.Atoi(strs[2+j])
		}
		keys := []string{batches[i].Key, batches[i].TSKey, batches[i].RawKey, batches[i].QualityKey, batches[i].QualityKey}
		cmdn := []string{"hset", "hset", "hset", "hset", "hdel"}
		pos := argvHeader
		all := make([]any, 0, len(strs)+10)
		for j := range lens {
			if lens[j] == 0 {
				continue
			}
			start := len(all)
			all = append(all, cmdn[j], keys[j])
			for k := pos; k < pos+lens[j]; k++ {
				all = append(all, &strs[k])
			}
			pos += lens[j]
			p.Do(ctx, all[start:]...)
		}
		p.Do(ctx, "publish", batches[i].Key, &strs[0])
		p.Do(ctx, "xadd", keyspace.Changes, "maxlen", "~", "1000", "*", "key", batches[i].Key, "m", &strs[0])
	}
	_, err := p.Exec(ctx)
	for _, c := range calls {
		c.release()
	}
	return err
}

func BenchmarkScratchMulti(b *testing.B) {
	r := testharness.StartRedis(b)
	rc, _ := redisx.Connect(context.Background(), r.URL())
	ctx := context.Background()
	batches := make([]Batch, 4)
	for i := range batches {
		samples := make([]point.Sample, 1000)
		for j := range samples {
			v := 230.1 + float64(j)*0.01
			samples[j] = point.Sample{ID: uint32(j), Value: v, Raw: v * 10}
		}
		batches[i] = ChannelBatch(uint32(i), point.Telemetry, 1, samples)
	}
	for _, tx := range []bool{true, false} {
		b.Run(strconv.FormatBool(tx), func(b *testing.B) {
			rc.ConfigResetStat(ctx)
			ts := int64(1)
			for b.Loop() {
				ts++
				for i := range batches {
					batches[i].TS = ts
				}
				if err := multiWrite(ctx, rc, tx, batches); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*4000/b.Elapsed().Seconds(), "points/s")
			info, _ := rc.Info(ctx, "commandstats").Result()
			b.Log(info)
		})
	}
}

func BenchmarkScratchPar(b *testing.B) {
	r := testharness.StartRedis(b)
	rc, _ := redisx.Connect(context.Background(), r.URL())
	ctx := context.Background()
	w := NewWriter(rc, 1000)
	mk := func(first int) []Batch {
		batches := make([]Batch, 4)
		for i := range batches {
			samples := make([]point.Sample, 1000)
			for j := range samples {
				v := 230.1 + float64(j)*0.01
				samples[j] = point.Sample{ID: uint32(j), Value: v, Raw: v * 10}
			}
			batches[i] = ChannelBatch(uint32(first+i), point.Telemetry, 1, samples)
		}
		return batches
	}
	for _, mode := range []string{"evalsha", "multi", "evalsha", "multi", "evalsha", "multi"} {
		b.Run(mode, func(b *testing.B) {
			var n atomic.Int32
			b.SetParallelism(2)
			b.RunParallel(func(pb *testing.PB) {
				batches := mk(int(n.Add(1)) * 10)
				ts := int64(1)
				for pb.Next() {
					ts++
					for i := range batches {
						batches[i].TS = ts
					}
					var err error
					if mode == "multi" {
						err = multiWrite(ctx, rc, true, batches)
					} else {
						err = w.Write(ctx, batches...)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)*4000/b.Elapsed().Seconds(), "points/s")
		})
	}
}
