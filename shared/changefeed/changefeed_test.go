package changefeed_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/changefeed"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
)

// writeChanges writes n change batches of channel 1 telemetry point 1 with values
// from, from+1, ... through the real write path.
func writeChanges(t *testing.T, rdb redis.UniversalClient, from, n int) {
	t.Helper()
	w := statestore.NewWriter(rdb, 0)
	for i := range n {
		v := float64(from + i)
		b := statestore.ChannelBatch(1, point.Telemetry, int64(1000+from+i), []point.Sample{{ID: 1, Value: v, Raw: v}})
		if err := w.Write(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
}

// readAll reads until want entries arrived, returning their values in order.
func readAll(t *testing.T, c *changefeed.Consumer, want int, ack bool) []float64 {
	t.Helper()
	ctx := context.Background()
	var got []float64
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < want {
		if time.Now().After(deadline) {
			t.Fatalf("read %d of %d entries before the deadline: %v", len(got), want, got)
		}
		b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Bad) > 0 {
			t.Fatalf("bad entries: %+v", b.Bad)
		}
		for _, e := range b.Entries {
			if e.Key != keyspace.ChannelPoints(1, point.Telemetry) {
				t.Fatalf("entry key %q", e.Key)
			}
			got = append(got, e.Message.V["1"])
		}
		if ack {
			if err := c.Ack(ctx, b.IDs()...); err != nil {
				t.Fatal(err)
			}
		}
	}
	return got
}

func sequence(from, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = float64(from + i)
	}
	return s
}

func equal(a, b []float64) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func TestRestartResumesFromLastAck(t *testing.T) {
	rdb := testharness.StartRedis(t).Client(t)
	writeChanges(t, rdb, 0, 10)

	opts := changefeed.Options{Group: "test", Count: 4, Block: 50 * time.Millisecond}
	first := changefeed.New(rdb, opts)
	if got := readAll(t, first, 4, true); !equal(got, sequence(0, 4)) {
		t.Fatalf("first 4: %v", got)
	}
	// Read 4 more without acknowledging: a crash right after delivery.
	if got := readAll(t, first, 4, false); !equal(got, sequence(4, 4)) {
		t.Fatalf("next 4: %v", got)
	}

	writeChanges(t, rdb, 10, 2)
	restarted := changefeed.New(rdb, opts)
	got := readAll(t, restarted, 8, true)
	if !equal(got, sequence(4, 8)) {
		t.Fatalf("after restart got %v, want the 4 unacknowledged then the 4 unread: %v", got, sequence(4, 8))
	}
	lag, pending, err := restarted.Lag(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if lag != 0 || pending != 0 {
		t.Fatalf("lag %d pending %d after reading and acknowledging everything", lag, pending)
	}
}

func TestStartAtNewEntriesOnly(t *testing.T) {
	rdb := testharness.StartRedis(t).Client(t)
	writeChanges(t, rdb, 0, 3)
	c := changefeed.New(rdb, changefeed.Options{Group: "live", StartID: "$", Block: 50 * time.Millisecond})
	b, err := c.Read(context.Background())
	if err != nil || b.Len() != 0 {
		t.Fatalf("first read of a $ group: %d entries, %v", b.Len(), err)
	}
	writeChanges(t, rdb, 3, 2)
	if got := readAll(t, c, 2, true); !equal(got, sequence(3, 2)) {
		t.Fatalf("got %v", got)
	}
}

func TestGroupRecreatedAfterStreamDeleted(t *testing.T) {
	rdb := testharness.StartRedis(t).Client(t)
	writeChanges(t, rdb, 0, 2)
	c := changefeed.New(rdb, changefeed.Options{Group: "test", Block: 50 * time.Millisecond})
	readAll(t, c, 2, true)
	if err := rdb.Del(context.Background(), keyspace.Changes).Err(); err != nil {
		t.Fatal(err)
	}
	b, err := c.Read(context.Background())
	if err != nil || b.Len() != 0 {
		t.Fatalf("read after the stream vanished: %d entries, %v", b.Len(), err)
	}
	writeChanges(t, rdb, 100, 3)
	if got := readAll(t, c, 3, true); !equal(got, sequence(100, 3)) {
		t.Fatalf("got %v", got)
	}
}

func TestBadEntriesAreReportedNotFatal(t *testing.T) {
	rdb := testharness.StartRedis(t).Client(t)
	ctx := context.Background()
	for _, fields := range []map[string]any{
		{"key": "comsrv:1:T", "m": "{not json"},
		{"other": "x"},
	} {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keyspace.Changes, Values: fields}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	writeChanges(t, rdb, 7, 1)
	c := changefeed.New(rdb, changefeed.Options{Group: "test", Block: 50 * time.Millisecond})
	b, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Bad) != 2 || len(b.Entries) != 1 || b.Entries[0].Message.V["1"] != 7 {
		t.Fatalf("batch: %d bad %+v, entries %+v", len(b.Bad), b.Bad, b.Entries)
	}
	if len(b.IDs()) != 3 {
		t.Fatalf("IDs() = %v, want all three", b.IDs())
	}
	if err := c.Ack(ctx, b.IDs()...); err != nil {
		t.Fatal(err)
	}
	if _, pending, err := c.Lag(ctx); err != nil || pending != 0 {
		t.Fatalf("pending %d, %v", pending, err)
	}
}

func TestTrimmedPendingEntryIsReportedBad(t *testing.T) {
	rdb := testharness.StartRedis(t).Client(t)
	ctx := context.Background()
	writeChanges(t, rdb, 0, 3)
	opts := changefeed.Options{Group: "test", Block: 50 * time.Millisecond}
	readAll(t, changefeed.New(rdb, opts), 3, false)
	if err := rdb.XTrimMaxLen(ctx, keyspace.Changes, 1).Err(); err != nil {
		t.Fatal(err)
	}
	b, err := changefeed.New(rdb, opts).Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Bad) != 2 || len(b.Entries) != 1 || b.Entries[0].Message.V["1"] != 2 {
		t.Fatalf("after trimming: bad %+v, entries %+v", b.Bad, b.Entries)
	}
}

func TestClaimsEntriesOfAVanishedConsumer(t *testing.T) {
	rdb := testharness.StartRedis(t).Client(t)
	ctx := context.Background()
	writeChanges(t, rdb, 0, 5)
	gone := changefeed.New(rdb, changefeed.Options{Group: "test", Consumer: "old-host", Block: 50 * time.Millisecond})
	readAll(t, gone, 5, false)

	// A consumer with another name takes the entries over once they are idle.
	c := changefeed.New(rdb, changefeed.Options{Group: "test", Consumer: "new-host", ClaimIdle: time.Millisecond, Block: 50 * time.Millisecond})
	var got []float64
	testharness.Eventually(t, 10*time.Second, func() error {
		b, err := c.Read(ctx)
		if err != nil {
			return err
		}
		for _, e := range b.Entries {
			got = append(got, e.Message.V["1"])
		}
		if err := c.Ack(ctx, b.IDs()...); err != nil {
			return err
		}
		if len(got) < 5 {
			return fmt.Errorf("claimed %v so far", got)
		}
		return nil
	})
	if !equal(got, sequence(0, 5)) {
		t.Fatalf("claimed %v", got)
	}
}
