package statestore_test

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
)

func TestWriteFillsHashesPublishesAndAppends(t *testing.T) {
	f := newFixture(t, 0)
	key := keyspace.ChannelPoints(1, point.Telemetry)
	sub := subscribe(t, f.check, key)

	f.write(t, statestore.ChannelBatch(1, point.Telemetry, 1000, []point.Sample{
		{ID: 1, Value: 230.5, Raw: 2305, TS: 1000},
		{ID: 2, Value: 0.25, Raw: 25, TS: 990, Quality: point.Stale},
		{ID: 3, Value: 49.99, Raw: 4999}, // TS 0: the batch's
	}))

	f.expectHash(t, key, map[string]string{"1": "230.5", "2": "0.25", "3": "49.99"})
	f.expectHash(t, keyspace.ChannelTimestamps(1, point.Telemetry), map[string]string{"1": "1000", "2": "990", "3": "1000"})
	f.expectHash(t, keyspace.ChannelRaw(1, point.Telemetry), map[string]string{"1": "2305", "2": "25", "3": "4999"})
	f.expectHash(t, keyspace.ChannelQuality(1, point.Telemetry), map[string]string{"2": "stale"})

	channel, msg := receive(t, sub)
	want := statestore.Message{
		TS: 1000,
		V:  map[string]float64{"1": 230.5, "2": 0.25, "3": 49.99},
		T:  map[string]int64{"2": 990},
		Q:  map[string]string{"2": "stale"},
	}
	if channel != key || !equalMessages(msg, want) {
		t.Fatalf("published on %s: %+v, want on %s: %+v", channel, msg, key, want)
	}

	entries, err := f.check.XRange(context.Background(), keyspace.Changes, "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE: %v", err)
	}
	if len(entries) != 1 || entries[0].Values["key"] != key {
		t.Fatalf("change stream = %v, want one entry for %s", entries, key)
	}
	streamed, err := statestore.DecodeMessage([]byte(entries[0].Values["m"].(string)))
	if err != nil || !equalMessages(streamed, want) {
		t.Fatalf("stream message = %+v, %v; want %+v", streamed, err, want)
	}
}

func TestQualityHashHoldsOnlyBadPoints(t *testing.T) {
	f := newFixture(t, 0)
	qKey := keyspace.ChannelQuality(4, point.Signal)
	f.write(t, statestore.ChannelBatch(4, point.Signal, 1, []point.Sample{
		{ID: 1, Value: 1, Quality: point.CommLost},
		{ID: 2, Value: 0, Quality: point.Stale},
		{ID: 3, Value: 1},
	}))
	f.expectHash(t, qKey, map[string]string{"1": "comm_lost", "2": "stale"})

	f.write(t, statestore.ChannelBatch(4, point.Signal, 2, []point.Sample{{ID: 1, Value: 1}}))
	f.expectHash(t, qKey, map[string]string{"2": "stale"})

	f.write(t, statestore.ChannelBatch(4, point.Signal, 3, []point.Sample{{ID: 2, Value: 0}, {ID: 3, Value: 0}}))
	f.expectHash(t, qKey, map[string]string{})
	f.expectHash(t, keyspace.ChannelPoints(4, point.Signal), map[string]string{"1": "1", "2": "0", "3": "0"})

	// Control points have no quality hash; their qualities travel in the message only.
	sub := subscribe(t, f.check, keyspace.ChannelPoints(4, point.Control))
	f.write(t, statestore.ChannelBatch(4, point.Control, 4, []point.Sample{{ID: 1, Value: 1, Quality: point.Stale}}))
	if n, err := f.check.Exists(context.Background(), keyspace.ChannelQuality(4, point.Control)).Result(); err != nil || n != 0 {
		t.Fatalf("control quality hash exists = %d, %v; want none", n, err)
	}
	if _, msg := receive(t, sub); msg.Quality("1") != point.Stale {
		t.Fatalf("control message = %+v, want q stale", msg)
	}
}

