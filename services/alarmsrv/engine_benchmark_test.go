package alarmsrv_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
)

// BenchmarkAlarmLatency: 10,000 limit rules on 10,000 telemetry points and
// 10,000 changes/s written as comsrv writes them (batches of 100 every 10 ms),
// every change crossing its limit (the worst case: each change is a raise or a
// clear). alarmsrv runs as its own binary. Reported: the P50/P99 from the
// write of a change to its event being readable in alarm:events, the same for
// the bare pub/sub delivery (the baseline, measured in the same run), their
// ratio, the P99 against the 10 ms budget, and alarmsrv's CPU share (CPU
// seconds per second, of one core). b.N is the number of changes; run with
// -benchtime=50000x.
func BenchmarkAlarmLatency(b *testing.B) {
	const points, perBatch, interval = 10_000, 100, 10 * time.Millisecond
	bin := testharness.BuildBinary(b, "./cmd/alarmsrv")
	rd := testharness.StartRedis(b)
	rdb := rd.Client(b)
	var csv, rules strings.Builder
	csv.WriteString("point_id,signal_name,scale,offset,unit,reverse,data_type\n")
	rules.WriteString("alarms:\n")
	for i := 1; i <= points; i++ {
		fmt.Fprintf(&csv, "%d,p%d,1,0,kW,0,float\n", i, i)
		fmt.Fprintf(&rules, "  - {id: r%d, kind: limit, channel: 1, type: T, point: %d, limits: {h: {value: 50, severity: major}}, deadband: 1}\n", i, i)
	}
	site := map[string]string{}
	for k, v := range baseSite {
		site[k] = v
	}
	site["comsrv/1/telemetry.csv"] = csv.String()
	delete(site, "modsrv/instances/pv1/channel_routing.csv")
	dir := writeSite(b, site, rd.URL(), rules.String())
	port := testharness.FreePort(b)
	cmd := exec.Command(bin, "--config", dir)
	cmd.Env = append(cmd.Environ(), "VOLTAGE_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port))
	p, _ := testharness.StartLogged(b, cmd, regexp.MustCompile(`alarmsrv running`), 120*time.Second)
	testharness.WaitFor(b, 60*time.Second, "alarmsrv ready", func() bool {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	sent := make(map[string]time.Time, points) // point id → when its last change was written
	var alarmLat, baseLat []time.Duration
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // events
		defer wg.Done()
		last := "$"
		for ctx.Err() == nil {
			res, err := rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{keyspace.AlarmEvents, last}, Count: 1000, Block: 500 * time.Millisecond}).Result()
			if err != nil {
				continue
			}
			now := time.Now()
			mu.Lock()
			for _, m := range res[0].Messages {
				last = m.ID
				key, _ := m.Values["key"].(string)
				id := strings.TrimSuffix(strings.TrimPrefix(key, "r"), ":h")
				if t0, ok := sent[id]; ok {
					alarmLat = append(alarmLat, now.Sub(t0))
				}
			}
			mu.Unlock()
		}
	}()
	ps := rdb.Subscribe(ctx, keyspace.ChannelPoints(1, point.Telemetry))
	if _, err := ps.Receive(ctx); err != nil {
		b.Fatal(err)
	}
	go func() { // baseline: the change message itself
		defer wg.Done()
		for m := range ps.Channel() {
			now := time.Now()
			msg, err := statestore.DecodeMessage([]byte(m.Payload))
			if err != nil {
				continue
			}
			mu.Lock()
			for id := range msg.V {
				if t0, ok := sent[id]; ok {
					baseLat = append(baseLat, now.Sub(t0))
					break
				}
			}
			mu.Unlock()
		}
	}()

	store := statestore.NewWriter(rdb, 0)
	cpu0 := procCPU(b, p.Cmd.Process.Pid)
	b.ResetTimer()
	start := time.Now()
	next := start
	n := 0
	for n < b.N {
		samples := make([]point.Sample, 0, perBatch)
		for range perBatch {
			id := uint32(n%points) + 1
			v := 40.0 // every change crosses the limit: raise, clear, raise, ...
			if (n/points)%2 == 0 {
				v = 60
			}
			samples = append(samples, point.Sample{ID: id, Value: v})
			n++
		}
		mu.Lock()
		now := time.Now()
		for _, s := range samples {
			sent[strconv.FormatUint(uint64(s.ID), 10)] = now
		}
		mu.Unlock()
		if err := store.Write(ctx, statestore.ChannelBatch(1, point.Telemetry, now.UnixMilli(), samples)); err != nil {
			b.Fatal(err)
		}
		next = next.Add(interval)
		if d := time.Until(next); d > 0 {
			time.Sleep(d) // pacing the load at 10,000 changes/s, not synchronisation
		}
	}
	testharness.WaitFor(b, 60*time.Second, "every change's event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(alarmLat) >= n
	})
	wall := time.Since(start)
	b.StopTimer()
	cpu := procCPU(b, p.Cmd.Process.Pid) - cpu0
	if resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/metrics"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, l := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(l, "alarmsrv_change_to_event_seconds") || strings.HasPrefix(l, "alarmsrv_write_seconds") {
				b.Log(l) // inside alarmsrv: message received → transitions written
			}
		}
	}
	cancel()
	_ = ps.Close()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	p50, p99 := percentile(alarmLat, 0.50), percentile(alarmLat, 0.99)
	b50, b99 := percentile(baseLat, 0.50), percentile(baseLat, 0.99)
	b.ReportMetric(float64(n)/wall.Seconds(), "changes/s")
	b.ReportMetric(ms(p50), "p50_ms")
	b.ReportMetric(ms(p99), "p99_ms")
	b.ReportMetric(ms(b99), "pubsub_p99_ms")
	b.ReportMetric(ms(b50), "pubsub_p50_ms")
	b.ReportMetric(ms(p99)/10, "p99/budget")
	if b99 > 0 {
		b.ReportMetric(float64(p99)/float64(b99), "p99/pubsub_p99")
	}
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cpu_share")
	b.ReportMetric(0, "ns/op")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*q))]
}

// procCPU is the user+system CPU time of a process (Linux /proc).
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatalf("cpu time of alarmsrv: %v", err)
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return time.Duration((ut + st) / 100 * float64(time.Second)) // USER_HZ is 100 on Linux
}
