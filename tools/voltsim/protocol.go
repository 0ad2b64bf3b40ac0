package voltsim

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
)

// An endpoint serves the points of one channel over the channel's protocol. It owns
// the wire image of the values (registers, objects) and the listener; the Sim owns
// the engineering values and pushes them in with Set.
//
// Lock order: the Sim calls Set while holding its own lock, so an endpoint never
// calls back into the Sim (onWrite) while holding a lock that Set takes.
type endpoint interface {
	// Addr is the address the listener is bound to.
	Addr() string
	// Serve serves clients until ctx is done, then closes the listener and every
	// connection and returns when all its goroutines have exited.
	Serve(ctx context.Context) error
	// Close releases the listener when Serve was never called.
	Close() error
	// Set puts the engineering value v of a point into the wire image.
	Set(k pointKey, v float64) error
	SetFault(f Fault) error
	Faults() []Fault
}

// endpointEnv is what the Sim hands a protocol when it builds a channel's endpoint.
type endpointEnv struct {
	// Listen overrides the channel's own address when not empty ("host:port").
	Listen string
	Logger *slog.Logger
	// OnWrite receives the points a client wrote, with their new engineering values,
	// in the order the writes were applied. It is called with no endpoint lock held.
	OnWrite func([]deviceWrite)
	// OnRequest receives every request a client sends. It must not block.
	OnRequest func(RequestLog)
}

// deviceWrite is one point changed by a client write.
type deviceWrite struct {
	key   pointKey
	value float64
}

// protocolFactory builds the endpoint of a channel and binds its listener.
type protocolFactory func(ch *config.Channel, env endpointEnv) (endpoint, error)

// protocols maps a channel protocol name (config.Protocol*) to its simulator. A
// protocol registers itself from its own file's init.
var protocols = map[string]protocolFactory{}

func registerProtocol(name string, f protocolFactory) {
	if _, dup := protocols[name]; dup {
		panic("voltsim: protocol registered twice: " + name) // programming error at init
	}
	protocols[name] = f
}

// pointKey identifies a point within a channel.
type pointKey struct {
	typ point.Type
	id  point.ID
}

func (k pointKey) String() string { return fmt.Sprintf("%s%d", k.typ, k.id) }

// FaultMode is how a simulated device misbehaves.
type FaultMode string

// Fault modes.
const (
	FaultNone      FaultMode = "none"      // answer normally; clears faults
	FaultTimeout   FaultMode = "timeout"   // read requests, never answer
	FaultException FaultMode = "exception" // answer every request with ExceptionCode
	FaultDrop      FaultMode = "drop"      // close connections (and refuse new ones)
	FaultDelay     FaultMode = "delay"     // answer after Delay
	FaultCRC       FaultMode = "crc"       // Modbus RTU: answer with a corrupted CRC
)

// Fault is a misbehaviour injected into a channel. Slave nil applies it to the
// whole listener; a slave id limits it to requests for that slave (unit id), where a
// per-slave drop closes the connection that asked. FaultNone without a slave clears
// every fault of the channel, with a slave only that slave's own.
type Fault struct {
	Mode          FaultMode
	Slave         *uint8
	ExceptionCode uint8         // FaultException; 0 means 4 (server device failure)
	Delay         time.Duration // FaultDelay
}

// Write is a point written by a client, as the device decoded it.
type Write struct {
	Type    point.Type `json:"type"`
	PointID point.ID   `json:"point"`
	Value   float64    `json:"value"` // engineering value
	At      time.Time  `json:"at"`    // wall clock
}

// RequestLog is one request a client sent, as seen on the wire.
type RequestLog struct {
	Slave    uint8  `json:"slave"`
	Function uint8  `json:"function"`
	Address  uint16 `json:"address"` // protocol address (0-based)
	Count    uint16 `json:"count"`   // registers or bits
}

// maxLogEntries bounds the request and write logs of one channel, so a simulator
// that runs for days under a polling client keeps a constant memory; the oldest
// entries go first.
const maxLogEntries = 10000

// boundedLog is a capped, concurrency-safe append log.
type boundedLog[T any] struct {
	mu      sync.Mutex
	entries []T
}

func (l *boundedLog[T]) add(e T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.entries) >= maxLogEntries {
		// Drop the oldest half at once so appends stay amortised O(1).
		n := copy(l.entries, l.entries[len(l.entries)/2:])
		clear(l.entries[n:])
		l.entries = l.entries[:n]
	}
	l.entries = append(l.entries, e)
}

func (l *boundedLog[T]) snapshot() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]T(nil), l.entries...)
}

func (l *boundedLog[T]) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = nil
}
