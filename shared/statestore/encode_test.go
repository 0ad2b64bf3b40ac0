package statestore

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/voltageems/voltage/shared/point"
)

// commands renders an encoded call as one line per command.
func commands(t *testing.T, c *call) []string {
	t.Helper()
	var out []string
	for _, cmd := range c.cmds {
		words := make([]string, len(cmd))
		for i, a := range cmd {
			switch v := a.(type) {
			case string:
				words[i] = v
			case *string:
				words[i] = *v
			case int64:
				words[i] = strconv.FormatInt(v, 10)
			default:
				t.Fatalf("argument %d of %v has type %T", i, cmd, a)
			}
		}
		out = append(out, strings.Join(words, " "))
	}
	return out
}

func encodeOne(b Batch) *call {
	c := getCall()
	c.encode(&b, int64(100))
	return c
}

func TestEncodeCommands(t *testing.T) {
	c := encodeOne(ChannelBatch(1, point.Telemetry, 1000, []point.Sample{
		{ID: 1, Value: 12.5, Raw: 125, TS: 1000},
		{ID: 2, Value: -0.1, Raw: 65535, TS: 990, Quality: point.Stale},
		{ID: 3, Value: math.NaN(), Raw: 7, TS: 1000},
		{ID: 4, Value: 1e21, Raw: math.Inf(1), Quality: point.CommLost},
		{ID: 5, Value: 3, Raw: 3, TS: 1000, Quality: point.Quality(200)},
	}))
	defer c.release()
	msg := `{"ts":1000,"v":{"1":12.5,"2":-0.1,"4":1000000000000000000000,"5":3},"t":{"2":990},` +
		`"q":{"2":"stale","3":"invalid","4":"comm_lost","5":"invalid"}}`
	want := []string{
		"hset comsrv:1:T 1 12.5 2 -0.1 4 1000000000000000000000 5 3", // 3 is NaN: not written
		"hset comsrv:1:T:ts 1 1000 2 990 4 1000 5 1000",              // 4 had no TS: the batch's
		"hset comsrv:1:T:raw 1 125 2 65535 5 3",                      // 4's raw is +Inf
		"hset comsrv:1:T:q 2 stale 3 invalid 4 comm_lost 5 invalid",  // 200 is no quality
		"hdel comsrv:1:T:q 1",
		"publish comsrv:1:T " + msg,
		"xadd voltage:changes maxlen ~ 100 * key comsrv:1:T m " + msg,
	}
	if got := commands(t, c); !slices.Equal(got, want) {
		t.Fatalf("commands\n got %q\nwant %q", got, want)
	}
}

func TestEncodeOmitsUnusedHashes(t *testing.T) {
	c := encodeOne(Batch{Key: "inst:7:M", TS: 5, Samples: []point.Sample{{ID: 9, Value: 1, TS: 5, Quality: point.Stale}}})
	defer c.release()
	want := []string{
		"hset inst:7:M 9 1",
		`publish inst:7:M {"ts":5,"v":{"9":1},"q":{"9":"stale"}}`,
		`xadd voltage:changes maxlen ~ 100 * key inst:7:M m {"ts":5,"v":{"9":1},"q":{"9":"stale"}}`,
	}
	if got := commands(t, c); !slices.Equal(got, want) {
		t.Fatalf("commands\n got %q\nwant %q", got, want)
	}
}

func TestEncodeOnlyInvalid(t *testing.T) {
	c := encodeOne(ChannelBatch(2, point.Signal, 7, []point.Sample{{ID: 1, Value: math.Inf(-1), Raw: 1, TS: 7}}))
	defer c.release()
	want := []string{
		"hset comsrv:2:S:q 1 invalid",
		`publish comsrv:2:S {"ts":7,"v":{},"q":{"1":"invalid"}}`,
		`xadd voltage:changes maxlen ~ 100 * key comsrv:2:S m {"ts":7,"v":{},"q":{"1":"invalid"}}`,
	}
	if got := commands(t, c); !slices.Equal(got, want) {
		t.Fatalf("commands\n got %q\nwant %q", got, want)
	}
}

