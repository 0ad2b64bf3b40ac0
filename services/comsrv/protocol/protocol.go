// Package protocol is the plugin interface between comsrv and its protocol drivers.
// A driver knows how to talk to the devices of one channel over one link; it does
// not retry, back off, schedule, or touch Redis: the channel runner owns all of
// that (see package channel), so every protocol behaves the same when a link fails.
//
// Drivers register themselves by protocol name in init(), Telegraf style; the
// comsrv binary imports protocol/all to link them in.
package protocol

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
)

// Driver talks to the devices of one channel. The runner calls Connect, Poll,
// Write and Close from a single goroutine, so the driver never has more than one
// transaction on its link at a time and needs no locking for that.
type Driver interface {
	// Connect opens the link. After any error from Connect or Poll the runner
	// closes the driver and calls Connect again after a backoff. sink stays valid
	// until Close; a driver whose devices push data (spontaneous transmission) may
	// deliver samples through it from its own goroutines.
	Connect(ctx context.Context, sink Sink) error
	// Poll reads the channel's points once and delivers them to sink. Points that
	// could not be read while the link itself works are reported with sink.Fail;
	// an error return means the link is broken and must be reopened.
	Poll(ctx context.Context, sink Sink) error
	// Write sets point p (a C or A point) to the engineering value v on the device.
	Write(ctx context.Context, p *config.Point, v float64) error
	// Close releases the link. It is called once after each successful Connect.
	Close() error
	// Acquisition returns the polling parameters of the channel.
	Acquisition() config.Acquisition
}

// Sink receives what a driver reads. Implementations are safe for concurrent use.
type Sink interface {
	// Sample delivers one value read from the device.
	Sample(t point.Type, s point.Sample)
	// Fail reports that a point could not be read this time: q says how (Invalid for
	// a decode or range error, CommLost when its device did not answer).
	Fail(t point.Type, id point.ID, q point.Quality, reason error)
}

// Factory builds a driver for a channel. It validates the channel's parameters and
// mappings completely; an error stops comsrv from starting.
type Factory func(ch *config.Channel, log *slog.Logger) (Driver, error)

var (
	mu        sync.RWMutex
	factories = map[string]Factory{}
)

// Register makes a protocol available under name. It is called from init().
func Register(name string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := factories[name]; dup {
		panic("protocol: " + name + " registered twice") // a programming error, at init
	}
	factories[name] = f
}

// New builds the driver for ch.
func New(ch *config.Channel, log *slog.Logger) (Driver, error) {
	mu.RLock()
	f, ok := factories[ch.Protocol]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("channel %d (%s): protocol %q is not available in this build (available: %v)", ch.ID, ch.Name, ch.Protocol, Names())
	}
	d, err := f(ch, log)
	if err != nil {
		return nil, fmt.Errorf("channel %d (%s): %w", ch.ID, ch.Name, err)
	}
	return d, nil
}

// Names lists the registered protocols.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	names := make([]string, 0, len(factories))
	for n := range factories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ErrReadOnly is returned by Write for a point that cannot be written.
var ErrReadOnly = errors.New("point is read-only")

// Now is the clock drivers stamp samples with (Unix ms) when they are not
// answering a poll: pushed data without a device time tag.
func Now() int64 { return time.Now().UnixMilli() }

type pollTimeKey struct{}

// WithPollTime gives a Poll the scheduled time of its poll cycle (Unix ms). The
// runner's polls run on a fixed grid (start + k × poll interval).
func WithPollTime(ctx context.Context, ms int64) context.Context {
	return context.WithValue(ctx, pollTimeKey{}, ms)
}

// PollTime is the timestamp a polling driver gives the samples of one Poll: the
// scheduled time of its poll cycle, or Now outside one. Every value of a poll
// then shares one timestamp (a consistent snapshot of the link), consecutive
// polls are exactly one interval apart — which is what lets history store a
// sample in under two bytes — and the error is bounded by the poll's own
// duration, the same uncertainty as when the device took the value.
func PollTime(ctx context.Context) int64 {
	if ms, ok := ctx.Value(pollTimeKey{}).(int64); ok {
		return ms
	}
	return Now()
}
