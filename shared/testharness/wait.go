// Package testharness starts the real dependencies a test needs — a redis-server,
// an embedded NATS server with JetStream, a Mosquitto broker — on random loopback
// ports, and stops them when the test ends. It also holds the waiting primitives
// (WaitFor, Eventually): tests poll for a condition with a deadline and never sleep
// to synchronise.
//
// Every helper takes a testing.TB and must be called from the test's goroutine,
// because a failure ends the test with t.Fatal. A missing tool is a failure that
// says how to install it, never a skip.
package testharness

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pollInterval is how often WaitFor and Eventually re-check their condition: short
// enough that tests do not idle, long enough not to burn the 2 shared cores.
const pollInterval = 5 * time.Millisecond

// WaitFor polls cond every few milliseconds until it returns true, and fails the
// test naming what it waited for if that takes longer than timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
			return
		}
		time.Sleep(pollInterval)
	}
}

// Eventually polls check every few milliseconds until it returns nil, and fails
// the test with the last error if that takes longer than timeout.
func Eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", timeout, err)
			return
		}
		time.Sleep(pollInterval)
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Another
// process may take it before the caller binds it; the Start* helpers retry with a
// new port when that happens.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	return port
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("listen on 127.0.0.1:0: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("close probe listener: %w", err)
	}
	return port, nil
}

// waitUntil polls cond until it returns true, stop returns an error, or the
// deadline passes; it is the harness's own, error-returning form of WaitFor.
func waitUntil(timeout time.Duration, cond func() bool, stop func() error) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if err := stop(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v", timeout)
		}
		time.Sleep(pollInterval)
	}
	return nil
}

// ReservedPort is a free loopback port outside the kernel's ephemeral range, for a
// test that must leave a port unused for a while and bind it later (a server that
// comes up after its clients): a port from FreePort may meanwhile be handed to
// any socket bound to port 0, one outside the range never is.
func ReservedPort(t testing.TB) int {
	t.Helper()
	port, err := PortBelowEphemeral()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// PortBelowEphemeral is ReservedPort for programs that are not tests (the dev
// stack, the chaos suite), which also pick ports that their processes bind later.
func PortBelowEphemeral() (int, error) {
	low := 32768 // Linux's default start of the ephemeral range
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	const first = 10000
	if low <= first+100 {
		return freePort() // no room below the range: the best FreePort can do
	}
	start := first + rand.IntN(low-first)
	for i := range low - first {
		port := first + (start-first+i)%(low-first)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		_ = l.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free port between %d and %d", first, low)
}
