package hissrv_test

import (
	"context"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/voltageems/voltage/services/hissrv/sample"
	"github.com/voltageems/voltage/shared/changefeed"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
)

const pointHeader = "point_id,signal_name,scale,offset,unit,reverse,data_type,description\n"

// TestEveryChangeOfARealComsrvIsInHistory runs the comsrv binary with a virtual
// channel (a sine, a ramp, a square wave at 50 ms polls) next to hissrv, then
// reads back the whole voltage:changes stream comsrv wrote and finds each of its
// samples in history with the same time and value — and no other sample.
func TestEveryChangeOfARealComsrvIsInHistory(t *testing.T) {
	s := newSite(t, "", 0)
	writeFile(t, s.dir, "comsrv/channels.yaml", `channels:
  - id: 7
    name: virt
    protocol: virtual
    parameters:
      poll_interval_ms: 50
      generators:
        - {type: T, point: 1, kind: sine, value: 230, amplitude: 5, period_ms: 3000}
        - {type: T, point: 2, kind: ramp, value: 0, amplitude: 100, period_ms: 2000}
        - {type: S, point: 1, kind: square, value: 0, amplitude: 1, period_ms: 400}
`)
	writeFile(t, s.dir, "comsrv/7/telemetry.csv", pointHeader+"1,voltage,1,0,V,0,float,\n2,power,1,0,kW,0,float,\n")
	writeFile(t, s.dir, "comsrv/7/signal.csv", pointHeader+"1,breaker,1,0,,0,bool,\n")
	h := s.run()

	bin := testharness.BuildBinary(t, "../comsrv/cmd/comsrv")
	cmd := exec.Command(bin, "--config", s.dir, "--log-level", "info")
	cmd.Env = append(cmd.Environ(), "VOLTAGE_HTTP_ADDR=127.0.0.1:0")
	comsrv, _ := testharness.StartLogged(t, cmd, regexp.MustCompile(`comsrv running`), 60*time.Second)
	ctx := context.Background()
	testharness.WaitFor(t, 60*time.Second, "comsrv to write 150 change batches", func() bool {
		n, err := s.rdb.XLen(ctx, keyspace.Changes).Result()
		return err == nil && n >= 150
	})
	if err := comsrv.Stop(t, syscall.SIGTERM, 20*time.Second); err != nil {
		t.Logf("comsrv exit: %v", err)
	}
	s.caughtUp("embedded", 60*time.Second)

	msgs, err := s.rdb.XRange(ctx, keyspace.Changes, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := written{}
	var lo, hi int64 = 1 << 62, 0
	for _, m := range msgs {
		key, _ := m.Values["key"].(string)
		raw, _ := m.Values["m"].(string)
		msg, err := statestore.DecodeMessage([]byte(raw))
		if err != nil {
			t.Fatalf("entry %s: %v", m.ID, err)
		}
		smps, err := sample.FromEntry(changefeed.Entry{ID: m.ID, Key: key, Message: msg}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range smps {
			want.add(x.Point.String(), x.TS, x.Value)
			lo, hi = min(lo, x.TS), max(hi, x.TS)
		}
	}
	found := 0
	for name, w := range want {
		var a rangeAnswer
		code := getJSON(t, query(h.url, "/history/range", "point", name,
			"start", strconv.FormatInt(lo/1000-1, 10), "end", strconv.FormatInt(hi/1000+1, 10)), &a)
		if code != http.StatusOK {
			t.Fatalf("%s: status %d", name, code)
		}
		got := written{}
		for _, v := range a.Points[0].Values {
			got.add(name, int64(v[0]), v[1])
		}
		if err := sameHistory(written{name: w}, got); err != nil {
			t.Error(err)
		}
		found += len(got[name])
	}
	if len(want) != 3 || found != want.total() {
		t.Fatalf("%d points, %d of %d samples found", len(want), found, want.total())
	}
	t.Logf("%d changes of %d points written by comsrv, all in history", found, len(want))
}
