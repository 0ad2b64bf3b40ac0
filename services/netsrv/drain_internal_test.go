package netsrv

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/voltageems/voltage/shared/spool"
)

// recordingLink is a link that is always up and records what it was given.
type recordingLink struct {
	mu   sync.Mutex
	sent []Message
	at   []time.Time
}

func (l *recordingLink) run(ctx context.Context) { <-ctx.Done() }
func (l *recordingLink) connected() bool         { return true }
func (l *recordingLink) state() (bool, string)   { return true, "" }
func (l *recordingLink) publish(_ context.Context, m Message) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent = append(l.sent, m)
	l.at = append(l.at, time.Now())
	return nil
}

// Draining the spool is throttled to replay_rate, keeps the order, and commits
// what was delivered.
func TestSpoolDrainIsThrottledAndOrdered(t *testing.T) {
	sp, err := spool.Open(spool.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	const n = 12
	for i := range n {
		b, _ := json.Marshal(spoolRecord{Message: Message{Topic: "t", Payload: []byte{byte('a' + i)}}, Points: 1})
		if err := sp.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	lk := &recordingLink{}
	l := &LinkConfig{Name: "d"}
	f := &forwarder{cfg: l, log: slog.New(slog.DiscardHandler), spool: sp, link: lk,
		m: newMetrics(prometheus.NewRegistry()), limiter: rate.NewLimiter(20, 2)}
	start := time.Now()
	for sp.Stats().Records > 0 {
		if !f.drain(context.Background()) {
			t.Fatal("drain failed")
		}
	}
	elapsed := time.Since(start)
	if len(lk.sent) != n {
		t.Fatalf("%d messages sent, want %d", len(lk.sent), n)
	}
	for i, m := range lk.sent {
		if m.Payload[0] != byte('a'+i) {
			t.Fatalf("message %d is %q: order lost", i, m.Payload)
		}
	}
	// 20/s with a burst of 2: the last of 12 cannot leave before (12-2)/20 s.
	if least := 500 * time.Millisecond; elapsed < least {
		t.Fatalf("12 messages drained in %v at replay_rate 20/s; want at least %v", elapsed, least)
	}
	if f.st.sent.Load() != n || f.st.points.Load() != n {
		t.Errorf("counted %d messages, %d points", f.st.sent.Load(), f.st.points.Load())
	}
}
