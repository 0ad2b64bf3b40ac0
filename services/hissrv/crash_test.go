package hissrv_test

import (
	"context"
	"math"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/voltageems/voltage/services/hissrv"
	"github.com/voltageems/voltage/services/hissrv/embedded"
	"github.com/voltageems/voltage/services/hissrv/sample"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/testharness"
)

var listening = regexp.MustCompile(`hissrv listening.*addr=(\S+)`)

func (s *site) startBinary(bin string) *testharness.LoggedProcess {
	s.t.Helper()
	cmd := exec.Command(bin, "--config", s.dir, "--data", s.data, "--log-level", "info")
	cmd.Env = append(cmd.Environ(), "VOLTAGE_HTTP_ADDR=127.0.0.1:0")
	p, _ := testharness.StartLogged(s.t, cmd, listening, 60*time.Second)
	return p
}

// entriesRead is how many stream entries the group has read so far.
func (s *site) entriesRead(group string) int64 {
	groups, err := s.rdb.XInfoGroups(context.Background(), keyspace.Changes).Result()
	if err != nil {
		return 0
	}
	for _, g := range groups {
		if g.Name == group {
			return g.EntriesRead
		}
	}
	return 0
}

// TestKill9DuringIngestLosesAndRepeatsNothing kills the hissrv binary with SIGKILL
// three times while changes keep arriving, restarts it, and then counts every
// sample in the store: each written (point, time) is there exactly once with its
// value, and every 1-minute bucket counts exactly the raw samples of its minute.
func TestKill9DuringIngestLosesAndRepeatsNothing(t *testing.T) {
	s := newSite(t, "", 0)
	bin := testharness.BuildBinary(t, "./cmd/hissrv")
	proc := s.startBinary(bin)

	ctx := context.Background()
	start := time.Now().Add(-3 * time.Hour).Truncate(time.Hour).UnixMilli()
	p := newProducer(s.rdb, 0, start)
	const steps, nT = 3000, 20
	var wg sync.WaitGroup
	var prodErr error
	progress := make(chan int, steps)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range steps {
			if err := p.writeStep(ctx, i, nT); err != nil {
				prodErr = err
				return
			}
			progress <- i
		}
	}()
	group := hissrv.GroupPrefix + hissrv.EmbeddedName
	var pendingAtKill int64
	for kill := range 3 {
		read := s.entriesRead(group)
		// Kill while hissrv is in the middle of reading what keeps arriving.
		testharness.WaitFor(t, 60*time.Second, "hissrv reading more entries", func() bool {
			return s.entriesRead(group) > read+300
		})
		if err := proc.Stop(t, syscall.SIGKILL, 10*time.Second); err == nil {
			t.Fatalf("kill %d: hissrv exited cleanly before SIGKILL", kill)
		}
		if pe, err := s.rdb.XPending(ctx, keyspace.Changes, group).Result(); err == nil {
			pendingAtKill += pe.Count
			t.Logf("kill %d: %d entries read and not acknowledged", kill, pe.Count)
		}
		proc = s.startBinary(bin)
	}
	wg.Wait()
	if prodErr != nil {
		t.Fatal(prodErr)
	}
	if pendingAtKill == 0 {
		t.Error("no kill hit unacknowledged entries: the test did not exercise a re-delivery")
	}
	s.caughtUp(hissrv.EmbeddedName, 120*time.Second)
	if err := proc.Stop(t, syscall.SIGTERM, 20*time.Second); err != nil {
		t.Fatalf("hissrv did not stop cleanly: %v\n%s", err, proc.Logs())
	}

	store, err := embedded.Open(embedded.Options{
		Dir: s.data + "/embedded", Site: "test-site",
		Tiers: []embedded.TierOptions{{Name: "1m", Width: time.Minute}, {Name: "1h", Width: time.Hour}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.Tick(ctx, time.Now(), true); err != nil { // close the last open buckets
		t.Fatal(err)
	}
	raw := stored(t, store.RawQueryable(), sample.Metric)
	total := 0
	for name, want := range p.got {
		got := raw[name]
		seen := map[int64]bool{}
		for _, fp := range got {
			if seen[fp.t] {
				t.Errorf("%s: sample at %d stored twice", name, fp.t)
			}
			seen[fp.t] = true
			if w, ok := want[fp.t]; !ok || w != fp.v {
				t.Errorf("%s at %d: stored %g, written %g (written: %v)", name, fp.t, fp.v, w, ok)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d samples stored, %d written", name, len(got), len(want))
		}
		total += len(got)
	}
	if len(raw) != len(p.got) {
		t.Errorf("%d series stored, %d points written", len(raw), len(p.got))
	}
	t.Logf("%d samples of %d points stored exactly once across 3 kills", total, len(raw))

	counts := stored(t, store.TierDB("1m"), embedded.TierMetric("count", "1m"))
	for name, pts := range raw {
		perMinute := map[int64]float64{}
		for _, fp := range pts {
			perMinute[fp.t-fp.t%60_000]++
		}
		buckets := counts[name]
		if len(buckets) != len(perMinute) {
			t.Errorf("%s: %d minute buckets, %d minutes of raw data", name, len(buckets), len(perMinute))
		}
		for _, b := range buckets {
			if perMinute[b.t] != b.v {
				t.Errorf("%s: bucket %d counts %g samples, raw has %g", name, b.t, b.v, perMinute[b.t])
			}
		}
	}
}

type fpoint struct {
	t int64
	v float64
}

// stored reads every sample of metric in db, by point name.
func stored(t *testing.T, db storage.Queryable, metric string) map[string][]fpoint {
	t.Helper()
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	out := map[string][]fpoint{}
	set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, metric))
	for set.Next() {
		p, ok := sample.FromLabels(set.At().Labels())
		if !ok {
			t.Fatalf("series without point labels: %s", set.At().Labels())
		}
		it := set.At().Iterator(nil)
		for it.Next() == chunkenc.ValFloat {
			ts, v := it.At()
			out[p.String()] = append(out[p.String()], fpoint{ts, v})
		}
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
