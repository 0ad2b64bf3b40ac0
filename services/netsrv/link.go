package netsrv

import (
	"context"
	"errors"
	"sync"
)

// link is one connection to a cloud endpoint. It reconnects on its own; the
// forwarder only asks whether it is up and publishes one message at a time.
type link interface {
	// run connects and keeps the connection until ctx is done.
	run(ctx context.Context)
	// connected reports whether a publish can be attempted now.
	connected() bool
	// publish delivers m and returns once the receiver acknowledged it (QoS 1
	// PUBACK, HTTP 2xx) or, for QoS 0, once it was written.
	publish(ctx context.Context, m Message) error
	// state is what status and metrics report: up, and the last error seen.
	state() (up bool, lastErr string)
}

// downlinkHandler receives a message on a subscribed downlink topic. It must not
// block: the link's receive loop calls it.
type downlinkHandler func(topic string, payload []byte)

// errNotConnected is returned by publish while the link is down.
var errNotConnected = errors.New("not connected")

// linkState is the connection state every link shares.
type linkState struct {
	mu      sync.Mutex
	up      bool
	lastErr string
}

func (s *linkState) set(up bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.up = up
	if err != nil {
		s.lastErr = err.Error()
	}
}

func (s *linkState) fail(err error) {
	if err == nil {
		return
	}
	s.mu.Lock()
	s.lastErr = err.Error()
	s.mu.Unlock()
}

func (s *linkState) connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up
}

func (s *linkState) state() (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up, s.lastErr
}
