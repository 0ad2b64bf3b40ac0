package testharness

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// NATSOption changes the embedded server's options before it starts, e.g. to set
// a JetStream domain, accounts or a leaf-node listener.
type NATSOption func(*server.Options)

// NATS is an embedded nats-server owned by one test.
type NATS struct {
	Server *server.Server
}

// StartNATS starts an embedded NATS server on a random loopback port with
// JetStream enabled (stored in a temporary directory) and shuts it down when the
// test ends.
func StartNATS(t testing.TB, opts ...NATSOption) *NATS {
	t.Helper()
	o := &server.Options{
		ServerName: "test",
		Host:       "127.0.0.1",
		Port:       -1, // random
		JetStream:  true,
		StoreDir:   t.TempDir(),
		// Small limits so JetStream does not size itself from the machine's memory
		// and disk, which other tests share.
		JetStreamMaxMemory: 64 << 20,
		JetStreamMaxStore:  256 << 20,
		NoLog:              true,
		NoSigs:             true,
	}
	for _, opt := range opts {
		opt(o)
	}
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatalf("create nats server: %v", err)
	}
	s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(readyTimeout) {
		t.Fatalf("nats server not ready for connections after %v", readyTimeout)
	}
	return &NATS{Server: s}
}

// URL is the client URL, nats://127.0.0.1:PORT.
func (n *NATS) URL() string { return n.Server.ClientURL() }

// Conn returns a new client connection, closed when the test ends.
func (n *NATS) Conn(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(n.URL(), nats.Name(t.Name()))
	if err != nil {
		t.Fatalf("connect to nats %s: %v", n.URL(), err)
	}
	t.Cleanup(nc.Close)
	return nc
}
