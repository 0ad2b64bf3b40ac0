package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
)

// rssSite writes a site of channels virtual channels with points telemetry
// points each in their point tables, every listener on a free port. The values
// are written by the benchmark, as comsrv would write them from devices: 10,000
// generators in channels.yaml would measure the YAML parser, not the site.
func rssSite(b *testing.B, redisURL string, channels, points int) string {
	b.Helper()
	dir := b.TempDir()
	write := func(name, content string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	var listen []string
	for _, s := range []string{"comsrv", "modsrv", "hissrv", "rulesrv", "alarmsrv", "apigateway", "netsrv"} {
		listen = append(listen, s+`: "127.0.0.1:0"`)
	}
	write("site.yaml", "site: {id: rss-site}\nredis: {url: "+redisURL+"}\nlisten: {"+strings.Join(listen, ", ")+"}\n")
	var chs strings.Builder
	chs.WriteString("channels:\n")
	for c := 1; c <= channels; c++ {
		fmt.Fprintf(&chs, "  - {id: %d, name: v%d, protocol: virtual, parameters: {poll_interval_ms: 1000}}\n", c, c)
		var table strings.Builder
		table.WriteString("point_id,signal_name,scale,offset,unit,reverse,data_type\n")
		for p := 1; p <= points; p++ {
			fmt.Fprintf(&table, "%d,p%d,1,0,,0,float\n", p, p)
		}
		write(fmt.Sprintf("comsrv/%d/telemetry.csv", c), table.String())
	}
	write("comsrv/channels.yaml", chs.String())
	return dir
}

// rssKB reads a field (VmRSS, VmHWM) of /proc/{pid}/status, in KiB.
func rssKB(b *testing.B, pid int, field string) int {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// saveHeapProfile writes the appliance's heap profile to path.
func saveHeapProfile(b *testing.B, url, path string) {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkApplianceRSS runs the voltage-edge binary on a site of 10,000 points
// (10 channels × 1,000 telemetry points, every value changing every second, all
// of it through hissrv, netsrv's feed, the bridge and UPLINK) for 20 s and reports
// its resident memory (budget < 150 MB, DESIGN §10); the baseline in the same run
// is the same binary on a site of one point. Run once:
//
//	go test -run XXX -bench ApplianceRSS -benchtime 1x ./cmd/voltage-edge
//
// With VOLTAGE_BENCH_HEAP=/tmp/heap it also saves the appliance's heap profiles
// (/tmp/heap.points=10000, ...) for go tool pprof.
func BenchmarkApplianceRSS(b *testing.B) {
	bin := testharness.BuildBinary(b, ".")
	for _, c := range []struct {
		name             string
		channels, points int
	}{{"points=10000", 10, 1000}, {"baseline/points=1", 1, 1}} {
		b.Run(c.name, func(b *testing.B) {
			rd := testharness.StartRedis(b)
			dir := rssSite(b, rd.URL(), c.channels, c.points)
			cmd := exec.Command(bin, "--config", dir, "--log-format", "text")
			cmd.Dir = b.TempDir()
			cmd.Env = append(os.Environ(), "VOLTAGE_HTTP_ADDR=127.0.0.1:0", "VOLTAGE_NATS_URL=nats://127.0.0.1:0")
			proc, httpAddr := testharness.StartLogged(b, cmd, regexp.MustCompile(`msg="edge appliance running".* http=(\S+)`), 60*time.Second)
			pid := cmd.Process.Pid
			const run = 20 * time.Second
			peakRSS := 0
			w := statestore.NewWriter(rd.Client(b), 0)
			deadline := time.Now().Add(run)
			tick := time.NewTicker(time.Second)
			for i := 0; time.Now().Before(deadline); i++ {
				<-tick.C
				// Every value of the site changes every second, one batch per channel.
				now := time.Now().UnixMilli()
				batches := make([]statestore.Batch, c.channels)
				for ch := range batches {
					samples := make([]point.Sample, c.points)
					for p := range samples {
						samples[p] = point.Sample{ID: point.ID(p + 1), Value: float64(i*31+p) * 0.01, Raw: float64(i*31 + p)}
					}
					batches[ch] = statestore.ChannelBatch(uint32(ch+1), point.Telemetry, now, samples)
				}
				if err := w.Write(context.Background(), batches...); err != nil {
					b.Fatal(err)
				}
				peakRSS = max(peakRSS, rssKB(b, pid, "VmRSS"))
			}
			tick.Stop()
			var st struct {
				Uplink map[string]struct {
					Published uint64 `json:"published"`
					Acked     uint64 `json:"acked"`
				} `json:"uplink"`
			}
			resp, err := http.Get("http://" + httpAddr + "/status")
			if err != nil {
				b.Fatal(err)
			}
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err != nil {
				b.Fatal(err)
			}
			entries := st.Uplink["changes"].Published
			if entries < uint64(c.channels*10) {
				b.Fatalf("only %d change batches went up in %s; the site is not running as measured", entries, run)
			}
			if path := os.Getenv("VOLTAGE_BENCH_HEAP"); path != "" {
				saveHeapProfile(b, "http://"+httpAddr+"/debug/pprof/heap", path+"."+strings.ReplaceAll(c.name, "/", "_"))
			}
			hwm := rssKB(b, pid, "VmHWM")
			if err := proc.Stop(b, syscall.SIGTERM, 10*time.Second); err != nil {
				b.Errorf("voltage-edge exited with %v", err)
			}
			b.ReportMetric(float64(peakRSS)/1024, "MB-RSS-peak")
			b.ReportMetric(float64(hwm)/1024, "MB-HWM")
			b.ReportMetric(float64(entries*uint64(c.points))/run.Seconds(), "points/s-up")
		})
	}
}
