package statestore

import (
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
)

// call is one batch turned into the commands of its part of the transaction:
//
//	HSET value-hash  id value ...        (written values)
//	HSET ts-hash     id unix_ms ...      (same points)
//	HSET raw-hash    id raw ...          (points with a finite raw value)
//	HSET q-hash      id quality ...      (qualities that are not good)
//	HDEL q-hash      id ...              (points that are good again)
//	PUBLISH value-hash message
//	XADD voltage:changes MAXLEN ~ N * key value-hash m message
//
// It is built with no allocation per point: every number is formatted once into
// buf — the values inside the JSON message are the very bytes HSET stores — buf
// is copied into one string, and each argument is a substring of it handed to
// go-redis as a *string, which go-redis writes without boxing a new interface
// value per argument. All commands share one args array.
//
// A call is owned by one Write at a time and goes back to callPool afterwards.
type call struct {
	key   string   // the batch's value hash, for error messages
	buf   []byte   // the JSON message, then the raw values
	marks []mark   // where each sample's pieces are in buf
	strs  []string // substrings of one immutable copy of buf
	args  []any    // every command's arguments, back to back
	cmds  [][]any  // the commands: slices of args
}

// mark records where a sample's formatted pieces are in buf.
type mark struct {
	id, val, ts, raw span
	quality          point.Quality // after NaN/Inf and unknown values became Invalid
	finite           bool          // the value is written (not NaN or ±Inf)
}

type span struct{ from, to int }

// maxPooledBytes keeps one huge batch from pinning its buffers in the pool forever.
const maxPooledBytes = 1 << 20

var callPool = sync.Pool{New: func() any { return new(call) }}

func getCall() *call { return callPool.Get().(*call) }

func (c *call) release() {
	if cap(c.buf) > maxPooledBytes || cap(c.args)*16 > maxPooledBytes {
		return
	}
	clear(c.strs) // drop references to the batch's string
	clear(c.args)
	clear(c.cmds)
	c.key = ""
	callPool.Put(c)
}

// encode fills c with the commands for b. maxLen is the change stream's cap,
// boxed once per Writer.
func (c *call) encode(b *Batch, maxLen any) {
	c.key = b.Key
	n := c.format(b)
	c.build(b, n, maxLen)
}

// counts says how many samples go into each part of a batch's commands.
type counts struct {
	values int // written (finite) values
	bad    int // qualities that are not good
	good   int // written values whose quality is good
	raw    int // finite raw values, when the batch has a raw hash
	msgEnd int // the message is buf[:msgEnd]
}

// format writes the JSON message and then the raw values into c.buf, and marks
// where each sample's pieces are.
func (c *call) format(b *Batch) counts {
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

	c.buf = buf
	return counts{values: nv, bad: nbad, good: ngood, raw: nraw, msgEnd: msgEnd}
}

// build turns what format wrote into the commands, whose arguments are
// substrings of one copy of c.buf.
func (c *call) build(b *Batch, n counts, maxLen any) {
	str := string(c.buf)
	sub := func(s span) string { return str[s.from:s.to] }
	marks := c.marks[:len(b.Samples)]

	nv, nraw, nbad, ngood := n.values, n.raw, n.bad, n.good
	nts := nv // every written value gets its timestamp
	if b.TSKey == "" {
		nts = 0
	}
	if b.QualityKey == "" {
		nbad, ngood = 0, 0
	}
	total := 1 + 2*nv + 2*nts + 2*nraw + 2*nbad + ngood
	if cap(c.strs) < total {
		c.strs = make([]string, total)
	}
	strs := c.strs[:total]
	nargs := (2 + 2*nv) + (2 + 2*nts) + (2 + 2*nraw) + (2 + 2*nbad) + (2 + ngood) + 3 + 10
	if cap(c.args) < nargs {
		c.args = make([]any, 0, nargs)
	}
	args := c.args[:0]
	cmds := c.cmds[:0]
	strs[0] = str[:n.msgEnd]
	msg := &strs[0]
	next := 1
	// put appends a string argument; &strs[i] stays valid because strs has its
	// final length already.
	put := func(s string) {
		strs[next] = s
		args = append(args, &strs[next])
		next++
	}
	key := any(b.Key) // boxed once, used three times
	cmd := func(from int) { cmds = append(cmds, args[from:len(args):len(args)]) }

	if nv > 0 {
		from := len(args)
		args = append(args, "hset", key)
		for i := range marks {
			if m := &marks[i]; m.finite {
				put(sub(m.id))
				put(sub(m.val))
			}
		}
		cmd(from)
	}
	if nts > 0 {
		from := len(args)
		args = append(args, "hset", b.TSKey)
		for i := range marks {
			if m := &marks[i]; m.finite {
				put(sub(m.id))
				put(sub(m.ts))
			}
		}
		cmd(from)
	}
	if nraw > 0 {
		from := len(args)
		args = append(args, "hset", b.RawKey)
		for i := range marks {
			if m := &marks[i]; m.raw.to > 0 {
				put(sub(m.id))
				put(sub(m.raw))
			}
		}
		cmd(from)
	}
	if nbad > 0 {
		from := len(args)
		args = append(args, "hset", b.QualityKey)
		for i := range marks {
			if m := &marks[i]; m.quality != point.Good {
				put(sub(m.id))
				put(m.quality.String())
			}
		}
		cmd(from)
	}
	if ngood > 0 {
		// Most quality hashes are empty or missing, and then HDEL returns at
		// once; sending it always keeps the write free of a read-then-write race.
		from := len(args)
		args = append(args, "hdel", b.QualityKey)
		for i := range marks {
			if m := &marks[i]; m.quality == point.Good {
				put(sub(m.id))
			}
		}
		cmd(from)
	}
	from := len(args)
	args = append(args, "publish", key, msg)
	cmd(from)
	from = len(args)
	args = append(args, "xadd", keyspace.Changes, "maxlen", "~", maxLen, "*", "key", key, "m", msg)
	cmd(from)

	c.strs, c.args, c.cmds = strs, args, cmds
}
