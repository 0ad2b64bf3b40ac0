package statestore_test

import (
	"context"
	"maps"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/redisx"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
)

// roundTrips counts what a client sends: pipelines and single commands.
type roundTrips struct{ pipelines, commands atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.commands.Add(1)
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.pipelines.Add(1)
		return next(ctx, cmds)
	}
}

func (h *roundTrips) reset() { h.pipelines.Store(0); h.commands.Store(0) }

func (h *roundTrips) expect(t *testing.T, pipelines, commands int64) {
	t.Helper()
	if p, c := h.pipelines.Load(), h.commands.Load(); p != pipelines || c != commands {
		t.Fatalf("sent %d pipelines and %d single commands, want %d and %d", p, c, pipelines, commands)
	}
}

type fixture struct {
	redis  *testharness.Redis
	client *redis.Client // the writer's client, with the round-trip counter
	check  *redis.Client // a second client for assertions, not counted
	trips  *roundTrips
	writer *statestore.Writer
}

func newFixture(t *testing.T, maxLen int64) *fixture {
	t.Helper()
	r := testharness.StartRedis(t)
	c, err := redisx.Connect(context.Background(), r.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	trips := new(roundTrips)
	c.AddHook(trips)
	return &fixture{redis: r, client: c, check: r.Client(t), trips: trips, writer: statestore.NewWriter(c, maxLen)}
}

func (f *fixture) write(t *testing.T, batches ...statestore.Batch) {
	t.Helper()
	if err := f.writer.Write(context.Background(), batches...); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func (f *fixture) hash(t *testing.T, key string) map[string]string {
	t.Helper()
	h, err := f.check.HGetAll(context.Background(), key).Result()
	if err != nil {
		t.Fatalf("HGETALL %s: %v", key, err)
	}
	return h
}

func (f *fixture) expectHash(t *testing.T, key string, want map[string]string) {
	t.Helper()
	if got := f.hash(t, key); !maps.Equal(got, want) {
		t.Fatalf("%s = %v, want %v", key, got, want)
	}
}

// commandCalls reads how often the server executed each command (including the
// ones a script called) since the last CONFIG RESETSTAT.
func (f *fixture) commandCalls(t *testing.T) map[string]int {
	t.Helper()
	info, err := f.check.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatalf("INFO commandstats: %v", err)
	}
	calls := map[string]int{}
	for line := range strings.Lines(info) {
		name, stats, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		for field := range strings.SplitSeq(stats, ",") {
			if v, ok := strings.CutPrefix(field, "calls="); ok {
				calls[strings.TrimPrefix(name, "cmdstat_")], _ = strconv.Atoi(v)
			}
		}
	}
	return calls
}

// subscribe subscribes to channels and returns once the server confirmed them, so
// nothing published afterwards can be missed.
func subscribe(t *testing.T, c *redis.Client, channels ...string) *redis.PubSub {
	t.Helper()
	ctx := context.Background()
	sub := c.Subscribe(ctx, channels...)
	t.Cleanup(func() { sub.Close() })
	for range channels {
		msg, err := sub.ReceiveTimeout(ctx, 5*time.Second)
		if err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		if _, ok := msg.(*redis.Subscription); !ok {
			t.Fatalf("subscribe: got %T before the confirmation", msg)
		}
	}
	return sub
}

func receive(t *testing.T, sub *redis.PubSub) (string, statestore.Message) {
	t.Helper()
	msg, err := sub.ReceiveTimeout(context.Background(), 5*time.Second)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	m, ok := msg.(*redis.Message)
	if !ok {
		t.Fatalf("receive: got %T, want a message", msg)
	}
	decoded, err := statestore.DecodeMessage([]byte(m.Payload))
	if err != nil {
		t.Fatalf("published message %q: %v", m.Payload, err)
	}
	return m.Channel, decoded
}

func equalMessages(a, b statestore.Message) bool {
	return a.TS == b.TS && maps.Equal(a.V, b.V) && maps.Equal(a.T, b.T) && maps.Equal(a.Q, b.Q)
}
