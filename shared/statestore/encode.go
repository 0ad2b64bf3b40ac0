package statestore

import (
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
)

// call is one batch turned into one EVALSHA command (the layout is described in
// script.lua). It is built in one pass per message section with no allocation
// per point: every number is formatted once into buf — the values inside the
// JSON message are the very bytes HSET stores — buf is copied into one string,
// and each argument is a substring of it handed to go-redis as a *string, which
// go-redis writes without boxing a new interface value per argument.
//
// A call is owned by one Write at a time and goes back to callPool afterwards.
type call struct {
	key   string   // the batch's value hash, for error messages
	buf   []byte   // the JSON message, then raw values and section lengths
	marks []mark   // where each sample's pieces are in buf
	strs  []string // ARGV: substrings of one immutable copy of buf
	args  []any    // the whole command: evalsha, sha, numkeys, KEYS, &strs[i]...
}

// mark records where a sample's formatted pieces are in buf.
type mark struct {
	id, val, ts, raw span
	quality          point.Quality // after NaN/Inf and unknown values became Invalid
	finite           bool          // the value is written (not NaN or ±Inf)
}

type span struct{ from, to int }

// numKeys is the number of KEYS script.lua takes.
const numKeys = 5

// ARGV entries before the sections: message, maxlen, five section lengths.
const argvHeader = 7

// maxPooledBytes keeps one huge batch from pinning its buffers in the pool forever.
const maxPooledBytes = 1 << 20

var callPool = sync.Pool{New: func() any { return new(call) }}

func getCall() *call { return callPool.Get().(*call) }

func (c *call) release() {
	if cap(c.buf) > maxPooledBytes || cap(c.strs)*16 > maxPooledBytes {
		return
	}
	clear(c.strs)
	clear(c.args) // drop references to the batch's strings
	c.key = ""
	callPool.Put(c)
}

