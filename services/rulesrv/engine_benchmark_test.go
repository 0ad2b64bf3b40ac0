package rulesrv_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
)

const (
	benchRules    = 1000
	benchPoints   = 10_000
	benchRate     = 1000 // changes per second
	pointsPerRule = benchPoints / benchRules
)

// benchSite: channel 1 (virtual) has 10,000 telemetry points, channel 2 1,000
// setpoints; rule i reads the 10 points 10i+1..10i+10 and, on every change
// (level), commands setpoint i+1 to the highest of them.
func benchSite() files {
	var t, a strings.Builder
	t.WriteString("point_id,signal_name,scale,offset,unit,reverse,data_type\n")
	for i := 1; i <= benchPoints; i++ {
		fmt.Fprintf(&t, "%d,p%d,1,0,,0,float\n", i, i)
	}
	a.WriteString("point_id,signal_name,scale,offset,unit,reverse,data_type\n")
	for i := 1; i <= benchRules; i++ {
		fmt.Fprintf(&a, "%d,s%d,1,0,,0,float\n", i, i)
	}
	fs := files{
		"site.yaml":               "site: {id: bench, name: Bench}\nredis: {url: \"{{REDIS}}\"}\n",
		"comsrv/channels.yaml":    "channels:\n  - {id: 1, name: inputs, protocol: virtual}\n  - {id: 2, name: outputs, protocol: virtual}\n",
		"comsrv/1/telemetry.csv":  t.String(),
		"comsrv/2/adjustment.csv": a.String(),
	}
	for i := 0; i < benchRules; i++ {
		refs := make([]string, pointsPerRule)
		for j := range refs {
			refs[j] = fmt.Sprintf("ch1.T%d", i*pointsPerRule+j+1)
		}
		m := "max(" + strings.Join(refs, ", ") + ")"
		fs[fmt.Sprintf("rulesrv/rules/r%d.yaml", i)] = fmt.Sprintf("id: r%d\ncondition: %s > 0\nlevel: true\nactions:\n  - command: {channel: 2, type: A, point: %d, value: \"%s\"}\n    wait: false\n", i, m, i+1, m)
	}
	return fs
}

// cpuTicks is the user+system CPU time of a process in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return u + st, nil
}

const clockTicks = 100 // USER_HZ on Linux

// BenchmarkRules: 1,000 rules over 10,000 points at 1,000 changes/s, rulesrv as
// its own process (the binary). Reported: P50/P99 from writing a change (the
// statestore write comsrv or modsrv would do) to the rule's command being in
// the channel's command stream, rulesrv's CPU as a share of one core, and the
// P99 ratio against the baseline: a bare subscriber that copies each change
// message into a stream (the Redis round trips every rule engine pays), measured
// in the same run.
func BenchmarkRules(b *testing.B) {
	r := testharness.StartRedis(b)
	rdb := r.Client(b)
	dir := writeSite(b, benchSite(), r.URL())
	bin := testharness.BuildBinary(b, "./cmd/rulesrv")
	store := statestore.NewWriter(rdb, 0)
	ctx := context.Background()
	// Every input has a value (0: no rule's condition holds) before anything runs.
	all := make([]point.Sample, benchPoints)
	for i := range all {
		all[i] = point.Sample{ID: point.ID(i + 1)}
	}
	if err := store.Write(ctx, statestore.ChannelBatch(1, point.Telemetry, 0, all)); err != nil {
		b.Fatal(err)
	}

	base := measure(b, rdb, store, b.N, 0, func(ctx context.Context) func() {
		return startEcho(ctx, b, rdb)
	})

	// Back to 0, so rulesrv's first resync fires nothing and the measured phase
	// starts from a quiet engine.
	if err := store.Write(ctx, statestore.ChannelBatch(1, point.Telemetry, 0, all)); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", dir, "--log-level", "info")
	cmd.Env = append(cmd.Environ(), "VOLTAGE_HTTP_ADDR=127.0.0.1:0")
	p, _ := testharness.StartLogged(b, cmd, regexp.MustCompile(`rulesrv running`), 120*time.Second)
	_ = p
	// Ready: every rule compiled and subscribed; the first change of a rule's
	// input then produces its command.
	testharness.Eventually(b, 60*time.Second, func() error {
		n, _ := rdb.PubSubNumSub(ctx, keyspace.ChannelPoints(1, point.Telemetry)).Result()
		if n[keyspace.ChannelPoints(1, point.Telemetry)] == 0 {
			return fmt.Errorf("rulesrv not subscribed yet")
		}
		return nil
	})
	b.Cleanup(func() {
		if b.Failed() {
			b.Log(p.Logs())
			b.Log(rdb.HGetAll(context.Background(), keyspace.RuleExecution("r0")).Val(), rdb.XLen(context.Background(), keyspace.RuleEvents).Val())
		}
	})
	pid := cmd.Process.Pid
	var cpu0, cpu1 int64
	var wall time.Duration
	lat := measure(b, rdb, store, b.N, 0, func(context.Context) func() {
		cpu0, _ = cpuTicks(pid)
		start := time.Now()
		return func() {
			wall = time.Since(start)
			cpu1, _ = cpuTicks(pid)
		}
	})
	_ = p.Stop(b, syscall.SIGTERM, 15*time.Second)

	cpuShare := float64(cpu1-cpu0) / clockTicks / wall.Seconds()
	b.ReportMetric(pct(lat, 50), "p50_ms")
	b.ReportMetric(pct(lat, 99), "p99_ms")
	b.ReportMetric(pct(base, 99), "baseline_p99_ms")
	b.ReportMetric(pct(lat, 99)/pct(base, 99), "p99_ratio")
	b.ReportMetric(cpuShare*100, "cpu_%_of_core")
	b.ReportMetric(0, "ns/op")
}

