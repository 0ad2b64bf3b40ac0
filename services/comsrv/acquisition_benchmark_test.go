package comsrv_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	mb "github.com/simonvetter/modbus"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/tools/voltsim"
)

// Neuron's public scenario: 500 devices × 30 registers polled every second.
const (
	benchDevices   = 500
	benchRegisters = 30
	benchWindow    = 10 * time.Second
)

// BenchmarkAcquisition500Devices measures the CPU comsrv (a separate process, as
// deployed) spends polling 500 simulated Modbus TCP devices × 30 registers at 1 s,
// with every value changing every poll (so every point is also written to Redis).
// The baseline, measured in the same run against the same devices, is a bare
// simonvetter/modbus client doing only the reads. Run it with
//
//	go test -run '^$' -bench Acquisition -benchtime 1x ./services/comsrv/
func BenchmarkAcquisition500Devices(b *testing.B) {
	if os.Getenv(baselineEnv) != "" {
		b.Skip("baseline helper process")
	}
	for range b.N {
		r := testharness.StartRedis(b)
		site := acquisitionSite(b, r.URL())
		cfg, err := config.Load(site)
		if err != nil {
			b.Fatal(err)
		}
		sim, err := voltsim.New(cfg, voltsim.Options{ListenOverride: "127.0.0.1", Logger: testLogger(b)})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		simDone := make(chan error, 1)
		go func() { simDone <- sim.Run(ctx) }()
		defer func() { cancel(); <-simDone }()
		var addrs []string
		for ch := uint32(1); ch <= benchDevices; ch++ {
			addrs = append(addrs, sim.Addr(ch))
		}
		pointAt(b, site, addrs)

		baseline := measureProcess(b, baselineCommand(addrs), func() error { return nil }, nil)

		bin := buildComsrv(b)
		cmd := exec.Command(bin, "--config", site, "--log-level", "warn")
		cmd.Env = append(os.Environ(), "VOLTAGE_REDIS_URL="+r.URL(), "VOLTAGE_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(testharness.FreePort(b)))
		rdb := r.Client(b)
		var batches [2]int64 // voltage:changes entries at the window's start and end
		var rssMB float64
		comsrvCPU := measureProcess(b, cmd, func() error {
			// Measure only once every channel is up and polling.
			pipe := rdb.Pipeline()
			for ch := uint32(1); ch <= benchDevices; ch++ {
				pipe.HGet(context.Background(), keyspace.ChannelStatus(ch), "state")
			}
			res, _ := pipe.Exec(context.Background())
			up := 0
			for _, c := range res {
				if v, _ := c.(interface{ Val() string }); v != nil && v.Val() == "up" {
					up++
				}
			}
			if up < benchDevices {
				return fmt.Errorf("%d of %d channels up", up, benchDevices)
			}
			return nil
		}, func(end int) {
			// The changes log is capped at 1,000,000 entries: far above one window.
			batches[end] = rdb.XLen(context.Background(), keyspace.Changes).Val()
			if end == 1 {
				rssMB = residentMB(b, cmd.Process.Pid)
			}
		})
		perSecond := float64(batches[1]-batches[0]) / benchWindow.Seconds()
		if perSecond < 0.9*benchDevices {
			b.Errorf("only %.0f change batches/s reached Redis; every device's values change every second, so want ~%d", perSecond, benchDevices)
		}
		b.ReportMetric(perSecond, "batches/s")
		b.ReportMetric(rssMB, "comsrv_rss_MB")
		b.ReportMetric(comsrvCPU, "comsrv_%core")
		b.ReportMetric(baseline, "bare_client_%core")
		if baseline > 0 {
			b.ReportMetric(comsrvCPU/baseline, "ratio")
		}
		b.Logf("comsrv %.1f %% of one core and %.0f MB resident for %d devices × %d registers at 1 s (budget < 20 %%); bare client %.1f %%",
			comsrvCPU, rssMB, benchDevices, benchRegisters, baseline)
	}
}

// acquisitionSite writes a site of benchDevices Modbus channels, each with
// benchRegisters holding registers whose simulated values change all the time.
func acquisitionSite(b *testing.B, redisURL string) string {
	dir := b.TempDir()
	var chans strings.Builder
	chans.WriteString("channels:\n")
	var tel, mapping strings.Builder
	tel.WriteString(pointHeader)
	mapping.WriteString(mappingHeader)
	for i := 1; i <= benchRegisters; i++ {
		fmt.Fprintf(&tel, "%d,feeder_voltage_%d,0.1,0,V,0,float,\n", i, i)
		fmt.Fprintf(&mapping, "%d,1,3,%d,uint16,,\n", i, i-1)
	}
	for ch := 1; ch <= benchDevices; ch++ {
		fmt.Fprintf(&chans, "  - {id: %d, name: meter%d, protocol: modbus_tcp, enabled: true, parameters: {host: 127.0.0.1, port: 1, poll_interval_ms: 1000}}\n", ch, ch)
		mustWrite(b, filepath.Join(dir, "comsrv", strconv.Itoa(ch), "telemetry.csv"), tel.String())
		mustWrite(b, filepath.Join(dir, "comsrv", strconv.Itoa(ch), "mapping", "telemetry_mapping.csv"), mapping.String())
	}
	mustWrite(b, filepath.Join(dir, "comsrv", "channels.yaml"), chans.String())
	mustWrite(b, filepath.Join(dir, "site.yaml"), "site: {id: bench}\nredis: {url: "+redisURL+"}\n")
	return dir
}

// pointAt rewrites channels.yaml so channel i talks to addrs[i-1].
func pointAt(b *testing.B, dir string, addrs []string) {
	var chans strings.Builder
	chans.WriteString("channels:\n")
	for i, a := range addrs {
		host, port, _ := net.SplitHostPort(a)
		fmt.Fprintf(&chans, "  - {id: %d, name: meter%d, protocol: modbus_tcp, enabled: true, parameters: {host: %s, port: %s, poll_interval_ms: 1000}}\n", i+1, i+1, host, port)
	}
	mustWrite(b, filepath.Join(dir, "comsrv", "channels.yaml"), chans.String())
}

func mustWrite(b testing.TB, path, content string) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		b.Fatal(err)
	}
}