func TestNonFiniteValueKeepsTheLastValue(t *testing.T) {
	f := newFixture(t, 0)
	key := keyspace.ChannelPoints(1, point.Telemetry)
	f.write(t, statestore.ChannelBatch(1, point.Telemetry, 1000, []point.Sample{{ID: 1, Value: 5, Raw: 50}, {ID: 2, Value: 6, Raw: 60}}))
	sub := subscribe(t, f.check, key)

	f.write(t, statestore.ChannelBatch(1, point.Telemetry, 2000, []point.Sample{
		{ID: 1, Value: math.NaN(), Raw: 51},
		{ID: 2, Value: math.Inf(1), Raw: 61},
		{ID: 3, Value: 7, Raw: math.NaN()},
	}))

	f.expectHash(t, key, map[string]string{"1": "5", "2": "6", "3": "7"})
	f.expectHash(t, keyspace.ChannelTimestamps(1, point.Telemetry), map[string]string{"1": "1000", "2": "1000", "3": "2000"})
	f.expectHash(t, keyspace.ChannelRaw(1, point.Telemetry), map[string]string{"1": "50", "2": "60"})
	f.expectHash(t, keyspace.ChannelQuality(1, point.Telemetry), map[string]string{"1": "invalid", "2": "invalid"})
	_, msg := receive(t, sub)
	want := statestore.Message{TS: 2000, V: map[string]float64{"3": 7}, Q: map[string]string{"1": "invalid", "2": "invalid"}}
	if !equalMessages(msg, want) {
		t.Fatalf("message = %+v, want %+v", msg, want)
	}
}

// TestSeveralBatchesOneRoundTrip checks the core promise of DESIGN §4: one Write
// is one network round trip and one transaction, with one PUBLISH and one stream
// entry per batch.
func TestSeveralBatchesOneRoundTrip(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	// Connecting sends HELLO and CLIENT SETINFO through the hooks; count only
	// what Write sends on an established connection.
	f.write(t, statestore.ChannelBatch(9, point.Telemetry, 1, []point.Sample{{ID: 1, Value: 1}}))
	keys := []string{keyspace.ChannelPoints(1, point.Telemetry), keyspace.ChannelPoints(2, point.Telemetry), keyspace.ChannelPoints(2, point.Signal)}
	sub := subscribe(t, f.check, keys...)
	if err := f.check.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	f.trips.reset()

	f.write(t,
		statestore.ChannelBatch(1, point.Telemetry, 10, []point.Sample{{ID: 1, Value: 1}, {ID: 2, Value: 2}}),
		statestore.ChannelBatch(2, point.Telemetry, 10, []point.Sample{{ID: 1, Value: 3}}),
		statestore.Batch{Key: keys[2]}, // empty: skipped
		statestore.ChannelBatch(2, point.Signal, 10, []point.Sample{{ID: 1, Value: 1}}),
	)
	f.trips.expect(t, 1, 0)
	calls := f.commandCalls(t)
	for cmd, want := range map[string]int{"multi": 1, "exec": 1, "publish": 3, "xadd": 3, "hset": 9, "hdel": 3} {
		if calls[cmd] != want {
			t.Errorf("server ran %s %d times, want %d (stats %v)", cmd, calls[cmd], want, calls)
		}
	}

	got := map[string]int{}
	for range keys {
		channel, _ := receive(t, sub)
		got[channel]++
	}
	// A marker after the batch: if any channel had a second message, it would
	// arrive before the marker.
	f.write(t, statestore.ChannelBatch(1, point.Telemetry, 11, []point.Sample{{ID: 1, Value: 9}}))
	if channel, msg := receive(t, sub); channel != keys[0] || msg.TS != 11 {
		t.Fatalf("after the three messages got %s ts %d, want the marker", channel, msg.TS)
	}
	for _, k := range keys {
		if got[k] != 1 {
			t.Fatalf("messages per channel = %v, want one each", got)
		}
	}
	if n, err := f.check.XLen(ctx, keyspace.Changes).Result(); err != nil || n != 5 {
		t.Fatalf("XLEN = %d, %v; want 5 (warm-up, three batches, marker)", n, err)
	}
}

