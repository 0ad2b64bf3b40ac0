package command

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/testharness"
)

func TestSubmit(t *testing.T) {
	rdb := testharness.StartRedis(t).Client(t)
	ctx := context.Background()

	before := time.Now().UnixMilli()
	c := Command{Channel: 3, Type: point.Adjustment, Point: 12, Value: 55.5, Source: "cli", User: "alice"}
	id, err := Submit(ctx, rdb, c)
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	if len(id) != 24 {
		t.Errorf("Submit filled id %q, want a NewID (24 hex digits)", id)
	}

	h, err := rdb.HGetAll(ctx, keyspace.Command(id)).Result()
	if err != nil {
		t.Fatalf("read %s: %v", keyspace.Command(id), err)
	}
	ts, err := strconv.ParseInt(h["ts"], 10, 64)
	if err != nil || ts < before || ts > time.Now().UnixMilli() {
		t.Errorf("cmd hash ts = %q, want the submit time in Unix ms", h["ts"])
	}
	want := map[string]string{"status": "pending", "channel": "3", "type": "A", "point": "12", "value": "55.5", "ts": h["ts"]}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("cmd hash %s = %q, want %q (hash %v)", k, h[k], v, h)
		}
	}
	ttl, err := rdb.PTTL(ctx, keyspace.Command(id)).Result()
	if err != nil || ttl > ResultTTL || ttl < ResultTTL-time.Minute {
		t.Errorf("cmd hash TTL = %v (%v), want about %v", ttl, err, ResultTTL)
	}

	entries, err := rdb.XRange(ctx, keyspace.ChannelCommands(3), "-", "+").Result()
	if err != nil {
		t.Fatalf("read %s: %v", keyspace.ChannelCommands(3), err)
	}
	if len(entries) != 1 {
		t.Fatalf("%s has %d entries, want 1", keyspace.ChannelCommands(3), len(entries))
	}
	got, err := Parse(3, entries[0].ID, entries[0].Values)
	if err != nil {
		t.Fatalf("Parse of the stream entry %v: %v", entries[0].Values, err)
	}
	c.ID, c.TS = id, ts
	if got != c {
		t.Errorf("stream entry parses to %+v, want %+v", got, c)
	}
	if got.Deadline() != ts+DefaultMaxAge.Milliseconds() {
		t.Errorf("Deadline = %d, want ts + %v", got.Deadline(), DefaultMaxAge)
	}

	// Get reads back what Submit recorded.
	r, err := Get(ctx, rdb, id)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if wantR := (Result{ID: id, Channel: 3, Type: "A", Point: 12, Status: Pending}); r != wantR {
		t.Errorf("Get = %+v, want %+v", r, wantR)
	}
}

func TestSubmitKeepsGivenIDAndTimes(t *testing.T) {
	rdb := testharness.StartRedis(t).Client(t)
	ctx := context.Background()
	c := Command{ID: "op-42", Channel: 1, Type: point.Control, Point: 2, Value: 1, TS: 1717000000000, Expires: 1717000010000}
	id, err := Submit(ctx, rdb, c)
	if err != nil || id != "op-42" {
		t.Fatalf("Submit = %q, %v; want op-42", id, err)
	}
	entries, err := rdb.XRange(ctx, keyspace.ChannelCommands(1), "-", "+").Result()
	if err != nil || len(entries) != 1 {
		t.Fatalf("stream: %d entries, %v; want 1", len(entries), err)
	}
	if got, err := Parse(1, entries[0].ID, entries[0].Values); err != nil || got != c {
		t.Errorf("stream entry = %+v, %v; want %+v", got, err, c)
	}
}

func TestSubmitRefusesReadOnlyTypes(t *testing.T) {
	rdb := testharness.StartRedis(t).Client(t)
	ctx := context.Background()
	for _, typ := range []point.Type{point.Telemetry, point.Signal, 0} {
		id, err := Submit(ctx, rdb, Command{Channel: 1, Type: typ, Point: 1, Value: 1})
		if err == nil {
			t.Errorf("Submit of type %q succeeded with id %q", typ.String(), id)
			continue
		}
		if !strings.Contains(err.Error(), "not writable") {
			t.Errorf("Submit of type %q: error %q does not say the type is not writable", typ.String(), err)
		}
	}
	// Nothing was written: no stream entry and no result hash.
	if n, err := rdb.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Errorf("refused commands left %d keys behind (%v)", n, err)
	}
}

