package command

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/testharness"
)

func TestActionFieldsRoundTrip(t *testing.T) {
	a := Action{ID: "x1", Instance: 7, Action: "power_limit", Value: 12.5, Source: "api", User: "bob", TS: 1000, Expires: 5000}
	got, err := ParseAction("1-1", a.Fields())
	if err != nil || got != a {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, a)
	}
	if got.Deadline() != 5000 || (Action{TS: 1000}).Deadline() != 1000+DefaultMaxAge.Milliseconds() {
		t.Fatal("deadline")
	}
}

func TestParseActionErrors(t *testing.T) {
	good := Action{ID: "x", Instance: 1, Action: "a", Value: 1}.Fields()
	cases := map[string]struct {
		field, value, want string
	}{
		"instance": {"instance", "pv1", "field instance"},
		"action":   {"action", "", "field action: missing"},
		"value":    {"value", "NaN", "field value"},
		"ts":       {"ts", "yesterday", "field ts"},
		"expires":  {"expires", "1.5", "field expires"},
	}
	for name, c := range cases {
		f := map[string]any{}
		for k, v := range good {
			f[k] = v
		}
		f[c.field] = c.value
		a, err := ParseAction("9-9", f)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", name, err, c.want)
		}
		if a.ID != "x" {
			t.Errorf("%s: the id is lost: %+v", name, a)
		}
	}
	a, _ := ParseAction("9-9", map[string]any{})
	if a.ID != "9-9" {
		t.Errorf("id from the stream entry: %q", a.ID)
	}
}

func TestSubmitActionAndOutcome(t *testing.T) {
	rdb := testharness.StartRedis(t).Client(t)
	ctx := context.Background()
	if _, err := SubmitAction(ctx, rdb, Action{Instance: 1, Action: "", Value: 1}); err == nil {
		t.Fatal("an action without a name was submitted")
	}
	if _, err := SubmitAction(ctx, rdb, Action{Instance: 1, Action: "a", Value: math.Inf(1)}); err == nil {
		t.Fatal("an infinite value was submitted")
	}
	id, err := SubmitAction(ctx, rdb, Action{Instance: 4, Action: "start", Value: 1, Source: "test", User: "eve"})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := rdb.XRange(ctx, keyspace.InstanceActionStream, "-", "+").Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("stream: %v %v", msgs, err)
	}
	a, err := ParseAction(msgs[0].ID, msgs[0].Values)
	if err != nil || a.ID != id || a.Instance != 4 || a.TS == 0 {
		t.Fatalf("entry: %+v %v", a, err)
	}
	if r, err := Get(ctx, rdb, id); err != nil || r.Status != Pending {
		t.Fatalf("after submit: %+v %v", r, err)
	}

	done := make(chan Result, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		r, _ := Wait(wctx, rdb, id)
		done <- r
	}()
	pipe := rdb.TxPipeline()
	QueueActionOutcome(ctx, pipe, a, Rejected, "no such action")
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.Status != Rejected || r.Error != "no such action" {
		t.Fatalf("waited result: %+v", r)
	}
	audit, err := rdb.XRange(ctx, keyspace.Audit, "-", "+").Result()
	if err != nil || len(audit) != 1 || audit[0].Values["result"] != "rejected" || audit[0].Values["user"] != "eve" {
		t.Fatalf("audit: %+v %v", audit, err)
	}
	b, _ := json.Marshal(audit[0].Values)
	if !strings.Contains(string(b), `"instance":"4"`) {
		t.Fatalf("audit entry without the instance: %s", b)
	}
}
