package service_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/service"
	"github.com/voltageems/voltage/shared/testharness"
)

func TestBaseServesReloadsAndStops(t *testing.T) {
	r := testharness.StartRedis(t)
	site := &config.Config{Site: config.Site{Redis: config.Redis{URL: r.URL()}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := service.Open(ctx, "testsvc", site, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	applied := make(chan struct{}, 10)
	refuse := errors.New("rule 3: unknown point")
	var fail atomic.Bool
	apply := func(context.Context) error {
		applied <- struct{}{}
		if fail.Load() {
			return refuse
		}
		return nil
	}
	reload := make(chan struct{}, 1)
	bound := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx, "127.0.0.1:0", func(a net.Addr) { bound <- a }, reload, apply) }()
	url := "http://" + (<-bound).String()

	post := func() (int, string) {
		resp, err := http.Post(url+"/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var sb strings.Builder
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		sb.Write(buf[:n])
		return resp.StatusCode, sb.String()
	}
	if code, body := post(); code != http.StatusOK || !strings.Contains(body, "reloaded") {
		t.Fatalf("POST /reload = %d %s", code, body)
	}
	fail.Store(true)
	if code, body := post(); code != http.StatusUnprocessableEntity || !strings.Contains(body, refuse.Error()) {
		t.Fatalf("refused POST /reload = %d %s", code, body)
	}
	reload <- struct{}{} // SIGHUP
	testharness.WaitFor(t, 5*time.Second, "three reloads applied", func() bool { return len(applied) == 3 })

	testharness.WaitFor(t, 10*time.Second, "the heartbeat", func() bool {
		keys, _ := r.Client(t).Keys(ctx, keyspace.ServiceHeartbeat("testsvc", "*")).Result()
		return len(keys) == 1
	})
	resp, err := http.Get(url + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	resp.Body.Close()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
}

func TestBaseWithoutReload(t *testing.T) {
	r := testharness.StartRedis(t)
	site := &config.Config{Site: config.Site{Redis: config.Redis{URL: r.URL()}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := service.Open(ctx, "static", site, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	bound := make(chan net.Addr, 1)
	go b.Serve(ctx, "127.0.0.1:0", func(a net.Addr) { bound <- a }, nil, nil)
	resp, err := http.Post("http://"+(<-bound).String()+"/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("POST /reload on a service without reload = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
