package testharness

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Mosquitto is a mosquitto MQTT broker process owned by one test.
type Mosquitto struct {
	Addr string // host:port on 127.0.0.1

	proc *process
}

// StartMosquitto starts a mosquitto broker on a random loopback port, accepting
// anonymous clients without persistence, and stops it when the test ends.
func StartMosquitto(t testing.TB) *Mosquitto {
	t.Helper()
	return startMosquitto(t, MosquittoOptions{})
}

func startMosquitto(t testing.TB, opts MosquittoOptions) *Mosquitto {
	t.Helper()
	bin := Binary(t, "mosquitto", "mosquitto", "/usr/sbin", "/usr/local/sbin")
	dir := t.TempDir()
	logPath := filepath.Join(dir, "mosquitto.log")
	var lastErr error
	for range bindAttempts {
		port := FreePort(t)
		conf := filepath.Join(dir, "mosquitto.conf")
		if err := os.WriteFile(conf, []byte(opts.config(port)), 0o644); err != nil {
			t.Fatalf("write mosquitto config: %v", err)
		}
		m := &Mosquitto{
			Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			proc: &process{name: "mosquitto", bin: bin, args: []string{"-c", conf}, logPath: logPath},
		}
		err := m.start()
		if err == nil {
			t.Cleanup(func() {
				if err := m.proc.signal(syscall.SIGTERM); err != nil {
					t.Errorf("stop mosquitto: %v", err)
				}
			})
			return m
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("start mosquitto: %v", lastErr)
	return nil
}

func mosquittoConfig(port int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listener %d 127.0.0.1\n", port)
	b.WriteString("allow_anonymous true\npersistence false\nlog_dest stdout\n")
	if os.Geteuid() == 0 {
		// As root mosquitto drops to the "mosquitto" user, which cannot read the
		// test's temporary directory; stay root instead.
		b.WriteString("user root\n")
	}
	return b.String()
}

func (m *Mosquitto) start() error {
	if err := m.proc.start(); err != nil {
		return err
	}
	err := waitUntil(readyTimeout, func() bool {
		c, err := net.DialTimeout("tcp", m.Addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}, m.proc.exitErr)
	if err == nil {
		return nil
	}
	_ = m.proc.signal(syscall.SIGKILL)
	tail := m.proc.logTail()
	if strings.Contains(tail, "Address already in use") {
		return fmt.Errorf("%s: %w", m.Addr, errPortTaken)
	}
	return fmt.Errorf("mosquitto on %s: %v; log tail:\n%s", m.Addr, err, tail)
}

// URL is the broker's address as a tcp:// URL, the form MQTT clients take.
func (m *Mosquitto) URL() string { return "tcp://" + m.Addr }

// Stop shuts the broker down and waits for it to exit; Restart brings it back on
// the same port.
func (m *Mosquitto) Stop(t testing.TB) {
	t.Helper()
	if err := m.proc.signal(syscall.SIGTERM); err != nil {
		t.Fatalf("stop mosquitto: %v", err)
	}
}

// Restart stops the broker if it is running and starts it again on the same port.
func (m *Mosquitto) Restart(t testing.TB) {
	t.Helper()
	m.Stop(t)
	if err := m.start(); err != nil {
		t.Fatalf("restart mosquitto: %v", err)
	}
}