func buildComsrv(t testing.TB) string { return testharness.BuildBinary(t, "./cmd/comsrv") }

// measureProcess starts cmd, waits until ready succeeds (then 2 s more to settle),
// and returns the CPU it used over benchWindow as a percentage of one core. window,
// when set, is called with 0 as the window opens and 1 as it closes.
func measureProcess(b *testing.B, cmd *exec.Cmd, ready func() error, window func(end int)) float64 {
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	testharness.Eventually(b, 60*time.Second, ready)
	<-time.After(2 * time.Second) // a fixed measuring schedule, not synchronisation
	if window == nil {
		window = func(int) {}
	}
	window(0)
	start, t0 := cpuTicks(b, cmd.Process.Pid), time.Now()
	<-time.After(benchWindow)
	used := cpuTicks(b, cmd.Process.Pid) - start
	window(1)
	return float64(used) / clockTicksPerSecond / time.Since(t0).Seconds() * 100
}

// residentMB reads VmRSS of a process from /proc/{pid}/status.
func residentMB(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	b.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// clockTicksPerSecond is USER_HZ, 100 on every Linux this runs on.
const clockTicksPerSecond = 100

// cpuTicks reads utime+stime of a process from /proc/{pid}/stat.
func cpuTicks(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return utime + stime
}

const baselineEnv = "VOLTAGE_BENCH_BASELINE_ADDRS"

// baselineCommand re-runs this test binary as the bare-client poller.
func baselineCommand(addrs []string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run", "^TestBareModbusPoller$", "-test.timeout", "5m")
	cmd.Env = append(os.Environ(), baselineEnv+"="+strings.Join(addrs, ","))
	return cmd
}

// TestBareModbusPoller is the baseline of BenchmarkAcquisition500Devices when run
// as its helper process: one simonvetter/modbus client per device reading the 30
// registers every second, nothing else. As a plain test it checks that the poller
// really reads the simulated registers, so the baseline measures real work.
func TestBareModbusPoller(t *testing.T) {
	if list := os.Getenv(baselineEnv); list != "" {
		for _, addr := range strings.Split(list, ",") {
			go barePoll(addr, time.Second)
		}
		select {} // killed by the benchmark
	}
	s := startStack(t, files{"comsrv/channels.yaml": "channels:\n  - {id: 1, name: m, protocol: modbus_tcp, enabled: true, parameters: {host: 127.0.0.1, port: {{PORT1}}}}\n",
		"comsrv/1/telemetry.csv": pointHeader + "1,v,1,0,,0,float,\n", "comsrv/1/mapping/telemetry_mapping.csv": mappingHeader + "1,1,3,0,uint16,,\n"})
	if err := s.sim.SetValue(1, point.Telemetry, 1, 4242); err != nil {
		t.Fatal(err)
	}
	c, err := dialBare(s.sim.Addr(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	regs, err := c.ReadRegisters(0, 1, mb.HOLDING_REGISTER)
	if err != nil || len(regs) != 1 || regs[0] != 4242 {
		t.Fatalf("bare poller read %v, %v; want [4242]", regs, err)
	}
}

func dialBare(addr string) (*mb.ModbusClient, error) {
	c, err := mb.NewClient(&mb.ClientConfiguration{URL: "tcp://" + addr, Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	return c, c.Open()
}

func barePoll(addr string, every time.Duration) {
	c, err := dialBare(addr)
	if err != nil {
		return
	}
	tick := time.NewTicker(every)
	for range tick.C {
		_, _ = c.ReadRegisters(0, benchRegisters, mb.HOLDING_REGISTER)
	}
}
