package statestore

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/voltageems/voltage/shared/redisx"
	"github.com/voltageems/voltage/shared/testharness"
)

func TestScratchLuaCost(t *testing.T) {
	r := testharness.StartRedis(t)
	rc, _ := redisx.Connect(context.Background(), r.URL())
	ctx := context.Background()
	const n = 1000
	ids := make([]any, n)
	vals := make([]any, n)
	for i := range n {
		ids[i] = strconv.Itoa(i)
		vals[i] = strconv.FormatFloat(230.1+float64(i)*0.01, 'f', -1, 64)
	}
	pairs := func(a, b []any) []any {
		out := make([]any, 0, 2*n)
		for i := range n {
			out = append(out, a[i], b[i])
		}
		return out
	}
	tsv := make([]any, n)
	for i := range tsv {
		tsv[i] = "1700000000000"
	}
	sixN := append(append(pairs(ids, vals), pairs(ids, tsv)...), pairs(ids, vals)...)
	threeN := append(append(append([]any{}, ids...), vals...), vals...)
	scripts := map[string]struct {
		src  string
		args []any
	}{
		"noop6n":  {`return 1`, sixN},
		"noop3n":  {`return 1`, threeN},
		"hset6n":  {`redis.call('HSET', KEYS[1], unpack(ARGV, 1, 2000)); redis.call('HSET', KEYS[2], unpack(ARGV, 2001, 4000)); redis.call('HSET', KEYS[3], unpack(ARGV, 4001, 6000)); return 1`, sixN},
		"build3n": {`local n = 1000; local v, t, r = {}, {}, {}; local ts = '1700000000000'
for i = 1, n do local id = ARGV[i]; v[2*i-1] = id; v[2*i] = ARGV[n+i]; t[2*i-1] = id; t[2*i] = ts; r[2*i-1] = id; r[2*i] = ARGV[2*n+i] end
redis.call('HSET', KEYS[1], unpack(v)); redis.call('HSET', KEYS[2], unpack(t)); redis.call('HSET', KEYS[3], unpack(r)); return 1`, threeN},
	}
	for name, s := range scripts {
		sha, err := rc.ScriptLoad(ctx, s.src).Result()
		if err != nil {
			t.Fatal(err)
		}
		rc.ConfigResetStat(ctx)
		for range 300 {
			args := append([]any{"evalsha", sha, 3, "a", "b", "c"}, s.args...)
			if err := rc.Do(ctx, args...).Err(); err != nil {
				t.Fatal(name, err)
			}
		}
		info, _ := rc.Info(ctx, "commandstats").Result()
		for line := range strings.Lines(info) {
			if strings.Contains(line, "evalsha") || strings.Contains(line, "hset") {
				t.Log(name, strings.TrimSpace(line))
			}
		}
	}
	// MULTI equivalent
	rc.ConfigResetStat(ctx)
	for range 300 {
		p := rc.TxPipeline()
		p.Do(ctx, append([]any{"hset", "a"}, pairs(ids, vals)...)...)
		p.Do(ctx, append([]any{"hset", "b"}, pairs(ids, tsv)...)...)
		p.Do(ctx, append([]any{"hset", "c"}, pairs(ids, vals)...)...)
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	info, _ := rc.Info(ctx, "commandstats").Result()
	for line := range strings.Lines(info) {
		if strings.Contains(line, "exec") || strings.Contains(line, "hset") {
			t.Log("multi", strings.TrimSpace(line))
		}
	}
}