// TestSubmitRefusesNonFiniteValue is the producer side of
// TestParseRejectsNonFiniteValue: a NaN or ±Inf value (FormatValue renders them
// "NaN", "+Inf") must be refused before anything is written, not queued for
// comsrv to reject.
func TestSubmitRefusesNonFiniteValue(t *testing.T) {
	rdb := testharness.StartRedis(t).Client(t)
	ctx := context.Background()
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if id, err := Submit(ctx, rdb, Command{Channel: 1, Type: point.Adjustment, Point: 1, Value: v}); err == nil {
			t.Errorf("Submit queued value %v as command %s; it must refuse a non-finite value", v, id)
		}
	}
	if n, err := rdb.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Errorf("refused commands left %d keys behind (%v)", n, err)
	}
}

func TestGetMissing(t *testing.T) {
	rdb := testharness.StartRedis(t).Client(t)
	_, err := Get(context.Background(), rdb, "nope")
	if !errors.Is(err, redis.Nil) {
		t.Errorf("Get of a missing command = %v, want an error wrapping redis.Nil", err)
	}
	if err != nil && !strings.Contains(err.Error(), "nope") {
		t.Errorf("error %q does not name the command id", err)
	}
}

// submitPending submits an adjustment and returns its id.
func submitPending(t *testing.T, rdb *redis.Client) string {
	t.Helper()
	id, err := Submit(context.Background(), rdb, Command{Channel: 2, Type: point.Adjustment, Point: 5, Value: 10})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return id
}

type waitResult struct {
	r   Result
	err error
}

// startWait runs Wait in a goroutine and returns once it has subscribed to
// cmd:result, so what the test publishes next cannot be missed.
func startWait(t *testing.T, rdb *redis.Client, id string, timeout time.Duration) <-chan waitResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	out := make(chan waitResult, 1)
	go func() {
		r, err := Wait(ctx, rdb, id)
		out <- waitResult{r, err}
	}()
	testharness.WaitFor(t, 5*time.Second, "Wait to subscribe to "+keyspace.CommandResult, func() bool {
		n, err := rdb.PubSubNumSub(context.Background(), keyspace.CommandResult).Result()
		return err == nil && n[keyspace.CommandResult] > 0
	})
	return out
}

func publish(t *testing.T, rdb *redis.Client, r Result) {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatalf("marshal result: %v", err)
	}
	if err := rdb.Publish(context.Background(), keyspace.CommandResult, b).Err(); err != nil {
		t.Fatalf("publish result: %v", err)
	}
}

func receive(t *testing.T, ch <-chan waitResult) waitResult {
	t.Helper()
	select {
	case wr := <-ch:
		return wr
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return within 10 s")
		return waitResult{}
	}
}

// TestWaitRecordedResult plays comsrv: record the outcome in the hash, then publish.
func TestWaitRecordedResult(t *testing.T) {
	rdb := testharness.StartRedis(t).Client(t)
	id := submitPending(t, rdb)
	ch := startWait(t, rdb, id, 10*time.Second)

	recorded := make(chan error, 1)
	go func() {
		ctx := context.Background()
		done := time.Now().UnixMilli()
		if err := rdb.HSet(ctx, keyspace.Command(id), "status", string(Failed), "error", "slave 1: timeout", "done_ts", done).Err(); err != nil {
			recorded <- err
			return
		}
		b, _ := json.Marshal(Result{ID: id, Channel: 2, Type: "A", Point: 5, Status: Failed, Error: "slave 1: timeout", DoneTS: done})
		recorded <- rdb.Publish(ctx, keyspace.CommandResult, b).Err()
	}()
	if err := <-recorded; err != nil {
		t.Fatalf("record result: %v", err)
	}

	wr := receive(t, ch)
	if wr.err != nil {
		t.Fatalf("Wait: %v", wr.err)
	}
	if wr.r.ID != id || wr.r.Status != Failed || wr.r.Error != "slave 1: timeout" || wr.r.DoneTS == 0 {
		t.Errorf("Wait = %+v, want the failed result of %s", wr.r, id)
	}
}

// TestWaitIgnoresOtherResults publishes (without touching the hash, which stays
// pending) a result of another command and a non-final status before the real
// outcome. Messages on one channel arrive in order, so if Wait stopped early it
// would return one of the first two.
func TestWaitIgnoresOtherResults(t *testing.T) {
	rdb := testharness.StartRedis(t).Client(t)
	id := submitPending(t, rdb)
	ch := startWait(t, rdb, id, 10*time.Second)

	publish(t, rdb, Result{ID: "someone-else", Status: OK})
	publish(t, rdb, Result{ID: id, Status: Executing})
	publish(t, rdb, Result{ID: id, Channel: 2, Type: "A", Point: 5, Status: OK, DoneTS: 1})

	wr := receive(t, ch)
	if wr.err != nil {
		t.Fatalf("Wait: %v", wr.err)
	}
	if want := (Result{ID: id, Channel: 2, Type: "A", Point: 5, Status: OK, DoneTS: 1}); wr.r != want {
		t.Errorf("Wait = %+v, want %+v", wr.r, want)
	}
}