func pct(ms []float64, p int) float64 {
	if len(ms) == 0 {
		return 0
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// measure writes n changes (values off+1..off+n, above anything written before,
// so the highest input of a rule is the newest change) at benchRate, each to a rule input chosen round
// robin over the rules, and returns the latency of each to its command (ms).
// setup starts what is measured and returns the function ending it. A change
// whose rule saw a newer one in the same batch (after a stall) has no command of
// its own: it is counted as coalesced.
func measure(b *testing.B, rdb *redis.Client, store *statestore.Writer, n, off int, setup func(ctx context.Context) func()) []float64 {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream := keyspace.ChannelCommands(2)
	rdb.Del(ctx, stream)
	var mu sync.Mutex
	sent := make([]time.Time, n+1)
	lat := make([]float64, 0, n)
	done := make(chan struct{})
	go func() { // the reader
		defer close(done)
		last := "0"
		seen := map[int]bool{}
		for len(lat) < n {
			res, err := rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{stream, last}, Count: 1000, Block: 5 * time.Second}).Result()
			if err != nil {
				if ctx.Err() != nil || err != redis.Nil {
					return
				}
				return // nothing for 5 s: the run is broken; report what we have
			}
			now := time.Now()
			for _, m := range res[0].Messages {
				last = m.ID
				v, _ := strconv.ParseFloat(fmt.Sprint(m.Values["value"]), 64)
				seq := int(v) - off
				if seq < 1 || seq > n || seen[seq] {
					continue
				}
				seen[seq] = true
				mu.Lock()
				lat = append(lat, float64(now.Sub(sent[seq]).Microseconds())/1000)
				mu.Unlock()
			}
		}
	}()
	end := setup(ctx)
	b.ResetTimer()
	start := time.Now()
	for seq := 1; seq <= n; seq++ {
		if d := time.Until(start.Add(time.Duration(seq) * time.Second / benchRate)); d > 0 {
			time.Sleep(d) // pacing the load generator, not synchronisation
		}
		rule := (seq - 1) % benchRules
		pt := point.ID(rule*pointsPerRule + (seq/benchRules)%pointsPerRule + 1)
		mu.Lock()
		sent[seq] = time.Now()
		mu.Unlock()
		if err := store.Write(ctx, statestore.ChannelBatch(1, point.Telemetry, 0, []point.Sample{{ID: pt, Value: float64(off + seq)}})); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	}
	b.StopTimer()
	end()
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	b.ReportMetric(100*float64(n-len(lat))/float64(n), "coalesced_%")
	if len(lat) < n*95/100 {
		b.Fatalf("%d of %d changes produced a command (stream has %d entries)", len(lat), n, rdb.XLen(context.Background(), stream).Val())
	}
	return slices.Clone(lat)
}

// startEcho is the baseline: a subscriber that appends each change's value to
// the command stream.
func startEcho(ctx context.Context, b *testing.B, rdb *redis.Client) func() {
	ps := rdb.Subscribe(ctx, keyspace.ChannelPoints(1, point.Telemetry))
	if _, err := ps.Receive(ctx); err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	go func() {
		defer close(stop)
		ch := ps.Channel()
		for m := range ch {
			msg, err := statestore.DecodeMessage([]byte(m.Payload))
			if err != nil {
				continue
			}
			for _, v := range msg.V {
				if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keyspace.ChannelCommands(2), Values: map[string]any{"value": v}}).Err(); err != nil {
					b.Logf("echo: %v", err)
				}
			}
		}
	}()
	return func() { ps.Close(); <-stop }
}
