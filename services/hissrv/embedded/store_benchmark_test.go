package embedded_test

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/voltageems/voltage/services/hissrv/embedded"
	"github.com/voltageems/voltage/services/hissrv/sample"
)

// benchSteps is how many samples of each point one Write holds.
const benchSteps = 20

// benchBatch is one Write: benchSteps seconds of every point, as hissrv gets it
// from the 1000-entry reads of a busy site.
func benchBatch(pts []sample.Point, step int, buf []sample.Sample) []sample.Sample {
	buf = buf[:0]
	base := int64(1_700_000_000_000)
	for s := range benchSteps {
		ts := base + int64(step*benchSteps+s)*1000
		for i, p := range pts {
			buf = append(buf, sample.Sample{Point: p, TS: ts, Value: float64((step*benchSteps+s+i)%4000) * 0.1})
		}
	}
	return buf
}

func benchPointSet(n int) []sample.Point {
	pts := make([]sample.Point, n)
	for i := range pts {
		pts[i] = sample.Point{ID: uint32(1 + i/100), Family: "T", Field: strconv.Itoa(i % 100)}
	}
	return pts
}

// baselineAppend measures the raw TSDB appender on the same data, with cached
// series references: the ceiling for any writer on this library.
func baselineAppend(b *testing.B, pts []sample.Point, steps int) float64 {
	b.Helper()
	db, err := tsdb.Open(b.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	lsets := make([]labels.Labels, len(pts))
	refs := make([]storage.SeriesRef, len(pts))
	for i, p := range pts {
		lsets[i] = p.Labels(sample.Metric, "bench")
	}
	var buf []sample.Sample
	start := time.Now()
	n := 0
	for step := range steps {
		buf = benchBatch(pts, step, buf)
		app := db.Appender(context.Background())
		for i := range buf {
			k := i % len(pts)
			refs[k], err = app.Append(refs[k], lsets[k], buf[i].TS, buf[i].Value)
			if err != nil {
				b.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			b.Fatal(err)
		}
		n += len(buf)
	}
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkIngest measures Store.Write with the default configuration (WAL
// fsynced before every acknowledgement, 1 min and 1 h tiers computed) against
// the raw TSDB appender on the same data in the same run.
func BenchmarkIngest(b *testing.B) {
	for _, c := range []struct {
		points int
		sync   bool
	}{{1000, true}, {1000, false}, {10_000, true}} {
		name := "points_" + strconv.Itoa(c.points) + "/sync_wal"
		if !c.sync {
			name = "points_" + strconv.Itoa(c.points) + "/no_sync"
		}
		b.Run(name, func(b *testing.B) {
			sync := c.sync
			pts := benchPointSet(c.points)
			baseline := baselineAppend(b, pts, 100_000/len(pts)+10)
			s, err := embedded.Open(embedded.Options{
				Dir: b.TempDir(), Site: "bench", SyncWAL: sync,
				Tiers: []embedded.TierOptions{{Name: "1m", Width: time.Minute}, {Name: "1h", Width: time.Hour}},
			})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var buf []sample.Sample
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				buf = benchBatch(pts, i, buf)
				st, err := s.Write(ctx, buf)
				if err != nil || st.Appended != len(buf) {
					b.Fatalf("%+v %v", st, err)
				}
			}
			b.StopTimer()
			rate := float64(b.N*len(pts)*benchSteps) / b.Elapsed().Seconds()
			b.ReportMetric(rate, "samples/s")
			b.ReportMetric(baseline, "tsdb-samples/s")
			b.ReportMetric(rate/baseline, "ratio-vs-tsdb")
			b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N*len(pts)*benchSteps), "ns/sample")
			reportMemory(b)
		})
	}
}

func reportMemory(b *testing.B) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
	if st, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(st), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				b.ReportMetric(kb/1024, "rss-MB")
			}
		}
	}
}

