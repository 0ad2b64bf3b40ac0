package testharness

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// VictoriaMetrics is a victoria-metrics single-node server owned by one test. It
// accepts InfluxDB line protocol on /api/v2/write (as InfluxDB 2 does) and answers
// /api/v1/export and PromQL queries, so writers for InfluxDB can be tested for
// real on a machine where InfluxDB 2 cannot run.
type VictoriaMetrics struct {
	Addr string // host:port on 127.0.0.1
	Dir  string // storage data path (kept across Stop/Start)

	proc *process
}

// StartVictoriaMetrics starts victoria-metrics on a random loopback port with a
// temporary data directory and stops it when the test ends. Samples written twice
// with the same series and time are kept once (-dedup.minScrapeInterval=1ms), as
// InfluxDB overwrites a point written again.
func StartVictoriaMetrics(t testing.TB) *VictoriaMetrics {
	t.Helper()
	bin := Binary(t, "victoria-metrics", "victoria-metrics", "/usr/bin", "/usr/sbin")
	dir := t.TempDir()
	logPath := filepath.Join(dir, "victoria-metrics.log")
	data := filepath.Join(dir, "data")
	var lastErr error
	for range bindAttempts {
		port := FreePort(t)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		vm := &VictoriaMetrics{Addr: addr, Dir: data, proc: &process{
			name: "victoria-metrics", bin: bin, logPath: logPath,
			args: []string{
				"-httpListenAddr=" + addr,
				"-storageDataPath=" + data,
				"-retentionPeriod=10y",
				"-dedup.minScrapeInterval=1ms",
				"-search.latencyOffset=0s",
				"-search.disableCache",
				"-loggerLevel=WARN",
				"-memory.allowedBytes=256MB",
			},
		}}
		err := vm.start()
		if err == nil {
			t.Cleanup(func() {
				if err := vm.proc.signal(syscall.SIGTERM); err != nil {
					t.Errorf("stop victoria-metrics: %v", err)
				}
			})
			return vm
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("start victoria-metrics: %v", lastErr)
	return nil
}

func (v *VictoriaMetrics) start() error {
	if err := v.proc.start(); err != nil {
		return err
	}
	err := waitUntil(readyTimeout, func() bool {
		resp, err := http.Get(v.URL() + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, v.proc.exitErr)
	if err == nil {
		return nil
	}
	_ = v.proc.signal(syscall.SIGKILL)
	tail := v.proc.logTail()
	if strings.Contains(tail, "address already in use") {
		return fmt.Errorf("%s: %w", v.Addr, errPortTaken)
	}
	return fmt.Errorf("victoria-metrics on %s: %v; log tail:\n%s", v.Addr, err, tail)
}

// URL is the server's base URL, http://127.0.0.1:PORT.
func (v *VictoriaMetrics) URL() string { return "http://" + v.Addr }

// Stop shuts the server down (its data stays in Dir); Start brings it back on the
// same port, for outage tests.
func (v *VictoriaMetrics) Stop(t testing.TB) {
	t.Helper()
	if err := v.proc.signal(syscall.SIGTERM); err != nil {
		t.Fatalf("stop victoria-metrics: %v", err)
	}
}

// Start starts a stopped server again on the same port and data directory.
func (v *VictoriaMetrics) Start(t testing.TB) {
	t.Helper()
	if v.proc.running() {
		return
	}
	if err := v.start(); err != nil {
		t.Fatalf("restart victoria-metrics: %v", err)
	}
}

// Flush makes everything written so far visible to queries (/internal/force_flush).
func (v *VictoriaMetrics) Flush(t testing.TB) {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(v.URL() + "/internal/force_flush")
	if err != nil {
		t.Fatalf("victoria-metrics force_flush: %v", err)
	}
	resp.Body.Close()
}
