// Package spool is a bounded, durable first-in-first-out queue of records on
// disk: the store-and-forward buffer of DESIGN §11 for outages longer than the
// Redis change stream can hold (hissrv while a backend is down, netsrv while a
// broker is unreachable).
//
// Records are appended to segment files and fsync'd before Append returns. A
// receiver Peeks the oldest records, delivers them, and Commits through the last
// one it delivered; the commit point is written durably, so a restart neither
// loses nor re-delivers committed records. The spool never grows past MaxBytes:
// when it would, the oldest segment is dropped and its records are counted as
// dropped, and records older than MaxAge are dropped the same way — a long
// outage loses the oldest data, visibly, never the newest.
//
// On disk, a spool directory holds segments named by the sequence number of
// their first record ({seq}.seg) and a file "commit" with the last committed
// sequence number. A record is a 24-byte header — length and CRC-32C of the rest
// (uint32 each), sequence number (uint64), append time (Unix ns, int64) — and the
// data. A torn record at the end of the last segment (a crash during Append) is
// cut off at Open.
//
// A Spool is safe for concurrent use.
package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultMaxBytes     = 256 << 20
	DefaultSegmentBytes = 8 << 20
)

const (
	headerSize = 24
	segSuffix  = ".seg"
	commitName = "commit"
	// maxRecord bounds one record so a corrupt length cannot make Open allocate gigabytes.
	maxRecord = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Options configure a spool.
type Options struct {
	Dir          string        // created if missing; one spool per directory
	MaxBytes     int64         // cap on disk; default DefaultMaxBytes
	SegmentBytes int64         // segment size; default DefaultSegmentBytes, at most MaxBytes/4
	MaxAge       time.Duration // records older than this are dropped; 0 = kept until MaxBytes
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Record is one spooled record.
type Record struct {
	Seq  uint64    // increases by one per record and survives restarts
	Time time.Time // when it was appended
	Data []byte
}

// Stats describe the spool for metrics.
type Stats struct {
	Records      int64     // records not yet committed
	Bytes        int64     // bytes on disk
	Dropped      uint64    // records dropped (cap or age) since Open
	DroppedBytes uint64    // their bytes
	Oldest       time.Time // append time of the oldest record not yet committed; zero when empty
}

// segment is one file of the spool.
type segment struct {
	first, last uint64 // sequence numbers of the first and last record; last < first when empty
	size        int64
	newest      time.Time // append time of the last record
}

func (s *segment) path(dir string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", s.first, segSuffix))
}

// Spool is an open spool directory.
type Spool struct {
	mu      sync.Mutex
	opts    Options
	segs    []*segment // oldest first; the last one is appended to
	active  *os.File   // the last segment, open for appending
	next    uint64     // sequence number of the next record
	commit  uint64     // last committed sequence number
	cursor  position   // where the first record after commit starts
	stats   Stats
	oldest  time.Time // append time of the record at cursor (zero = unknown or empty)
	closed  bool
	scratch []byte
}

// position is a record's place: segment index and byte offset.
type position struct {
	seg int
	off int64
}

// Open opens or creates the spool in opts.Dir and recovers from a crash.
func Open(opts Options) (*Spool, error) {
	if opts.Dir == "" {
		return nil, errors.New("spool: no directory given")
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	opts.SegmentBytes = min(opts.SegmentBytes, max(opts.MaxBytes/4, headerSize+1))
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("spool %s: %w", opts.Dir, err)
	}
	s := &Spool{opts: opts}
	if err := s.recover(); err != nil {
		return nil, fmt.Errorf("spool %s: %w", opts.Dir, err)
	}
	return s, nil
}

// recover reads the commit point and scans every segment, cutting off a torn tail.
func (s *Spool) recover() error {
	if b, err := os.ReadFile(filepath.Join(s.opts.Dir, commitName)); err == nil {
		s.commit, err = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return fmt.Errorf("commit file: %w", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	entries, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), segSuffix)
		if !ok {
			continue
		}
		first, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue // not ours
		}
		s.segs = append(s.segs, &segment{first: first, last: first - 1})
	}
	slices.SortFunc(s.segs, func(a, b *segment) int { return cmpUint(a.first, b.first) })
	s.next = s.commit + 1
	for i, seg := range s.segs {
		if err := s.scan(seg, i == len(s.segs)-1); err != nil {
			return err
		}
		if seg.last >= seg.first {
			s.next = max(s.next, seg.last+1)
		}
	}
	// Segments wholly committed before the crash are deleted now.
	s.removeCommitted()
	if len(s.segs) == 0 {
		return s.rotate()
	}
	f, err := os.OpenFile(s.segs[len(s.segs)-1].path(s.opts.Dir), os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	s.active = f
	s.seek()
	return nil
}

// scan validates a segment's records and learns its range; in the last segment a
// bad or torn record and everything after it is cut off, in an older one it ends
// the segment (its remaining bytes cannot be trusted).
func (s *Spool) scan(seg *segment, last bool) error {
	path := seg.path(s.opts.Dir)
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var off int64
	for {
		rec, n, err := readRecord(f, off, &s.scratch)
		if err != nil {
			break // io.EOF at a clean end, anything else is torn or corrupt
		}
		if seg.last >= seg.first && rec.Seq != seg.last+1 || seg.last < seg.first && rec.Seq != seg.first {
			break
		}
		seg.last = rec.Seq
		seg.newest = rec.Time
		off += n
	}
	seg.size = off
	if st, err := f.Stat(); err == nil && st.Size() > off && last {
		if err := os.Truncate(path, off); err != nil {
			return fmt.Errorf("cut torn tail of %s: %w", path, err)
		}
	}
	return nil
}

// readRecord reads the record at off. buf is reused for the header.
func readRecord(r io.ReaderAt, off int64, buf *[]byte) (Record, int64, error) {
	if cap(*buf) < headerSize {
		*buf = make([]byte, headerSize)
	}
	h := (*buf)[:headerSize]
	if _, err := r.ReadAt(h, off); err != nil {
		return Record{}, 0, err
	}
	n := binary.LittleEndian.Uint32(h[0:])
	sum := binary.LittleEndian.Uint32(h[4:])
	if n > maxRecord {
		return Record{}, 0, errors.New("record length out of range")
	}
	body := make([]byte, 16+int(n))
	copy(body, h[8:])
	if _, err := r.ReadAt(body[16:], off+headerSize); err != nil {
		return Record{}, 0, io.ErrUnexpectedEOF
	}
	if crc32.Checksum(body, castagnoli) != sum {
		return Record{}, 0, errors.New("record checksum mismatch")
	}
	return Record{
		Seq:  binary.LittleEndian.Uint64(body[0:]),
		Time: time.Unix(0, int64(binary.LittleEndian.Uint64(body[8:]))),
		Data: body[16:],
	}, headerSize + int64(n), nil
}

func encodeRecord(dst []byte, seq uint64, t time.Time, data []byte) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(data)))
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(t.UnixNano()))
	dst = append(dst, data...)
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+8:], castagnoli))
	return dst
}