// realisticDay writes `hours` of a site's data the way comsrv reports it: a poll
// every second, stamped with the poll cycle's time as comsrv does (or with a
// few ms of jitter, as a source stamping arrival times would); 40 % fast telemetry (voltages,
// powers: a 0.1-resolution value that changes at most polls), 30 % slow telemetry
// (temperatures, SOC: a change every 10–60 s), 30 % signals (a change now and
// then); every point is rewritten at the 60 s integrity interval when unchanged.
func realisticDay(b *testing.B, s *embedded.Store, points int, hours int, jitterMS int) int {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	type state struct {
		p    sample.Point
		kind int // 0 fast, 1 slow, 2 signal
		raw  int64
		last int64 // last written time
	}
	st := make([]state, points)
	for i := range st {
		k := 0
		switch {
		case i%10 >= 7:
			k = 2
		case i%10 >= 4:
			k = 1
		}
		st[i] = state{p: sample.Point{ID: uint32(1 + i/100), Family: "T", Field: strconv.Itoa(i % 100)}, kind: k, raw: int64(2000 + rng.IntN(400)), last: math.MinInt64}
		if k == 2 {
			st[i].p.Family = "S"
			st[i].raw = int64(rng.IntN(2))
		}
	}
	base := time.Now().Add(-time.Duration(hours+3) * time.Hour).Truncate(time.Hour).UnixMilli()
	total := 0
	var buf []sample.Sample
	ctx := context.Background()
	for sec := range hours * 3600 {
		poll := base + int64(sec)*1000
		for i := range st {
			x := &st[i]
			changed := false
			switch x.kind {
			case 0:
				if rng.IntN(10) < 8 {
					x.raw += int64(rng.IntN(7) - 3)
					changed = true
				}
			case 1:
				if rng.IntN(30) == 0 {
					x.raw += int64(rng.IntN(3) - 1)
					changed = true
				}
			case 2:
				if rng.IntN(3600) == 0 {
					x.raw = 1 - x.raw
					changed = true
				}
			}
			ts := poll // comsrv stamps a poll's values with the poll cycle's time; jitterMS > 0 models a source that stamps arrival times
			if jitterMS > 0 {
				ts += int64(rng.IntN(jitterMS + 1))
			}
			if !changed && ts-x.last < 60_000 {
				continue
			}
			v := float64(x.raw)
			if x.kind != 2 {
				v = float64(x.raw) * 0.1
				v, _ = strconv.ParseFloat(strconv.FormatFloat(v, 'f', 1, 64), 64) // 229.6, not 229.60000000000002
			}
			x.last = ts
			buf = append(buf, sample.Sample{Point: x.p, TS: ts, Value: v})
		}
		if len(buf) >= 20_000 {
			if _, err := s.Write(ctx, buf); err != nil {
				b.Fatal(err)
			}
			total += len(buf)
			buf = buf[:0]
		}
	}
	if _, err := s.Write(ctx, buf); err != nil {
		b.Fatal(err)
	}
	return total + len(buf)
}

func dirSize(b *testing.B, dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n += info.Size()
		}
		return nil
	})
	return n
}

// BenchmarkBytesPerSample writes two hours of realistic site data (realisticDay),
// compacts the head into a block as the TSDB does every two hours, and reports
// the block's size (chunks + index) per sample. Sub-benchmarks differ in the
// timestamps: regular (a device that stamps its own samples, or a poll stamped
// with its scheduled time) or spread by up to 7 ms (comsrv stamps the arrival of
// each response), which costs the timestamp encoding ~2 bytes a sample.
func BenchmarkBytesPerSample(b *testing.B) {
	for _, jitter := range []int{0, 7} {
		b.Run("jitter_"+strconv.Itoa(jitter)+"ms", func(b *testing.B) { bytesPerSample(b, jitter) })
	}
}

func bytesPerSample(b *testing.B, jitter int) {
	for range b.N {
		dir := b.TempDir()
		s, err := embedded.Open(embedded.Options{Dir: dir, Site: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		n := realisticDay(b, s, 1000, 2, jitter)
		head := s.Raw().Head()
		if err := s.Raw().CompactHead(tsdb.NewRangeHead(head, head.MinTime(), head.MaxTime())); err != nil {
			b.Fatal(err)
		}
		var blockBytes int64
		var chunkBytes int64
		for _, blk := range s.Raw().Blocks() {
			blockBytes += dirSize(b, blk.Dir())
			chunkBytes += dirSize(b, filepath.Join(blk.Dir(), "chunks"))
		}
		b.ReportMetric(float64(blockBytes)/float64(n), "bytes/sample")
		b.ReportMetric(float64(chunkBytes)/float64(n), "chunk-bytes/sample")
		b.ReportMetric(float64(n), "samples")
		_ = s.Close()
	}
}

// BenchmarkSteadyStateMemory holds 10,000 points written once a second for ten
// minutes (raw series plus 2 tiers × 5 aggregations each: 110,000 TSDB series)
// and reports the heap and RSS with the store open. The TSDB moves full head
// chunks to disk once a minute; the benchmark does that at each simulated minute.
func BenchmarkSteadyStateMemory(b *testing.B) {
	for range b.N {
		pts := benchPointSet(10_000)
		s, err := embedded.Open(embedded.Options{Dir: b.TempDir(), Site: "bench", SyncWAL: true,
			Tiers: []embedded.TierOptions{{Name: "1m", Width: time.Minute}, {Name: "1h", Width: time.Hour}}})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		buf := make([]sample.Sample, 0, len(pts))
		base := time.Now().Add(-time.Hour).UnixMilli()
		for i := range 600 {
			buf = buf[:0]
			for k, p := range pts {
				buf = append(buf, sample.Sample{Point: p, TS: base + int64(i)*1000, Value: float64((i+k)%4000) * 0.1})
			}
			if _, err := s.Write(ctx, buf); err != nil {
				b.Fatal(err)
			}
			if i%60 == 59 {
				if _, err := s.Tick(ctx, time.UnixMilli(base+int64(i)*1000), false); err != nil {
					b.Fatal(err)
				}
				s.Raw().ForceHeadMMap()
				s.TierDB("1m").ForceHeadMMap()
			}
		}
		buf = nil
		reportMemory(b)
		_ = s.Close()
	}
}
