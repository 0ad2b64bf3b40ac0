package notify_test

import (
	"context"
	"testing"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/notify"
	"github.com/voltageems/voltage/shared/testharness"
)

func TestSendAndParse(t *testing.T) {
	rdb := testharness.StartRedis(t).Client(t)
	ctx := context.Background()
	want := notify.Request{Severity: notify.Major, Title: "Peak shaving engaged", Message: "grid import 512 kW",
		Source: "rule:peak_shaving", Instance: "ess1", TS: 1_700_000_000_000}
	if _, err := notify.Send(ctx, rdb, want); err != nil {
		t.Fatal(err)
	}
	entries, err := rdb.XRange(ctx, keyspace.NotificationRequests, "-", "+").Result()
	if err != nil || len(entries) != 1 {
		t.Fatalf("%d entries, %v", len(entries), err)
	}
	got, err := notify.Parse(entries[0].Values)
	if err != nil || got != want {
		t.Fatalf("parsed %+v, %v; want %+v", got, err, want)
	}
}

func TestInvalidRequestsAreRefused(t *testing.T) {
	rdb := testharness.StartRedis(t).Client(t)
	for _, r := range []notify.Request{
		{Severity: "urgent", Title: "x", Source: "s"},
		{Severity: notify.Info, Source: "s"},
		{Severity: notify.Info, Title: "x"},
	} {
		if _, err := notify.Send(context.Background(), rdb, r); err == nil {
			t.Errorf("%+v was sent", r)
		}
	}
	if n := rdb.XLen(context.Background(), keyspace.NotificationRequests).Val(); n != 0 {
		t.Fatalf("%d invalid requests reached the stream", n)
	}
	if _, err := notify.Parse(map[string]any{"severity": "info", "title": "t", "source": "s", "ts": "x"}); err == nil {
		t.Error("a bad ts parsed")
	}
}