func TestNothingToWriteSendsNothing(t *testing.T) {
	f := newFixture(t, 0)
	f.write(t)
	f.write(t, statestore.Batch{Key: "comsrv:1:T"}, statestore.ChannelBatch(1, point.Signal, 1, nil))
	f.trips.expect(t, 0, 0)

	err := f.writer.Write(context.Background(),
		statestore.ChannelBatch(1, point.Signal, 1, []point.Sample{{ID: 1}}),
		statestore.Batch{Samples: []point.Sample{{ID: 1}}})
	if err == nil || !strings.Contains(err.Error(), "batch 2 of 2 has no key") {
		t.Fatalf("batch without key: err = %v", err)
	}
	f.trips.expect(t, 0, 0)
}

// TestFailingBatchIsNamed: Redis refuses one batch's command (its hash is a
// string); the error names that batch and the other batches are written.
func TestFailingBatchIsNamed(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	bad := keyspace.ChannelPoints(2, point.Telemetry)
	if err := f.check.Set(ctx, bad, "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	err := f.writer.Write(ctx,
		statestore.ChannelBatch(1, point.Telemetry, 1, []point.Sample{{ID: 1, Value: 1}}),
		statestore.ChannelBatch(2, point.Telemetry, 1, []point.Sample{{ID: 1, Value: 2}}),
	)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Fatalf("err = %v, want WRONGTYPE naming %s", err, bad)
	}
	if strings.Contains(err.Error(), keyspace.ChannelPoints(1, point.Telemetry)+":") {
		t.Fatalf("err = %v names the batch that succeeded", err)
	}
	f.expectHash(t, keyspace.ChannelPoints(1, point.Telemetry), map[string]string{"1": "1"})
}

func TestChangeStreamIsCapped(t *testing.T) {
	f := newFixture(t, 20)
	ctx := context.Background()
	const nodeEntries = 5 // ~ trims whole stream nodes, so the cap is exact to a node
	if err := f.check.ConfigSet(ctx, "stream-node-max-entries", strconv.Itoa(nodeEntries)).Err(); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		batches := make([]statestore.Batch, 10)
		for j := range batches {
			batches[j] = statestore.ChannelBatch(uint32(j), point.Telemetry, int64(i+1), []point.Sample{{ID: 1, Value: float64(i)}})
		}
		f.write(t, batches...)
	}
	n, err := f.check.XLen(ctx, keyspace.Changes).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n < 20 || n > 20+nodeEntries {
		t.Fatalf("XLEN = %d after 200 entries with MAXLEN ~ 20, want 20..%d", n, 20+nodeEntries)
	}
}

func TestWriteResumesAfterRedisRestart(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	key := keyspace.ChannelPoints(1, point.Telemetry)
	f.write(t, statestore.ChannelBatch(1, point.Telemetry, 1, []point.Sample{{ID: 1, Value: 1}, {ID: 2, Value: 2}}))

	f.redis.Restart(t) // no persistence: the data is gone
	testharness.Eventually(t, 10*time.Second, func() error {
		return f.writer.Write(ctx, statestore.ChannelBatch(1, point.Telemetry, 2, []point.Sample{{ID: 1, Value: 10}}))
	})
	f.expectHash(t, key, map[string]string{"1": "10"})

	f.redis.Stop(t)
	down, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if err := f.writer.Write(down, statestore.ChannelBatch(1, point.Telemetry, 3, []point.Sample{{ID: 1, Value: 11}})); err == nil {
		t.Fatal("Write succeeded with Redis stopped")
	}
	f.redis.Restart(t)
	testharness.Eventually(t, 10*time.Second, func() error {
		return f.writer.Write(ctx, statestore.ChannelBatch(1, point.Telemetry, 4, []point.Sample{{ID: 2, Value: 20}}))
	})
	f.expectHash(t, key, map[string]string{"2": "20"})
}