func TestWaitAlreadyFinal(t *testing.T) {
	rdb := testharness.StartRedis(t).Client(t)
	ctx := context.Background()
	id := submitPending(t, rdb)
	if err := rdb.HSet(ctx, keyspace.Command(id), "status", string(Rejected), "error", "point 5 is read-only", "done_ts", 99).Err(); err != nil {
		t.Fatalf("record result: %v", err)
	}
	// Nothing is published: Wait must find the outcome in the hash.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	r, err := Wait(wctx, rdb, id)
	if err != nil {
		t.Fatalf("Wait on a finished command: %v", err)
	}
	if want := (Result{ID: id, Channel: 2, Type: "A", Point: 5, Status: Rejected, Error: "point 5 is read-only", DoneTS: 99}); r != want {
		t.Errorf("Wait = %+v, want %+v", r, want)
	}
}

func TestWaitTimeout(t *testing.T) {
	rdb := testharness.StartRedis(t).Client(t)
	for _, id := range []string{submitPending(t, rdb), "never-submitted"} {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		r, err := Wait(ctx, rdb, id)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Wait(%s) past its deadline = %+v, %v; want context.DeadlineExceeded", id, r, err)
			continue
		}
		if !strings.Contains(err.Error(), id) {
			t.Errorf("Wait(%s) error %q does not name the command", id, err)
		}
	}
}

func TestSubmitOnce(t *testing.T) {
	rdb := testharness.StartRedis(t).Client(t)
	ctx := context.Background()
	c := Command{ID: "client-42", Channel: 3, Type: point.Adjustment, Point: 12, Value: 55.5, Source: "api", User: "alice"}
	entries := func() int64 {
		t.Helper()
		n, err := rdb.XLen(ctx, keyspace.ChannelCommands(3)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	created, err := SubmitOnce(ctx, rdb, c)
	if err != nil || !created {
		t.Fatalf("first SubmitOnce = %v, %v; want created", created, err)
	}
	if h := rdb.HGet(ctx, keyspace.Command(c.ID), "user").Val(); h != "alice" {
		t.Errorf("cmd hash user = %q, want alice", h)
	}
	// The same command again (a retry after a lost answer): nothing new.
	created, err = SubmitOnce(ctx, rdb, c)
	if err != nil || created {
		t.Errorf("retried SubmitOnce = %v, %v; want not created, no error", created, err)
	}
	// Still the same command once its outcome is recorded.
	rdb.HSet(ctx, keyspace.Command(c.ID), "status", string(OK), "done_ts", 1)
	if created, err = SubmitOnce(ctx, rdb, c); err != nil || created {
		t.Errorf("SubmitOnce after the outcome = %v, %v; want not created, no error", created, err)
	}
	if n := entries(); n != 1 {
		t.Errorf("%s has %d entries after three submissions of one id, want 1", keyspace.ChannelCommands(3), n)
	}

	// The id names another command: refused, nothing queued.
	for name, other := range map[string]func(*Command){
		"value":   func(o *Command) { o.Value = 56 },
		"point":   func(o *Command) { o.Point = 13 },
		"type":    func(o *Command) { o.Type = point.Control; o.Value = 1 },
		"channel": func(o *Command) { o.Channel = 4 },
		"user":    func(o *Command) { o.User = "mallory" },
	} {
		o := c
		other(&o)
		if created, err := SubmitOnce(ctx, rdb, o); created || !errors.Is(err, ErrIDInUse) {
			t.Errorf("another %s under the same id: %v, %v; want ErrIDInUse", name, created, err)
		}
	}
	if n := entries(); n != 1 {
		t.Errorf("%s has %d entries after refused clashes, want 1", keyspace.ChannelCommands(3), n)
	}

	// Racing submissions of one id: exactly one is queued.
	race := Command{ID: "client-race", Channel: 3, Type: point.Control, Point: 1, Value: 1, User: "bob"}
	results := make(chan bool, 8)
	for range 8 {
		go func() {
			created, err := SubmitOnce(ctx, rdb, race)
			if err != nil {
				t.Errorf("racing SubmitOnce: %v", err)
			}
			results <- created
		}()
	}
	createdN := 0
	for range 8 {
		if <-results {
			createdN++
		}
	}
	if createdN != 1 || entries() != 2 {
		t.Errorf("8 racing submissions of one id: %d created, stream holds %d entries; want 1 and 2", createdN, entries())
	}

	if _, err := SubmitOnce(ctx, rdb, Command{Channel: 3, Type: point.Control, Point: 1, Value: 1}); err == nil {
		t.Error("SubmitOnce without an id: no error")
	}
}
