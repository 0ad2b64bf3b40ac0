package hissrv_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/testharness"
)

// TestRedisOutageIsSurvived kills Redis under a running hissrv: /readyz reports it,
// and once Redis is back (empty: the stream and the consumer groups are gone)
// hissrv re-creates its group and stores what is written from then on.
func TestRedisOutageIsSurvived(t *testing.T) {
	s := newSite(t, "", 0)
	h := s.run()
	ctx := context.Background()
	start := time.Now().Add(-time.Hour).Truncate(time.Minute).UnixMilli()
	p := newProducer(s.rdb, 0, start)
	for i := range 50 {
		if err := p.writeStep(ctx, i, 3); err != nil {
			t.Fatal(err)
		}
	}
	s.caughtUp("embedded", 60*time.Second)

	s.redis.Kill(t)
	testharness.WaitFor(t, 30*time.Second, "/readyz to report Redis", func() bool {
		resp, err := http.Get(h.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	s.redis.Restart(t)
	testharness.Eventually(t, 60*time.Second, func() error {
		return p.writeStep(ctx, 50, 3) // the client reconnects
	})
	for i := 51; i < 100; i++ {
		if err := p.writeStep(ctx, i, 3); err != nil {
			t.Fatal(err)
		}
	}
	s.caughtUp("embedded", 60*time.Second)
	from, to := strconv.FormatInt(start/1000-1, 10), strconv.FormatInt(start/1000+101, 10)
	for name, want := range p.got {
		var a rangeAnswer
		getJSON(t, query(h.url, "/history/range", "point", name, "start", from, "end", to), &a)
		got := written{}
		for _, v := range a.Points[0].Values {
			got.add(name, int64(v[0]), v[1])
		}
		if err := sameHistory(written{name: want}, got); err != nil {
			t.Error(err)
		}
	}
}
