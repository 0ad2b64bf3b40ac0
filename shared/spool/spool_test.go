package spool_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/spool"
)

func open(t *testing.T, opts spool.Options) *spool.Spool {
	t.Helper()
	s, err := spool.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func appendN(t *testing.T, s *spool.Spool, from, n int) {
	t.Helper()
	for i := range n {
		if err := s.Append([]byte(fmt.Sprintf("record-%05d", from+i))); err != nil {
			t.Fatal(err)
		}
	}
}

// drain peeks and commits until the spool is empty, returning the record texts.
func drain(t *testing.T, s *spool.Spool, page int) []string {
	t.Helper()
	var got []string
	for {
		recs, err := s.Peek(page)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return got
		}
		for i, r := range recs {
			if i > 0 && r.Seq != recs[i-1].Seq+1 {
				t.Fatalf("sequence gap: %d after %d", r.Seq, recs[i-1].Seq)
			}
			got = append(got, string(r.Data))
		}
		if err := s.Commit(recs[len(recs)-1].Seq); err != nil {
			t.Fatal(err)
		}
	}
}

func want(from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("record-%05d", from+i)
	}
	return out
}

func same(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("got %d records %.300v\nwant %d records %.300v", len(got), got, len(want), want)
	}
}

func TestFIFOAcrossSegmentsAndRestart(t *testing.T) {
	dir := t.TempDir()
	opts := spool.Options{Dir: dir, SegmentBytes: 200, MaxBytes: 1 << 20}
	s := open(t, opts)
	appendN(t, s, 0, 50) // many segments of ~5 records

	// Peek does not remove; a partial commit removes only what was delivered.
	recs, err := s.Peek(12)
	if err != nil || len(recs) != 12 {
		t.Fatalf("peek: %d records, %v", len(recs), err)
	}
	again, _ := s.Peek(12)
	if again[0].Seq != recs[0].Seq || len(again) != 12 {
		t.Fatal("a second peek without commit must return the same records")
	}
	if err := s.Commit(recs[9].Seq); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Records != 40 {
		t.Fatalf("stats after committing 10 of 50: %+v", st)
	}
	s.Close()

	// A restart re-delivers exactly the uncommitted records, and sequence numbers go on.
	s = open(t, opts)
	appendN(t, s, 50, 5)
	same(t, drain(t, s, 7), want(10, 45))
	recs, _ = s.Peek(1)
	if len(recs) != 0 {
		t.Fatalf("drained spool still returns %v", recs)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("committed segments are not deleted: %v", segs)
	}
}

func TestTornTailIsCutOff(t *testing.T) {
	dir := t.TempDir()
	s := open(t, spool.Options{Dir: dir})
	appendN(t, s, 0, 3)
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	f, err := os.OpenFile(segs[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{20, 0, 0, 0, 1, 2, 3}) // half a header: a crash during Append
	f.Close()

	s = open(t, spool.Options{Dir: dir})
	appendN(t, s, 3, 1)
	same(t, drain(t, s, 100), want(0, 4))
}

func TestCorruptRecordEndsTheSegment(t *testing.T) {
	dir := t.TempDir()
	s := open(t, spool.Options{Dir: dir})
	appendN(t, s, 0, 3)
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	b, _ := os.ReadFile(segs[0])
	b[len(b)-2] ^= 0xff // flip a byte in the last record's data
	os.WriteFile(segs[0], b, 0o640)

	s = open(t, spool.Options{Dir: dir})
	same(t, drain(t, s, 100), want(0, 2))
}

func TestCapDropsOldestAndCounts(t *testing.T) {
	s := open(t, spool.Options{Dir: t.TempDir(), SegmentBytes: 100, MaxBytes: 400})
	appendN(t, s, 0, 200)
	st := s.Stats()
	if st.Bytes > 400 {
		t.Fatalf("spool holds %d bytes over its 400 byte cap", st.Bytes)
	}
	if st.Dropped == 0 || int64(st.Dropped)+st.Records != 200 {
		t.Fatalf("dropped %d + kept %d != 200 appended", st.Dropped, st.Records)
	}
	got := drain(t, s, 1000)
	same(t, got, want(200-len(got), len(got))) // what is left is the newest, in order
}

func TestMaxAgeDropsOldRecords(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	s := open(t, spool.Options{Dir: t.TempDir(), MaxAge: time.Hour, SegmentBytes: 100, Now: clock})
	appendN(t, s, 0, 10)
	now = now.Add(2 * time.Hour)
	appendN(t, s, 10, 3)
	same(t, drain(t, s, 100), want(10, 3))
	if st := s.Stats(); st.Dropped != 10 {
		t.Fatalf("dropped %d, want the 10 expired records", st.Dropped)
	}
}

func TestCommitBeyondEndIsAnError(t *testing.T) {
	s := open(t, spool.Options{Dir: t.TempDir()})
	appendN(t, s, 0, 2)
	if err := s.Commit(3); err == nil {
		t.Fatal("committing a record that does not exist succeeded")
	}
}

func TestConcurrentAppendAndDrain(t *testing.T) {
	s := open(t, spool.Options{Dir: t.TempDir(), SegmentBytes: 4096})
	const n = 2000
	var wg sync.WaitGroup
	wg.Go(func() { appendN(t, s, 0, n) })
	var got []string
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		got = append(got, drain(t, s, 64)...)
	}
	wg.Wait()
	same(t, got, want(0, n))
}

// FuzzOpen feeds arbitrary bytes as a segment file: Open and a full drain must
// never panic, and whatever is delivered must be in sequence.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	s, err := spool.Open(spool.Options{Dir: dir})
	if err != nil {
		f.Fatal(err)
	}
	s.Append([]byte("a"), []byte("bc"), nil)
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	good, _ := os.ReadFile(segs[0])
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, seg []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d.seg", 1)), seg, 0o640); err != nil {
			t.Fatal(err)
		}
		s, err := spool.Open(spool.Options{Dir: dir})
		if err != nil {
			return // refusing garbage is fine; panicking is not
		}
		defer s.Close()
		if err := s.Append([]byte("after")); err != nil {
			t.Fatal(err)
		}
		var last uint64
		for range 1000 {
			recs, err := s.Peek(16)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) == 0 {
				break
			}
			for _, r := range recs {
				if last != 0 && r.Seq != last+1 {
					t.Fatalf("sequence %d after %d", r.Seq, last)
				}
				last = r.Seq
			}
			if err := s.Commit(last); err != nil {
				t.Fatal(err)
			}
		}
	})
}
