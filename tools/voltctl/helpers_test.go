package voltctl

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/services/comsrv"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/service"
	"github.com/voltageems/voltage/shared/testharness"
)

// result is what one run of the CLI printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// run runs voltctl with args, as the binary would.
func run(t *testing.T, args ...string) result {
	t.Helper()
	return runCtx(t, context.Background(), args...)
}

func runCtx(t *testing.T, ctx context.Context, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(ctx, args, &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

// writeFiles writes path → content under a new folder and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const pointHeader = "point_id,signal_name,scale,offset,unit,reverse,data_type\n"

// liveSite is a site with a running comsrv: channel 5 is a virtual channel whose
// generators keep T 1 at 42.5 and toggle S 1; channel 6 is configured but
// disabled, so nothing but the test writes its points.
type liveSite struct {
	dir   string
	redis *testharness.Redis
	rdb   *redis.Client
}

var liveFiles = map[string]string{
	"comsrv/channels.yaml": `channels:
  - id: 5
    name: virt
    protocol: virtual
    parameters:
      poll_interval_ms: 50
      generators:
        - {type: T, point: 1, kind: constant, value: 42.5}
        - {type: S, point: 1, kind: square, value: 0, amplitude: 1, period_ms: 300}
  - id: 6
    name: spare
    protocol: virtual
    enabled: false
`,
	"comsrv/5/telemetry.csv":  pointHeader + "1,active_power,1,0,kW,0,float\n2,not_generated,1,0,V,0,float\n",
	"comsrv/5/signal.csv":     pointHeader + "1,blink,1,0,,0,bool\n",
	"comsrv/5/control.csv":    pointHeader + "1,island_mode,1,0,,0,bool\n",
	"comsrv/5/adjustment.csv": pointHeader[:len(pointHeader)-1] + ",min_value,max_value\n1,power_limit,1,0,kW,0,float,0,500\n",
	"comsrv/6/telemetry.csv":  pointHeader + "1,spare_temp,1,0,°C,0,float\n",
}

// startLiveSite starts redis-server and comsrv in this process, and returns once
// comsrv reports channel 5 up with its first values written.
func startLiveSite(t *testing.T) *liveSite {
	t.Helper()
	t.Setenv(service.EnvRedisURL, "") // the site's own URL, whatever the shell says
	r := testharness.StartRedis(t)
	files := map[string]string{"site.yaml": "site: {id: test-site, name: Test}\nredis: {url: " + r.URL() + "}\n"}
	for k, v := range liveFiles {
		files[k] = v
	}
	s := &liveSite{dir: writeFiles(t, files), redis: r, rdb: r.Client(t)}
	cfg, err := config.Load(s.dir)
	if err != nil {
		t.Fatalf("load test site: %v", err)
	}

	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	bound := make(chan net.Addr, 1)
	go func() {
		done <- comsrv.Run(ctx, comsrv.Config{Site: cfg, HTTPAddr: "127.0.0.1:0", Log: log,
			ConsumerName: "comsrv-voltctl-test", Bound: func(a net.Addr) { bound <- a }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("comsrv stopped with error: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("comsrv did not stop within 10 s")
		}
	})
	select {
	case <-bound:
	case err := <-done:
		t.Fatalf("comsrv stopped at start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("comsrv did not start within 10 s")
	}
	testharness.Eventually(t, 10*time.Second, func() error {
		st := s.rdb.HGet(context.Background(), keyspace.ChannelStatus(5), "state").Val()
		v := s.rdb.HGet(context.Background(), keyspace.ChannelPoints(5, point.Telemetry), "1").Val()
		if st != "up" || v != "42.5" {
			return fmt.Errorf("channel 5 state %q, T 1 = %q; want up and 42.5", st, v)
		}
		return nil
	})
	return s
}

// lineWith returns the first line of out containing every one of words.
func lineWith(out string, words ...string) string {
	for _, line := range strings.Split(out, "\n") {
		all := true
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all {
			return line
		}
	}
	return ""
}

var errNotYet = fmt.Errorf("not yet")
