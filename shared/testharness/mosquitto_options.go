package testharness

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
)

// MosquittoOptions configure a broker started with StartMosquittoWith. The zero
// value is StartMosquitto's broker: plain TCP, anonymous clients.
type MosquittoOptions struct {
	// TLS: when CertFile and KeyFile are set the listener speaks TLS only, with
	// CAFile as the CA that client certificates must chain to.
	CAFile, CertFile, KeyFile string
	// RequireCertificate makes the broker refuse clients without a certificate
	// signed by CAFile (mutual TLS), as AWS IoT Core does.
	RequireCertificate bool
	// PasswordFile (made with mosquitto_passwd) turns anonymous access off.
	PasswordFile string
	// PersistenceDir, when set, keeps sessions and queued messages across Stop and
	// Start (a subscriber with a persistent session misses nothing of an outage).
	PersistenceDir string
}

// StartMosquittoWith starts a mosquitto broker with opts on a random loopback port
// and stops it when the test ends.
func StartMosquittoWith(t testing.TB, opts MosquittoOptions) *Mosquitto {
	t.Helper()
	return startMosquitto(t, opts)
}

func (o MosquittoOptions) config(port int) string {
	if o == (MosquittoOptions{}) {
		return mosquittoConfig(port)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "per_listener_settings false\nlistener %d 127.0.0.1\n", port)
	if o.CertFile != "" {
		fmt.Fprintf(&b, "certfile %s\nkeyfile %s\n", o.CertFile, o.KeyFile)
		if o.CAFile != "" {
			fmt.Fprintf(&b, "cafile %s\n", o.CAFile)
		}
		fmt.Fprintf(&b, "require_certificate %t\n", o.RequireCertificate)
	}
	if o.PasswordFile != "" {
		fmt.Fprintf(&b, "allow_anonymous false\npassword_file %s\n", o.PasswordFile)
	} else {
		b.WriteString("allow_anonymous true\n")
	}
	if o.PersistenceDir != "" {
		fmt.Fprintf(&b, "persistence true\npersistence_location %s/\n", strings.TrimSuffix(o.PersistenceDir, "/"))
	} else {
		b.WriteString("persistence false\n")
	}
	b.WriteString("log_dest stdout\n")
	if os.Geteuid() == 0 {
		b.WriteString("user root\n")
	}
	return b.String()
}

// TLSURL is the broker's address as a tls:// URL, for a broker with TLS options.
func (m *Mosquitto) TLSURL() string { return "tls://" + m.Addr }

// Start starts a stopped broker again on the same port (Stop, then Start, is an
// outage of a chosen length).
func (m *Mosquitto) Start(t testing.TB) {
	t.Helper()
	if err := m.start(); err != nil {
		t.Fatalf("start mosquitto again: %v", err)
	}
}

// Port is the broker's TCP port.
func (m *Mosquitto) Port() string {
	_, p, _ := net.SplitHostPort(m.Addr)
	return p
}
