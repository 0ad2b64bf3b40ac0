package netsrv_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/testharness"
)

// A webhook that fails for a while (503): batches are retried with backoff, then
// spooled, and every value arrives once, in order, after it recovers.
func TestHTTPWebhookRetriesUntilAccepted(t *testing.T) {
	var mu sync.Mutex
	failing := true
	attempts, failures := 0, 0
	var got []subMsg
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		attempts++
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Api-Key") != "k1" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if failing {
			failures++
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		got = append(got, subMsg{Topic: "hook", Payload: string(body)})
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	s := newSite(t)
	s.links(fmt.Sprintf(`
links:
  - name: hook
    type: http
    http: {url: %s, headers: {X-Api-Key: k1}, timeout_ms: 2000}
    select: [{channel: 4}]
    spool: {after_s: 1}
`, srv.URL))
	r := s.start()
	s.changes(4, 0, 30)
	testharness.Eventually(t, 20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if failures < 3 {
			return fmt.Errorf("%d failed attempts so far", failures)
		}
		return nil
	})
	ls := r.linkStatus(t, "hook")
	if ls.Connected || ls.Errors == 0 || ls.LastError == "" {
		t.Errorf("status while failing: %+v", ls)
	}
	s.changes(4, 30, 30)
	testharness.Eventually(t, 20*time.Second, func() error { // the outage outlasted after_s
		if ls := r.linkStatus(t, "hook"); ls.Queued.Spool == 0 {
			return fmt.Errorf("nothing spooled yet: %+v", ls)
		}
		return nil
	})
	mu.Lock()
	failing = false
	mu.Unlock()

	all := func() []subMsg {
		mu.Lock()
		defer mu.Unlock()
		return append([]subMsg(nil), got...)
	}
	testharness.Eventually(t, 30*time.Second, func() error {
		counts := valueCounts(t, all(), "c4_T_1")
		if len(counts) < 60 {
			return fmt.Errorf("%d of 60 values accepted", len(counts))
		}
		return nil
	})
	msgs := all()
	checkExactlyOnce(t, valueCounts(t, msgs, "c4_T_1"), 0, 60)
	checkOrder(t, msgs, "c4_T_1")
	var p jsonPayload
	must(t, json.Unmarshal([]byte(msgs[0].Payload), &p))
	if p.Site != "test-site" || p.Link != "hook" {
		t.Errorf("payload header: %s", msgs[0].Payload)
	}
	mu.Lock()
	n := attempts
	mu.Unlock()
	t.Logf("%d requests, %d failed", n, failures)
	testharness.Eventually(t, 10*time.Second, func() error {
		if ls := r.linkStatus(t, "hook"); !ls.Connected || ls.SentPoints < 60 {
			return fmt.Errorf("status after recovery: %+v", ls)
		}
		return nil
	})
}
