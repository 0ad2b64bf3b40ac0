package statestore

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"testing"

	"github.com/voltageems/voltage/shared/point"
)

// argv returns the ARGV strings of an encoded call (after evalsha, sha, numkeys and
// the keys).
func argv(c *call) []string {
	out := make([]string, 0, len(c.args))
	for _, a := range c.args[3+numKeys:] {
		out = append(out, *a.(*string))
	}
	return out
}

func TestEncodeLayout(t *testing.T) {
	b := ChannelBatch(1, point.Telemetry, 1000, []point.Sample{
		{ID: 1, Value: 12.5, Raw: 125, TS: 1000},
		{ID: 2, Value: -0.1, Raw: 65535, TS: 990, Quality: point.Stale},
		{ID: 3, Value: math.NaN(), Raw: 7, TS: 1000},
		{ID: 4, Value: 1e21, Raw: math.Inf(1), Quality: point.CommLost},
		{ID: 5, Value: 3, Raw: 3, TS: 1000, Quality: point.Quality(200)},
	})
	c := getCall()
	defer c.release()
	c.encode(&b, "sha", "100")

	wantMsg := `{"ts":1000,"v":{"1":12.5,"2":-0.1,"4":1000000000000000000000,"5":3},"t":{"2":990},` +
		`"q":{"2":"stale","3":"invalid","4":"comm_lost","5":"invalid"}}`
	want := []string{
		wantMsg, "100",
		"8", "8", "6", "8", "1", // section lengths
		"1", "12.5", "2", "-0.1", "4", "1000000000000000000000", "5", "3", // values; 3 is NaN
		"1", "1000", "2", "990", "4", "1000", "5", "1000", // timestamps; 4 had none: the batch's
		"1", "125", "2", "65535", "5", "3", // raw; 4's is +Inf
		"2", "stale", "3", "invalid", "4", "comm_lost", "5", "invalid", // bad qualities
		"1", // good qualities
	}
	if got := argv(c); !slices.Equal(got, want) {
		t.Fatalf("ARGV\n got %q\nwant %q", got, want)
	}
	if !json.Valid([]byte(argv(c)[0])) {
		t.Fatal("message is not valid JSON")
	}
	keys := c.args[3 : 3+numKeys]
	wantKeys := []any{"comsrv:1:T", "comsrv:1:T:ts", "comsrv:1:T:raw", "comsrv:1:T:q", "voltage:changes"}
	if !slices.Equal(keys, wantKeys) {
		t.Fatalf("KEYS = %v, want %v", keys, wantKeys)
	}
	if c.args[0] != "evalsha" || c.args[1] != "sha" || c.args[2] != numKeys {
		t.Fatalf("command head = %v", c.args[:3])
	}
}

func TestEncodeOmitsUnusedSectionsAndKeys(t *testing.T) {
	b := Batch{Key: "inst:7:M", TS: 5, Samples: []point.Sample{{ID: 9, Value: 1, TS: 5}}}
	c := getCall()
	defer c.release()
	c.encode(&b, "sha", "10")
	want := []string{`{"ts":5,"v":{"9":1}}`, "10", "2", "0", "0", "0", "0", "9", "1"}
	if got := argv(c); !slices.Equal(got, want) {
		t.Fatalf("ARGV = %q, want %q", got, want)
	}
}

func TestEncodeOnlyInvalid(t *testing.T) {
	b := ChannelBatch(2, point.Signal, 7, []point.Sample{{ID: 1, Value: math.Inf(-1), TS: 7}})
	c := getCall()
	defer c.release()
	c.encode(&b, "sha", "10")
	want := []string{`{"ts":7,"v":{},"q":{"1":"invalid"}}`, "10", "0", "0", "0", "2", "0", "1", "invalid"}
	if got := argv(c); !slices.Equal(got, want) {
		t.Fatalf("ARGV = %q, want %q", got, want)
	}
}

func TestEncodeReusedCallHasNoLeftovers(t *testing.T) {
	c := new(call)
	big := make([]point.Sample, 100)
	for i := range big {
		big[i] = point.Sample{ID: uint32(i), Value: float64(i), Raw: float64(i), TS: 1, Quality: point.Stale}
	}
	b := ChannelBatch(1, point.Telemetry, 1, big)
	c.encode(&b, "sha", "10")
	c.release()
	small := ChannelBatch(1, point.Control, 2, []point.Sample{{ID: 1, Value: 1, Raw: 1, TS: 2}})
	c.encode(&small, "sha", "10")
	want := []string{`{"ts":2,"v":{"1":1}}`, "10", "2", "2", "2", "0", "0", "1", "1", "1", "2", "1", "1"}
	if got := argv(c); !slices.Equal(got, want) {
		t.Fatalf("ARGV = %q, want %q", got, want)
	}
}

// FuzzEncode checks that any batch encodes into a valid message whose content
// agrees with the ARGV sections.
func FuzzEncode(f *testing.F) {
	f.Add(uint32(1), 12.5, 125.0, int64(1000), int64(1000), uint8(0), uint8(3))
	f.Add(uint32(0), math.NaN(), math.Inf(1), int64(0), int64(-1), uint8(2), uint8(1))
	f.Add(uint32(math.MaxUint32), -math.MaxFloat64, math.SmallestNonzeroFloat64, int64(math.MaxInt64), int64(math.MinInt64), uint8(255), uint8(7))
	f.Fuzz(func(t *testing.T, id uint32, v, raw float64, ts, batchTS int64, q uint8, n uint8) {
		samples := make([]point.Sample, int(n%8)+1)
		for i := range samples {
			samples[i] = point.Sample{ID: id + uint32(i), Value: v * float64(i), Raw: raw, TS: ts, Quality: point.Quality(q + uint8(i))}
		}
		b := ChannelBatch(3, point.Telemetry, batchTS, samples)
		c := getCall()
		defer c.release()
		c.encode(&b, "sha", "10")
		a := argv(c)
		m, err := DecodeMessage([]byte(a[0]))
		if err != nil {
			t.Fatalf("message %q: %v", a[0], err)
		}
		nv, _ := strconv.Atoi(a[2])
		if nv != 2*len(m.V) {
			t.Fatalf("values section %d entries, message has %d values", nv, len(m.V))
		}
		for i := 0; i < nv; i += 2 {
			pid, val := a[argvHeader+i], a[argvHeader+i+1]
			f, err := strconv.ParseFloat(val, 64)
			if err != nil || m.V[pid] != f {
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