// encode fills c with the EVALSHA command for b. sha is the boxed script SHA and
// maxLen the stream cap, both shared by every call of a Writer.
func (c *call) encode(b *Batch, sha any, maxLen string) {
	c.key = b.Key
	batchTS := b.TS
	if batchTS == 0 {
		batchTS = time.Now().UnixMilli()
	}
	samples := b.Samples
	if cap(c.marks) < len(samples) {
		c.marks = make([]mark, len(samples))
	}
	marks := c.marks[:len(samples)]

	buf := append(c.buf[:0], `{"ts":`...)
	tsSpan := span{from: len(buf)}
	buf = strconv.AppendInt(buf, batchTS, 10)
	tsSpan.to = len(buf)

	// "v": every finite value.
	buf = append(buf, `,"v":{`...)
	nv, ngood := 0, 0
	for i := range samples {
		s, m := &samples[i], &marks[i]
		*m = mark{quality: s.Quality, ts: tsSpan}
		if m.quality > point.CommLost {
			m.quality = point.Invalid
		}
		if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
			// Keep the last good value in the hash; say why it did not change.
			m.quality = point.Invalid
			continue
		}
		m.finite = true
		if m.quality == point.Good {
			ngood++
		}
		if nv > 0 {
			buf = append(buf, ',')
		}
		nv++
		buf = append(buf, '"')
		m.id.from = len(buf)
		buf = strconv.AppendUint(buf, uint64(s.ID), 10)
		m.id.to = len(buf)
		buf = append(buf, '"', ':')
		m.val.from = len(buf)
		buf = strconv.AppendFloat(buf, s.Value, 'f', -1, 64)
		m.val.to = len(buf)
	}
	buf = append(buf, '}')

	// "t": timestamps of written values that differ from the batch's.
	nt := 0
	for i := range samples {
		s, m := &samples[i], &marks[i]
		if !m.finite || s.TS == 0 || s.TS == batchTS {
			continue
		}
		if nt == 0 {
			buf = append(buf, `,"t":{`...)
		} else {
			buf = append(buf, ',')
		}
		nt++
		buf = append(buf, '"')
		buf = append(buf, buf[m.id.from:m.id.to]...)
		buf = append(buf, '"', ':')
		m.ts.from = len(buf)
		buf = strconv.AppendInt(buf, s.TS, 10)
		m.ts.to = len(buf)
	}
	if nt > 0 {
		buf = append(buf, '}')
	}

	// "q": qualities that are not good.
	nbad := 0
	for i := range samples {
		s, m := &samples[i], &marks[i]
		if m.quality == point.Good {
			continue
		}
		if nbad == 0 {
			buf = append(buf, `,"q":{`...)
		} else {
			buf = append(buf, ',')
		}
		nbad++
		buf = append(buf, '"')
		if m.finite {
			buf = append(buf, buf[m.id.from:m.id.to]...)
		} else { // not in "v": this is the first time the id is written
			m.id.from = len(buf)
			buf = strconv.AppendUint(buf, uint64(s.ID), 10)
			m.id.to = len(buf)
		}
		buf = append(buf, `":"`...)
		buf = append(buf, m.quality.String()...)
		buf = append(buf, '"')
	}
	if nbad > 0 {
		buf = append(buf, '}')
	}
	buf = append(buf, '}')
	msgEnd := len(buf)

	// Raw values are not in the message; format them after it.
	nraw := 0
	if b.RawKey != "" {
		for i := range samples {
			s, m := &samples[i], &marks[i]
			if !m.finite || math.IsNaN(s.Raw) || math.IsInf(s.Raw, 0) {
				continue
			}
			nraw++
			m.raw.from = len(buf)
			buf = strconv.AppendFloat(buf, s.Raw, 'f', -1, 64)
			m.raw.to = len(buf)
		}
	}

	// Section lengths, in ARGV entries.
	lens := [5]int{2 * nv, 0, 2 * nraw, 0, 0}
	if b.TSKey != "" {
		lens[1] = 2 * nv
	}
	if b.QualityKey != "" {
		lens[3], lens[4] = 2*nbad, ngood
	}
	var lenSpans [5]span
	for i, n := range lens {
		lenSpans[i].from = len(buf)
		buf = strconv.AppendInt(buf, int64(n), 10)
		lenSpans[i].to = len(buf)
	}
	c.buf = buf

	// One copy of everything; every argument below is a substring of it.
	str := string(buf)
	sub := func(s span) string { return str[s.from:s.to] }

	total := argvHeader + lens[0] + lens[1] + lens[2] + lens[3] + lens[4]
	if cap(c.strs) < total {
		c.strs = make([]string, total)
	}
	strs := c.strs[:total]
	strs[0] = str[:msgEnd]
	strs[1] = maxLen
	for i, s := range lenSpans {
		strs[2+i] = sub(s)
	}
	pos := argvHeader
	for i := range marks { // values
		if m := &marks[i]; m.finite {
			strs[pos], strs[pos+1] = sub(m.id), sub(m.val)
			pos += 2
		}
	}
	if lens[1] > 0 { // timestamps
		for i := range marks {
			if m := &marks[i]; m.finite {
				strs[pos], strs[pos+1] = sub(m.id), sub(m.ts)
				pos += 2
			}
		}
	}
	if lens[2] > 0 { // raw
		for i := range marks {
			if m := &marks[i]; m.raw.to > 0 {
				strs[pos], strs[pos+1] = sub(m.id), sub(m.raw)
				pos += 2
			}
		}
	}
	if lens[3] > 0 { // bad qualities
		for i := range marks {
			if m := &marks[i]; m.quality != point.Good {
				strs[pos], strs[pos+1] = sub(m.id), m.quality.String()
				pos += 2
			}
		}
	}
	if lens[4] > 0 { // good qualities
		for i := range marks {
			if m := &marks[i]; m.quality == point.Good {
				strs[pos] = sub(m.id)
				pos++
			}
		}
	}
	c.strs = strs

	nargs := 3 + numKeys + total
	if cap(c.args) < nargs {
		c.args = make([]any, nargs)
	}
	args := c.args[:nargs]
	args[0], args[1], args[2] = "evalsha", sha, numKeys
	args[3], args[4], args[5], args[6], args[7] = b.Key, b.TSKey, b.RawKey, b.QualityKey, keyspace.Changes
	for i := range strs {
		args[3+numKeys+i] = &strs[i]
	}
	c.args = args
}