// Append adds records; when it returns nil they are on disk.
func (s *Spool) Append(data ...[]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("spool is closed")
	}
	now := s.opts.Now()
	var buf []byte
	for _, d := range data {
		if len(d) > maxRecord {
			return fmt.Errorf("spool: record of %d bytes exceeds the %d byte limit", len(d), maxRecord)
		}
		seg := s.segs[len(s.segs)-1]
		if seg.size > 0 && seg.size+int64(len(buf))+headerSize+int64(len(d)) > s.opts.SegmentBytes {
			if err := s.flush(buf); err != nil {
				return err
			}
			buf = buf[:0]
			if err := s.rotate(); err != nil {
				return err
			}
			seg = s.segs[len(s.segs)-1]
		}
		buf = encodeRecord(buf, s.next, now, d)
		seg.last = s.next
		seg.newest = now
		s.next++
	}
	if err := s.flush(buf); err != nil {
		return err
	}
	s.enforceCap()
	return nil
}

// flush writes buf to the active segment and syncs it.
func (s *Spool) flush(buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	if _, err := s.active.Write(buf); err != nil {
		return fmt.Errorf("spool append: %w", err)
	}
	if err := s.active.Sync(); err != nil {
		return fmt.Errorf("spool sync: %w", err)
	}
	s.segs[len(s.segs)-1].size += int64(len(buf))
	return nil
}

// rotate closes the active segment and starts a new one at s.next.
func (s *Spool) rotate() error {
	if s.active != nil {
		if err := s.active.Close(); err != nil {
			return err
		}
		s.active = nil
	}
	seg := &segment{first: s.next, last: s.next - 1}
	f, err := os.OpenFile(seg.path(s.opts.Dir), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("spool new segment: %w", err)
	}
	s.active = f
	s.segs = append(s.segs, seg)
	return syncDir(s.opts.Dir)
}

// enforceCap drops the oldest segments while the spool is over MaxBytes.
func (s *Spool) enforceCap() {
	for len(s.segs) > 1 && s.bytes() > s.opts.MaxBytes {
		s.dropOldest()
	}
}

// dropOldest deletes the oldest (inactive) segment, counting its uncommitted records.
func (s *Spool) dropOldest() {
	seg := s.segs[0]
	if seg.last > s.commit && seg.last >= seg.first {
		from := max(seg.first, s.commit+1)
		s.stats.Dropped += seg.last - from + 1
		s.stats.DroppedBytes += uint64(seg.size) // whole segment, an upper bound for the uncommitted part
		s.setCommit(seg.last)
	}
	_ = os.Remove(seg.path(s.opts.Dir))
	s.segs = s.segs[1:]
	s.seek()
}

