package alarmsrv_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/voltageems/voltage/services/alarmsrv"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/testharness"
)

// Invalid rules stop the binary before it starts: exit code 2 and every problem
// at file:line:col.
func TestBinaryRejectsBadRules(t *testing.T) {
	bin := testharness.BuildBinary(t, "./cmd/alarmsrv")
	dir := writeSite(t, baseSite, "redis://127.0.0.1:1/0", "alarms:\n  - id: temp\n    kind: limit\n    chanel: 1\n")
	dir2 := writeSite(t, baseSite, "redis://127.0.0.1:1/0", "alarms:\n  - {id: a, kind: limit, channel: 1, type: T, point: 7, limits: {h: {value: 1}}}\n  - {id: b, kind: digital, channel: 1, type: S, point: 1, state: 3}\n")
	for _, c := range []struct {
		dir  string
		want []string
	}{
		{dir, []string{"alarmsrv/alarms.yaml:4:5: unknown key \"chanel\""}},
		{dir2, []string{"alarms.yaml:2:54: alarm rule a: channel 1 (dev) has no T point 7", "alarms.yaml:3:66: alarm rule b: state must be 0 or 1"}},
	} {
		cmd := exec.Command(bin, "--config", c.dir)
		cmd.Env = append(cmd.Environ(), "VOLTAGE_HTTP_ADDR=127.0.0.1:0")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Fatalf("exit %v, want code 2; output:\n%s", err, out)
		}
		for _, w := range c.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("output:\n%s\nwant it to contain %q", out, w)
			}
		}
	}
}

// kill -9 with an active, unacknowledged alarm whose notification was
// delivered: after the restart the alarm is the same (id, state), it is not
// raised again, and its notification is not sent again. Acknowledging works on
// the restored alarm, and SIGHUP reloads.
func TestKillRestoresStateWithoutDuplicates(t *testing.T) {
	bin := testharness.BuildBinary(t, "./cmd/alarmsrv")
	rcv := newReceiver(t)
	s := newStack(t, webhookChannel(rcv.srv.URL)+"alarms:\n"+tempRule)
	port := testharness.FreePort(t)
	s.url = "http://127.0.0.1:" + strconv.Itoa(port)
	start := func() *testharness.LoggedProcess {
		cmd := exec.Command(bin, "--config", s.dir, "--log-level", "debug")
		cmd.Env = append(cmd.Environ(), "VOLTAGE_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port))
		p, _ := testharness.StartLogged(t, cmd, regexp.MustCompile(`alarmsrv running`), 60*time.Second)
		s.waitReady()
		return p
	}
	p := start()
	s.temp(95)
	raised := s.waitEvents(alarmsrv.EventRaised, "temp:h", 1)
	testharness.WaitFor(t, 30*time.Second, "the webhook", func() bool { return rcv.count("raised", "temp:h") == 1 })
	testharness.WaitFor(t, 20*time.Second, "an empty outbox", func() bool {
		n, _ := s.rdb.XLen(context.Background(), keyspace.AlarmOutbox).Result()
		return n == 0
	})
	_ = p.Stop(t, syscall.SIGKILL, 10*time.Second) // kill -9: the error is the kill itself

	p = start()
	// A further change above the limit, and one processed after it (the metric
	// counts values read from change messages).
	s.temp(97)
	s.temp(96)
	testharness.WaitFor(t, 20*time.Second, "both changes evaluated", func() bool { return metric(t, s.url, "alarmsrv_changes_total") >= 2 })
	var a alarmsrv.Alarm
	if code, _, body := s.do("GET", "/alarms/temp:h", "", nil, &a); code != 200 || a.ID != raised.Alarm.ID || !a.Active || a.Acked || a.Occurrence != 1 {
		t.Fatalf("restored alarm: %d %s", code, body)
	}
	if n := s.countEvents(alarmsrv.EventRaised, "temp:h"); n != 1 {
		t.Fatalf("%d raised events after the restart", n)
	}
	if n := rcv.count("raised", "temp:h"); n != 1 {
		t.Fatalf("%d notifications after the restart", n)
	}
	if code, _, body := s.do("POST", "/alarms/temp:h/ack", "olga", nil, nil); code != 200 {
		t.Fatalf("ack after restart: %d %s", code, body)
	}
	if err := p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testharness.WaitFor(t, 20*time.Second, "the reload", func() bool { return strings.Contains(p.Logs(), "rules reloaded") })
	if err := p.Stop(t, syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.Logs())
	}
}

// metric reads one unlabelled counter from /metrics.
func metric(t *testing.T, base, name string) float64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+" ") {
			v, _ := strconv.ParseFloat(strings.TrimPrefix(line, name+" "), 64)
			return v
		}
	}
	_ = fmt.Sprint()
	return -1
}
