package voltctl

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/testharness"
)

// The tests in this file run against a real redis-server and a comsrv running in
// the test process, so what voltctl reads is what comsrv wrote.

func TestStatusAndChannels(t *testing.T) {
	s := startLiveSite(t)

	r := run(t, "status", "--config", s.dir)
	if r.code != ExitOK {
		t.Fatalf("status: %v", r)
	}
	if line := lineWith(r.stdout, "comsrv", " ago"); line == "" {
		t.Errorf("no comsrv heartbeat row:\n%s", r.stdout)
	}
	if line := lineWith(r.stdout, "5 ", "virt", "up"); line == "" {
		t.Errorf("channel 5 not shown up:\n%s", r.stdout)
	}
	if line := lineWith(r.stdout, "6 ", "spare", "disabled"); line == "" {
		t.Errorf("channel 6 not shown disabled:\n%s", r.stdout)
	}

	r = run(t, "status", "--config", s.dir, "--json")
	var st struct {
		Services []serviceRow
		Channels []channelRow
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != ExitOK {
		t.Fatalf("status --json: %v\n%v", err, r)
	}
	if len(st.Services) != 1 || st.Services[0].Name != "comsrv" || st.Services[0].Started == 0 || st.Services[0].Heartbeat == 0 {
		t.Errorf("services: %+v", st.Services)
	}
	if len(st.Channels) != 2 || st.Channels[0].State != "up" || st.Channels[0].LastOK == 0 {
		t.Errorf("channels: %+v", st.Channels)
	}

	r = run(t, "channels", "--config", s.dir)
	if r.code != ExitOK {
		t.Fatalf("channels: %v", r)
	}
	// id, name, protocol, enabled, T S C A counts, state
	if !regexp.MustCompile(`(?m)^5\s+virt\s+virtual\s+true\s+2\s+1\s+1\s+1\s+up$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^6\s+spare\s+virtual\s+false\s+1\s+0\s+0\s+0\s+disabled$`).MatchString(r.stdout) {
		t.Errorf("channels table:\n%s", r.stdout)
	}
}

func TestUnreachableRedisIsNamed(t *testing.T) {
	t.Setenv("VOLTAGE_REDIS_URL", "")
	url := "redis://operator:s3cret@127.0.0.1:" + strconv.Itoa(testharness.FreePort(t)) + "/0"
	for _, args := range [][]string{{"status"}, {"point", "get", "1", "T"}, {"command", "get", "x"}} {
		r := run(t, append(args, "--config", exampleSite, "--redis", url)...)
		if r.code != ExitFailure || !strings.Contains(r.stderr, "cannot reach Redis at "+redact(url)) {
			t.Errorf("%v: want exit 1 naming the URL, got %v", args, r)
		}
		if strings.Contains(r.stderr, "s3cret") {
			t.Errorf("%v: the password is printed: %s", args, r.stderr)
		}
	}
}

func TestPointGet(t *testing.T) {
	s := startLiveSite(t)
	ctx := context.Background()
	// Channel 6 is not run by comsrv: its value is what a comsrv that lost the
	// device would have left, with a quality.
	tsOld := time.Now().Add(-90 * time.Second).UnixMilli()
	s.rdb.HSet(ctx, keyspace.ChannelPoints(6, point.Telemetry), "1", "21.5")
	s.rdb.HSet(ctx, keyspace.ChannelTimestamps(6, point.Telemetry), "1", tsOld)
	s.rdb.HSet(ctx, keyspace.ChannelRaw(6, point.Telemetry), "1", "215")
	s.rdb.HSet(ctx, keyspace.ChannelQuality(6, point.Telemetry), "1", "stale")

	r := run(t, "point", "get", "5", "yc", "--config", s.dir)
	if r.code != ExitOK {
		t.Fatalf("point get: %v", r)
	}
	if !regexp.MustCompile(`(?m)^1\s+active_power\s+42\.5\s+kW\s+good\s+\d+\.\ds ago\s+42\.5$`).MatchString(r.stdout) {
		t.Errorf("point 1 row:\n%s", r.stdout)
	}
	// Configured but never written: shown without a value.
	if !regexp.MustCompile(`(?m)^2\s+not_generated\s+-\s+V\s+-\s+-\s+-$`).MatchString(r.stdout) {
		t.Errorf("point 2 row:\n%s", r.stdout)
	}

	r = run(t, "point", "get", "6", "telemetry", "1", "--config", s.dir)
	if r.code != ExitOK || !regexp.MustCompile(`(?m)^1\s+spare_temp\s+21\.5\s+°C\s+stale\s+1m3\ds ago\s+215$`).MatchString(r.stdout) {
		t.Errorf("stale point: %v", r)
	}

	r = run(t, "point", "get", "6", "T", "--config", s.dir, "--json")
	var rows []pointRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || r.code != ExitOK {
		t.Fatalf("--json: %v\n%v", err, r)
	}
	if len(rows) != 1 || rows[0].Value.String() != "21.5" || rows[0].Quality != "stale" || rows[0].TS != tsOld || rows[0].Name != "spare_temp" || rows[0].Raw.String() != "215" {
		t.Errorf("JSON rows: %+v", rows)
	}

	// Without the config (only --redis): values by id, no names.
	r = run(t, "point", "get", "5", "T", "--config", t.TempDir(), "--redis", s.redis.URL())
	if r.code != ExitOK || !regexp.MustCompile(`(?m)^1\s+-\s+42\.5\s+-\s+good`).MatchString(r.stdout) || !strings.Contains(r.stderr, "names and units not shown") {
		t.Errorf("without config: %v", r)
	}

	// A point that exists nowhere.
	r = run(t, "point", "get", "5", "T", "1", "99", "--config", s.dir)
	if r.code != ExitFailure || !strings.Contains(r.stderr, "no telemetry point [99]") || lineWith(r.stdout, "active_power") == "" {
		t.Errorf("unknown point: %v", r)
	}
}

func TestPointWatchPrintsPublishedChanges(t *testing.T) {
	s := startLiveSite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The square wave on S 1 changes every 150 ms; each change is one message.
	r := runCtx(t, ctx, "point", "watch", "5", "S", "--count", "2", "--config", s.dir)
	if ctx.Err() != nil {
		t.Fatalf("no two changes within 10 s: %v", r)
	}
	if r.code != ExitOK {
		t.Fatalf("point watch: %v", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	// Header, the current value, then one line per change.
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "TIME") {
		t.Fatalf("want a header, the current value and two changes:\n%s", r.stdout)
	}
	line := regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3}\s+1\s+blink\s+([01])\s+good$`)
	var values []string
	for _, l := range lines[1:] {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %q is not a point line", l)
		}
		values = append(values, m[1])
	}
	if values[1] == values[2] {
		t.Errorf("two changes with the same value %v", values)
	}

	// --json: one object per line, the current value marked as a snapshot.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	r = runCtx(t, ctx2, "point", "watch", "5", "S", "--count", "1", "--json", "--config", s.dir)
	if ctx2.Err() != nil || r.code != ExitOK {
		t.Fatalf("--json: no change within 10 s: %v", r)
	}
	lines = strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("want the current value and one change:\n%s", r.stdout)
	}
	for i, l := range lines {
		var wl watchLine
		if err := json.Unmarshal([]byte(l), &wl); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if wl.Snapshot != (i == 0) || wl.Channel != 5 || wl.Type != point.Signal || wl.ID != 1 || wl.Name != "blink" || wl.Quality != "good" || wl.TS == 0 {
			t.Errorf("JSON line %d: %+v", i, wl)
		}
		if v, ok := wl.Value.(float64); !ok || (v != 0 && v != 1) {
			t.Errorf("JSON line %d: value %v, want 0 or 1", i, wl.Value)
		}
	}
}

func TestPointWatchStopsOnInterrupt(t *testing.T) {
	s := startLiveSite(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() {
		var out, errOut strings.Builder
		code := Run(ctx, []string{"point", "watch", "6", "T", "--config", s.dir}, &out, &errOut)
		done <- result{code, out.String(), errOut.String()}
	}()
	// Nothing publishes on channel 6; the watch runs until cancelled, as by Ctrl-C.
	// Wait until it has subscribed, so the cancel interrupts the wait for messages.
	testharness.Eventually(t, 5*time.Second, func() error {
		n, err := s.rdb.PubSubNumSub(context.Background(), keyspace.ChannelPoints(6, point.Telemetry)).Result()
		if err != nil || n[keyspace.ChannelPoints(6, point.Telemetry)] != 1 {
			return errNotYet
		}
		return nil
	})
	cancel()
	select {
	case r := <-done:
		if r.code != ExitOK {
			t.Errorf("interrupted watch: %v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("point watch did not stop within 5 s of the interrupt")
	}
}

func TestPointSetAndCommandGet(t *testing.T) {
	s := startLiveSite(t)

	r := run(t, "point", "set", "5", "A", "1", "120", "--user", "tester", "--config", s.dir)
	if r.code != ExitOK || !regexp.MustCompile(`^command [0-9a-f]+: ok \(5 A 1 = 120\)\n$`).MatchString(r.stdout) {
		t.Fatalf("point set: %v", r)
	}
	testharness.Eventually(t, 5*time.Second, func() error {
		if v := s.rdb.HGet(context.Background(), keyspace.ChannelPoints(5, point.Adjustment), "1").Val(); v != "120" {
			return errNotYet
		}
		return nil
	})

	// The stream entry carries who asked.
	entries, err := s.rdb.XRange(context.Background(), keyspace.ChannelCommands(5), "-", "+").Result()
	if err != nil || len(entries) != 1 || entries[0].Values["source"] != "cli" || entries[0].Values["user"] != "tester" {
		t.Errorf("command stream: %v %v", entries, err)
	}

	// Out of range: rejected with the reason, exit 1; command get says the same.
	r = run(t, "point", "set", "5", "adjustment", "1", "501", "--config", s.dir, "--json")
	var res command.Result
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("--json: %v\n%v", err, r)
	}
	if r.code != ExitFailure || res.Status != command.Rejected || !strings.Contains(res.Error, "500") {
		t.Fatalf("out of range: %v", r)
	}
	r = run(t, "command", "get", res.ID, "--config", s.dir)
	if r.code != ExitFailure || lineWith(r.stdout, "STATUS", "rejected") == "" || lineWith(r.stdout, "ERROR", "500") == "" {
		t.Errorf("command get: %v", r)
	}

	// A control point with on/off, and a negative value parsed as a value.
	if r = run(t, "point", "set", "5", "C", "1", "on", "--config", s.dir); r.code != ExitOK {
		t.Errorf("control on: %v", r)
	}
	if r = run(t, "point", "set", "5", "A", "1", "-5", "--config", s.dir); r.code != ExitFailure || !strings.Contains(r.stdout, "rejected") {
		t.Errorf("below the minimum: %v", r)
	}

	// Refused before anything is sent.
	for _, args := range [][]string{
		{"point", "set", "5", "T", "1", "3"},   // read-only type
		{"point", "set", "9", "A", "1", "3"},   // not a configured channel
		{"point", "set", "5", "A", "1", "NaN"}, // not a finite number
	} {
		if r = run(t, append(args, "--config", s.dir)...); r.code != ExitUsage {
			t.Errorf("%v: want exit 2, got %v", args, r)
		}
	}
	if n := s.rdb.XLen(context.Background(), keyspace.ChannelCommands(5)).Val(); n != 4 {
		t.Errorf("%d commands in the stream, want the 4 sent", n)
	}

	if r = run(t, "command", "get", "no-such-id", "--config", s.dir); r.code != ExitFailure || !strings.Contains(r.stderr, "no command no-such-id") {
		t.Errorf("unknown command: %v", r)
	}
}

// A command nobody executes: --timeout bounds the wait, and the command expires.
func TestPointSetTimesOut(t *testing.T) {
	t.Setenv("VOLTAGE_REDIS_URL", "")
	r := testharness.StartRedis(t)
	res := run(t, "point", "set", "1", "A", "1", "5", "--config", exampleSite, "--redis", r.URL(), "--timeout", "200ms")
	if res.code != ExitFailure || !strings.Contains(res.stderr, "no outcome for command") || !strings.Contains(res.stderr, "status pending") {
		t.Fatalf("want exit 1 after the timeout, got %v", res)
	}
	entries, err := r.Client(t).XRange(context.Background(), keyspace.ChannelCommands(1), "-", "+").Result()
	if err != nil || len(entries) != 1 {
		t.Fatalf("stream: %v %v", entries, err)
	}
	ts, _ := strconv.ParseInt(entries[0].Values["ts"].(string), 10, 64)
	exp, _ := strconv.ParseInt(entries[0].Values["expires"].(string), 10, 64)
	if exp-ts != 200 {
		t.Errorf("expires %d ms after submission, want the 200 ms timeout", exp-ts)
	}
}
