package apigateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
)

// mirrorMatchesRedis reads every family of the mirror and of the hashes and
// returns an error naming the first difference.
func mirrorMatchesRedis(ctx context.Context, s *server, m *mirror) error {
	for k, f := range m.fams {
		want, err := queueAndRead(ctx, s, k)
		if err != nil {
			return err
		}
		v := f.current()
		if len(v.ids) != len(want) {
			return fmt.Errorf("%d:%s: mirror has %d points, Redis %d", k.ch, k.t, len(v.ids), len(want))
		}
		for i, pv := range want {
			b, _ := json.Marshal(pv)
			if got := string(v.elem(i)); got != string(b) {
				return fmt.Errorf("%d:%s point %d: mirror %s, Redis %s", k.ch, k.t, pv.Point, got, b)
			}
		}
	}
	return nil
}

func queueAndRead(ctx context.Context, s *server, k famKey) ([]pointValue, error) {
	pipe := s.rdb.Pipeline()
	r := queueRead(ctx, pipe, channelFamily(k.ch, k.t), nil)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	return r.result(pointValue{Channel: k.ch, Type: string(k.t)})
}

// TestMirrorFollowsWritesAndSurvivesLostSubscription writes through statestore
// (as comsrv does), kills the gateway's pub/sub connection while writes go on,
// and checks that the mirror goes unsynced, resyncs, and ends equal to the hashes
// — byte for byte as the Redis read path encodes them.
func TestMirrorFollowsWritesAndSurvivesLostSubscription(t *testing.T) {
	rds := testharness.StartRedis(t)
	rdb := rds.Client(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	s := &server{rdb: rdb, log: log}
	m := newMirror(rdb, []uint32{1, 2}, newMetrics(nil), log)
	done := make(chan struct{})
	go func() { defer close(done); m.run(ctx) }()
	defer func() { cancel(); <-done }()

	w := statestore.NewWriter(rdb, 0)
	write := func(ch uint32, typ point.Type, ts int64, samples ...point.Sample) {
		if err := w.Write(ctx, statestore.ChannelBatch(ch, typ, ts, samples)); err != nil {
			t.Fatal(err)
		}
	}
	// Before the mirror subscribed: only the reload can bring these.
	write(1, point.Telemetry, 1000, point.Sample{ID: 1, Value: 1.5}, point.Sample{ID: 2, Value: -3, Quality: point.Stale})
	testharness.WaitFor(t, 10*time.Second, "mirror synced", m.synced.Load)
	write(1, point.Signal, 1001, point.Sample{ID: 7, Value: 1})
	write(2, point.Adjustment, 1002, point.Sample{ID: 3, Value: 1e-9}, point.Sample{ID: 4, Value: 2.5e21})
	write(1, point.Telemetry, 1003, point.Sample{ID: 2, Value: 4}) // quality back to good
	testharness.Eventually(t, 10*time.Second, func() error { return mirrorMatchesRedis(ctx, s, m) })

	// Kill the subscription; write while it is away.
	if err := rdb.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		write(1, point.Telemetry, int64(2000+i), point.Sample{ID: point.ID(100 + i), Value: float64(i)})
	}
	testharness.WaitFor(t, 10*time.Second, "mirror resynced", m.synced.Load)
	testharness.Eventually(t, 10*time.Second, func() error { return mirrorMatchesRedis(ctx, s, m) })
}

// TestMirrorNeverRollsBack applies a change older than the value held (a message
// published before a reload and delivered after it): the newer value stays.
func TestMirrorNeverRollsBack(t *testing.T) {
	f := &mirrorFamily{key: famKey{1, point.Telemetry}, points: map[uint32]mirrorPoint{5: {value: 2, valid: true, ts: 2000}}}
	log := slog.New(slog.DiscardHandler)
	f.apply(`{"ts":1000,"v":{"5":1}}`, log)
	if got := string(f.current().elem(0)); got != `{"channel":1,"type":"T","point":5,"value":2,"quality":"good","ts":2000}` {
		t.Fatalf("an older change rolled the point back: %s", got)
	}
	f.apply(`{"ts":3000,"v":{"5":3},"q":{"5":"stale"}}`, log)
	if got := string(f.current().elem(0)); got != `{"channel":1,"type":"T","point":5,"value":3,"quality":"stale","ts":3000}` {
		t.Fatalf("a newer change was not applied: %s", got)
	}
	f.apply(`not json`, log) // logged and ignored
	if len(f.points) != 1 {
		t.Fatalf("garbage changed the family: %v", f.points)
	}
}

// FuzzAppendPointValue checks the hand-written encoder against encoding/json for
// any value, quality and timestamp.
func FuzzAppendPointValue(f *testing.F) {
	f.Add(uint32(1), "T", uint32(5), 1.5, "", int64(1732573200000), true)
	f.Add(uint32(2), "A", uint32(0), 1e-7, "stale", int64(0), true)
	f.Add(uint32(3), "S", uint32(9), 0.0, "", int64(-5), false)
	f.Add(uint32(4), "T", uint32(9), -2.5e21, "comm_lost", int64(7), true)
	f.Fuzz(func(t *testing.T, ch uint32, typ string, id uint32, v float64, q string, ts int64, valid bool) {
		valid = valid && !math.IsNaN(v) && !math.IsInf(v, 0)
		got := appendPointValue(nil, ch, typ, id, mirrorPoint{value: v, valid: valid, ts: ts, quality: q})
		pv := pointValue{Channel: ch, Type: typ, Point: id, Quality: q, TS: ts}
		switch {
		case valid:
			pv.Value = &v
			if q == "" {
				pv.Quality = "good"
			}
		case q == "":
			pv.Quality = "invalid"
		}
		want, err := json.Marshal(pv)
		if err != nil {
			t.Fatal(err)
		}
		if ch == 0 || typ == "" { // omitempty fields the mirror never leaves empty
			return
		}
		if string(got) != string(want) {
			t.Fatalf("encoded %s, encoding/json %s", got, want)
		}
		var back pointValue
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%s is not JSON: %v", got, err)
		}
	})
}