func (s *Spool) bytes() int64 {
	var n int64
	for _, seg := range s.segs {
		n += seg.size
	}
	return n
}

// removeCommitted deletes inactive segments whose records are all committed.
func (s *Spool) removeCommitted() {
	for len(s.segs) > 1 && s.segs[0].last <= s.commit {
		_ = os.Remove(s.segs[0].path(s.opts.Dir))
		s.segs = s.segs[1:]
	}
}

// seek puts the cursor on the first record after the commit point.
func (s *Spool) seek() {
	s.cursor = position{}
	s.oldest = time.Time{}
	for i, seg := range s.segs {
		if seg.last > s.commit && seg.last >= seg.first {
			s.cursor = position{seg: i}
			if seg.first <= s.commit {
				s.cursor.off = -1 // inside the segment: found by the next read
			}
			return
		}
	}
	// Everything is committed: the next record will be appended to the active segment.
	last := len(s.segs) - 1
	s.cursor = position{seg: last, off: s.segs[last].size}
}

// Peek returns up to max of the oldest uncommitted records without removing
// them. Records older than MaxAge are dropped (and counted) instead.
func (s *Spool) Peek(max int) ([]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("spool is closed")
	}
	if s.opts.MaxAge > 0 {
		s.expire()
	}
	var out []Record
	err := s.walk(func(r Record) bool {
		if len(out) == 0 && s.opts.MaxAge > 0 && s.opts.Now().Sub(r.Time) > s.opts.MaxAge {
			s.stats.Dropped++
			s.stats.DroppedBytes += uint64(headerSize + len(r.Data))
			s.setCommit(r.Seq)
			return true
		}
		out = append(out, r)
		return len(out) < max
	})
	if len(out) > 0 {
		s.oldest = out[0].Time
	} else {
		s.oldest = time.Time{}
	}
	return out, err
}

// expire drops whole inactive segments whose newest record is past MaxAge.
func (s *Spool) expire() {
	for len(s.segs) > 1 && s.opts.Now().Sub(s.segs[0].newest) > s.opts.MaxAge {
		s.dropOldest()
	}
}

// walk visits the uncommitted records in order from the cursor until visit
// returns false. While it has not visited anything yet it moves the cursor over
// records at or below the commit point (visit may move the commit point).
func (s *Spool) walk(visit func(Record) bool) error {
	pos := s.cursor
	visited := false
	for pos.seg < len(s.segs) {
		seg := s.segs[pos.seg]
		f, err := os.Open(seg.path(s.opts.Dir))
		if err != nil {
			return fmt.Errorf("spool read: %w", err)
		}
		off := max(pos.off, 0)
		for off < seg.size {
			rec, n, err := readRecord(f, off, &s.scratch)
			if err != nil {
				f.Close()
				return fmt.Errorf("spool read %s at %d: %w", seg.path(s.opts.Dir), off, err)
			}
			if rec.Seq > s.commit {
				if !visit(rec) {
					f.Close()
					return nil
				}
			}
			off += n
			if !visited && rec.Seq <= s.commit {
				s.cursor = position{pos.seg, off}
			} else {
				visited = true
			}
		}
		f.Close()
		if pos.seg == len(s.segs)-1 {
			return nil // the active segment: more may come
		}
		pos = position{seg: pos.seg + 1}
		if !visited {
			s.cursor = pos
		}
	}
	return nil
}

// Commit removes every record with Seq <= seq; a restart does not re-deliver them.
func (s *Spool) Commit(seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("spool is closed")
	}
	if seq <= s.commit {
		return nil
	}
	if seq >= s.next {
		return fmt.Errorf("spool commit %d: only records up to %d exist", seq, s.next-1)
	}
	s.setCommit(seq)
	if err := s.writeCommit(); err != nil {
		return err
	}
	s.removeCommitted()
	s.seek()
	return nil
}

// setCommit moves the commit point in memory; writeCommit makes it durable.
func (s *Spool) setCommit(seq uint64) {
	if seq > s.commit {
		s.commit = seq
	}
}

func (s *Spool) writeCommit() error {
	path := filepath.Join(s.opts.Dir, commitName)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("spool commit: %w", err)
	}
	_, err = f.WriteString(strconv.FormatUint(s.commit, 10))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("spool commit: %w", err)
	}
	return syncDir(s.opts.Dir)
}

// Stats reports the spool's size and losses.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Bytes = s.bytes()
	if s.next > s.commit+1 {
		st.Records = int64(s.next - 1 - s.commit)
	}
	if st.Records > 0 {
		st.Oldest = s.oldest
		if st.Oldest.IsZero() {
			for _, seg := range s.segs {
				if seg.last > s.commit {
					st.Oldest = seg.newest // until a Peek read the first record: its segment's newest
					break
				}
			}
		}
	}
	return st
}

// Close makes the commit point durable and closes the active segment.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.writeCommit()
	if cerr := s.active.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
