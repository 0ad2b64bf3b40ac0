package rulesrv_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/notify"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/shared/webhook"
)

// Every action kind runs with its outcome recorded: a signed webhook (retried
// after a 503), a notification request for alarmsrv, an event, and a command
// nobody executes, which times out (and expires with the timeout).
func TestActionKindsAndOutcomes(t *testing.T) {
	var mu sync.Mutex
	var bodies []map[string]any
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if err := webhook.Verify([]byte("s3cret"), r.Header.Get(webhook.HeaderTimestamp), r.Header.Get(webhook.HeaderSignature), b, time.Now(), time.Minute); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		bodies = append(bodies, m)
	}))
	defer srv.Close()

	s := newStack(t, withRule("all", fmt.Sprintf(`id: all
condition: meter.active_power > 100
actions:
  - webhook: {url: "%s/hook", secret: s3cret}
    timeout: 20s
  - notify: {severity: major, title: Import above 100 kW, message: check the load, instance: meter}
  - event: {name: high_import, message: import above 100 kW}
  - command: {channel: 1, type: A, point: 1, value: 1}
    timeout: 300ms
`, srv.URL)))
	s.startRulesrv()
	s.setInst(meter, point.Good, mGrid, 150)

	var outs []map[string]any
	testharness.Eventually(t, 30*time.Second, func() error {
		o := s.exec("all")["outcome"]
		if o == "" {
			return fmt.Errorf("no outcome yet")
		}
		return json.Unmarshal([]byte(o), &outs)
	})
	status := func(i int) string { return fmt.Sprint(outs[i]["status"]) }
	if len(outs) != 4 || status(0) != "sent" || status(1) != "sent" || status(2) != "sent" || status(3) != "timeout" {
		t.Fatalf("outcomes %v", outs)
	}
	if s.exec("all")["outcome_status"] != "failed" {
		t.Fatalf("outcome_status %q, want failed (the command timed out)", s.exec("all")["outcome_status"])
	}
	mu.Lock()
	if calls != 2 || len(bodies) != 1 || bodies[0]["rule"] != "all" || bodies[0]["result"] != "fired" {
		t.Fatalf("webhook: %d calls, bodies %v", calls, bodies)
	}
	mu.Unlock()

	msgs, err := s.RDB.XRange(context.Background(), keyspace.NotificationRequests, "-", "+").Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("notification requests %v %v", msgs, err)
	}
	req, err := notify.Parse(msgs[0].Values)
	if err != nil || req.Severity != notify.Major || req.Source != "rule:all" || req.Instance != "meter" {
		t.Fatalf("notification %+v %v", req, err)
	}
	if evs := s.events("all", "event"); len(evs) != 1 || evs[0]["name"] != "high_import" {
		t.Fatalf("events %v", evs)
	}
	// The command that nobody executed expires with the action's timeout.
	cmds, _ := s.RDB.XRange(context.Background(), keyspace.ChannelCommands(1), "-", "+").Result()
	if len(cmds) != 1 {
		t.Fatalf("commands %v", cmds)
	}
	var ts, exp int64
	fmt.Sscan(fmt.Sprint(cmds[0].Values["ts"]), &ts)
	fmt.Sscan(fmt.Sprint(cmds[0].Values["expires"]), &exp)
	if exp-ts != 300 || cmds[0].Values["source"] != "rule" || !strings.HasPrefix(fmt.Sprint(cmds[0].Values["user"]), "rule:all") {
		t.Fatalf("command fields %v", cmds[0].Values)
	}
}