func TestEncodeReusedCallHasNoLeftovers(t *testing.T) {
	big := make([]point.Sample, 100)
	for i := range big {
		big[i] = point.Sample{ID: uint32(i), Value: float64(i), Raw: float64(i), TS: 1, Quality: point.Stale}
	}
	c := new(call)
	b := ChannelBatch(1, point.Telemetry, 1, big)
	c.encode(&b, int64(10))
	c.release()
	small := ChannelBatch(1, point.Control, 2, []point.Sample{{ID: 1, Value: 1, Raw: 1, TS: 2}})
	c.encode(&small, int64(10))
	want := []string{
		"hset comsrv:1:C 1 1",
		"hset comsrv:1:C:ts 1 2",
		"hset comsrv:1:C:raw 1 1",
		`publish comsrv:1:C {"ts":2,"v":{"1":1}}`,
		`xadd voltage:changes maxlen ~ 10 * key comsrv:1:C m {"ts":2,"v":{"1":1}}`,
	}
	if got := commands(t, c); !slices.Equal(got, want) {
		t.Fatalf("commands\n got %q\nwant %q", got, want)
	}
}

func TestEncodeZeroBatchTSIsNow(t *testing.T) {
	c := encodeOne(ChannelBatch(1, point.Telemetry, 0, []point.Sample{{ID: 1, Value: 1}}))
	defer c.release()
	m, err := DecodeMessage([]byte(*c.cmds[len(c.cmds)-2][2].(*string)))
	if err != nil {
		t.Fatal(err)
	}
	if m.TS < 1_700_000_000_000 {
		t.Fatalf("batch ts = %d, want the current time", m.TS)
	}
}

// FuzzEncode checks that any batch encodes into a valid message whose values agree
// with what HSET stores.
func FuzzEncode(f *testing.F) {
	f.Add(uint32(1), 12.5, 125.0, int64(1000), int64(1000), uint8(0), uint8(3))
	f.Add(uint32(0), math.NaN(), math.Inf(1), int64(0), int64(-1), uint8(2), uint8(1))
	f.Add(uint32(math.MaxUint32), -math.MaxFloat64, math.SmallestNonzeroFloat64, int64(math.MaxInt64), int64(math.MinInt64), uint8(255), uint8(7))
	f.Fuzz(func(t *testing.T, id uint32, v, raw float64, ts, batchTS int64, q uint8, n uint8) {
		samples := make([]point.Sample, int(n%8)+1)
		for i := range samples {
			samples[i] = point.Sample{ID: id + uint32(i), Value: v * float64(i), Raw: raw, TS: ts, Quality: point.Quality(q + uint8(i))}
		}
		c := encodeOne(ChannelBatch(3, point.Telemetry, batchTS, samples))
		defer c.release()
		var m Message
		stored := map[string]string{}
		for _, cmd := range c.cmds {
			switch name, key := cmd[0].(string), fmt.Sprint(cmd[1]); {
			case name == "publish":
				var err error
				if m, err = DecodeMessage([]byte(*cmd[2].(*string))); err != nil {
					t.Fatalf("message: %v", err)
				}
			case name == "hset" && key == "comsrv:3:T":
				for i := 2; i < len(cmd); i += 2 {
					stored[*cmd[i].(*string)] = *cmd[i+1].(*string)
				}
			}
		}
		if len(stored) != len(m.V) {
			t.Fatalf("HSET stores %d values, message has %d", len(stored), len(m.V))
		}
		for pid, val := range stored {
			f, err := strconv.ParseFloat(val, 64)
			if err != nil || m.V[pid] != f || strings.ContainsAny(val, "eEnN") {
				t.Fatalf("point %s: hash value %q, message value %v", pid, val, m.V[pid])
			}
		}
		for pid, qname := range m.Q {
			if _, err := point.ParseQuality(qname); err != nil || qname == "good" {
				t.Fatalf("point %s: quality %q in q", pid, qname)
			}
		}
	})
}
