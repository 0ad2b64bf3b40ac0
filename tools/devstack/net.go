package devstack

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/voltageems/voltage/shared/testharness"
)

// FreeAddr is a free loopback address for a process started later: below the
// ephemeral range, so no client socket takes it meanwhile.
func FreeAddr() string {
	p, err := testharness.PortBelowEphemeral()
	if err != nil {
		return "127.0.0.1:0"
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
}

// AddrOrFree is addr when its port is free, else FreeAddr: the stack takes its
// usual ports where it can and still runs next to a machine's own services.
func AddrOrFree(addr string) string {
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		return addr
	}
	return FreeAddr()
}

// Port is the port of a host:port address ("" when it has none).
func Port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// WaitTCP waits until addr accepts a TCP connection.
func WaitTCP(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not accept connections within %s: %w", addr, timeout, err)
		}
		if err := Sleep(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("waiting for %s: %w", addr, err)
		}
	}
}

// WaitHTTP waits until GET url answers 200.
func WaitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("answered %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not OK within %s: %v", url, timeout, err)
		}
		if err := Sleep(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("waiting for %s: %w", url, err)
		}
	}
}

// Sleep waits d, or returns ctx's error when it is done first.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