// TestLargeBatch crosses the script's 4,000-argument chunk in every section.
func TestLargeBatch(t *testing.T) {
	f := newFixture(t, 0)
	const n = 5001
	samples := make([]point.Sample, n)
	for i := range samples {
		samples[i] = point.Sample{ID: uint32(i), Value: float64(i) / 4, Raw: float64(i), Quality: point.Stale}
	}
	f.write(t, statestore.ChannelBatch(1, point.Telemetry, 1, samples))
	for i := range samples {
		samples[i].Quality = point.Good
	}
	samples[n-1].Quality = point.CommLost
	f.write(t, statestore.ChannelBatch(1, point.Telemetry, 2, samples))

	ctx := context.Background()
	for _, key := range []string{keyspace.ChannelPoints(1, point.Telemetry), keyspace.ChannelTimestamps(1, point.Telemetry), keyspace.ChannelRaw(1, point.Telemetry)} {
		if got, err := f.check.HLen(ctx, key).Result(); err != nil || got != n {
			t.Fatalf("HLEN %s = %d, %v; want %d", key, got, err, n)
		}
	}
	if v, err := f.check.HGet(ctx, keyspace.ChannelPoints(1, point.Telemetry), "4999").Result(); err != nil || v != "1249.75" {
		t.Fatalf("point 4999 = %q, %v", v, err)
	}
	f.expectHash(t, keyspace.ChannelQuality(1, point.Telemetry), map[string]string{strconv.Itoa(n - 1): "comm_lost"})
}

func TestConcurrentWrites(t *testing.T) {
	f := newFixture(t, 1000)
	ctx := context.Background()
	const writers, writes = 6, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range writes {
				samples := make([]point.Sample, 50)
				for j := range samples {
					samples[j] = point.Sample{ID: uint32(j), Value: float64(i), Raw: float64(w)}
				}
				b := statestore.ChannelBatch(uint32(w), point.Telemetry, int64(i+1), samples)
				if err := f.writer.Write(ctx, b, b); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for w := range writers {
		h := f.hash(t, keyspace.ChannelPoints(uint32(w), point.Telemetry))
		raw := f.hash(t, keyspace.ChannelRaw(uint32(w), point.Telemetry))
		if len(h) != 50 || h["49"] != strconv.Itoa(writes-1) || raw["0"] != strconv.Itoa(w) {
			t.Fatalf("channel %d: %d points, point 49 = %q, raw 0 = %q", w, len(h), h["49"], raw["0"])
		}
	}
}

func TestWriteHonoursCancelledContext(t *testing.T) {
	f := newFixture(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := f.writer.Write(ctx, statestore.ChannelBatch(1, point.Telemetry, 1, []point.Sample{{ID: 1, Value: 1}}))
	if err == nil {
		t.Fatal("Write with a cancelled context succeeded")
	}
	if n, err := f.check.Exists(context.Background(), keyspace.ChannelPoints(1, point.Telemetry)).Result(); err != nil || n != 0 {
		t.Fatalf("value hash exists = %d, %v after a cancelled write", n, err)
	}
}

func TestWriteWithAddsCommandsToTheSameTransaction(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	// Connecting sends HELLO and CLIENT SETINFO through the hooks: not counted.
	f.write(t, statestore.ChannelBatch(9, point.Telemetry, 1, []point.Sample{{ID: 1, Value: 1}}))
	f.trips.reset()
	err := f.writer.WriteWith(ctx, [][]any{{"HSET", "svc:state", "counter", "41"}},
		statestore.ChannelBatch(1, point.Telemetry, 1000, []point.Sample{{ID: 1, Value: 7, Raw: 7}}))
	if err != nil {
		t.Fatal(err)
	}
	f.trips.expect(t, 1, 0) // the batch and the extra command in one transaction
	f.expectHash(t, "svc:state", map[string]string{"counter": "41"})
	f.expectHash(t, keyspace.ChannelPoints(1, point.Telemetry), map[string]string{"1": "7"})

	// Extra commands alone are written too, and their errors are reported.
	if err := f.writer.WriteWith(ctx, [][]any{{"HSET", "svc:state", "counter", "42"}}); err != nil {
		t.Fatal(err)
	}
	f.expectHash(t, "svc:state", map[string]string{"counter": "42"})
	if err := f.writer.WriteWith(ctx, [][]any{{"LPUSH", "svc:state", "x"}}); err == nil || !strings.Contains(err.Error(), "LPUSH") {
		t.Fatalf("a failing extra command gave %v", err)
	}
}
