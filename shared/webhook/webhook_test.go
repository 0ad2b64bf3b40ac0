package webhook_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/webhook"
)

type receiver struct {
	mu        sync.Mutex
	fail      int // answer 503 to this many requests first
	status    int // then answer this (0 = 204)
	calls     int
	bodies    [][]byte
	deliverys []string
	verifyErr []error
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.fail > 0 {
		r.fail--
		http.Error(w, "not now", http.StatusServiceUnavailable)
		return
	}
	r.bodies = append(r.bodies, body)
	r.deliverys = append(r.deliverys, req.Header.Get(webhook.HeaderDelivery))
	r.verifyErr = append(r.verifyErr, webhook.Verify([]byte("s3cret"), req.Header.Get(webhook.HeaderTimestamp),
		req.Header.Get(webhook.HeaderSignature), body, time.Now(), time.Minute))
	if r.status != 0 {
		w.WriteHeader(r.status)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func TestPostRetriesThenDelivers(t *testing.T) {
	rcv := &receiver{fail: 2}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	c, err := webhook.New(webhook.Config{URL: srv.URL, Secret: "s3cret", MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PostJSON(context.Background(), "d-1", map[string]string{"a": "b"}); err != nil {
		t.Fatalf("post: %v", err)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.calls != 3 || len(rcv.bodies) != 1 {
		t.Fatalf("calls %d, delivered %d; want 3 calls, 1 delivery", rcv.calls, len(rcv.bodies))
	}
	if string(rcv.bodies[0]) != `{"a":"b"}` || rcv.deliverys[0] != "d-1" {
		t.Fatalf("body %s delivery %q", rcv.bodies[0], rcv.deliverys[0])
	}
	if rcv.verifyErr[0] != nil {
		t.Fatalf("signature: %v", rcv.verifyErr[0])
	}
}

func TestPostPermanentRefusal(t *testing.T) {
	rcv := &receiver{status: http.StatusBadRequest}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	c, _ := webhook.New(webhook.Config{URL: srv.URL, MinBackoff: time.Millisecond}, nil)
	err := c.Post(context.Background(), "", []byte(`{}`))
	var we *webhook.Error
	if !errors.As(err, &we) || !we.Permanent || we.Status != 400 || we.Attempts != 1 {
		t.Fatalf("err %v, want a permanent 400 after one attempt", err)
	}
}

func TestPostGivesUpAfterMaxAttempts(t *testing.T) {
	rcv := &receiver{fail: 100}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	c, _ := webhook.New(webhook.Config{URL: srv.URL, MaxAttempts: 3, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}, nil)
	err := c.Post(context.Background(), "", []byte(`{}`))
	var we *webhook.Error
	if !errors.As(err, &we) || we.Permanent || we.Attempts != 3 || we.Status != 503 {
		t.Fatalf("err %#v, want 3 attempts ending in 503", err)
	}
}

func TestPostTimeoutAndCancel(t *testing.T) {
	var n atomic.Int32
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	c, _ := webhook.New(webhook.Config{URL: srv.URL, Timeout: 20 * time.Millisecond, MaxAttempts: 2, MinBackoff: time.Millisecond}, nil)
	if err := c.Post(context.Background(), "", []byte(`{}`)); err == nil || n.Load() != 2 {
		t.Fatalf("err %v after %d attempts; want a timeout after 2", err, n.Load())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Post(ctx, "", []byte(`{}`)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled post: %v", err)
	}
}

func TestVerify(t *testing.T) {
	secret := []byte("k")
	now := time.Unix(1_700_000_000, 0)
	sig := webhook.Sign(secret, now.Unix(), []byte("body"))
	if err := webhook.Verify(secret, "1700000000", sig, []byte("body"), now, time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		ts, sig, body string
		at            time.Time
	}{
		"tampered body": {"1700000000", sig, "bodY", now},
		"wrong sig":     {"1700000000", "sha256=00", "body", now},
		"replayed":      {"1700000000", sig, "body", now.Add(time.Hour)},
		"bad ts":        {"x", sig, "body", now},
	} {
		if err := webhook.Verify(secret, c.ts, c.sig, []byte(c.body), c.at, time.Minute); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	if _, err := webhook.New(webhook.Config{URL: "ftp://x"}, nil); err == nil {
		t.Fatal("accepted ftp://")
	}
}
