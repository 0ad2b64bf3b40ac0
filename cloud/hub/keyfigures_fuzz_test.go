package hub

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/keyspace"
)

// FuzzParseFigurePoint: a key figure point that is accepted names a measurement
// or T/S hash and a canonical point id; nothing panics.
func FuzzParseFigurePoint(f *testing.F) {
	for _, s := range []string{"inst:1:M:4", "comsrv:3:T:1", "off", "", "inst:1:A:4", "inst:01:M:4", "comsrv:1:S:", ":::", "inst:4294967296:M:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseFigurePoint(s)
		if err != nil || p.key == "" {
			return
		}
		src, ok := keyspace.ParseChangeKey(p.key)
		if !ok || (src.Instance && src.Family != "M") || (!src.Instance && src.Family != "T" && src.Family != "S") {
			t.Fatalf("%q accepted with hash %q", s, p.key)
		}
		if n, err := strconv.ParseUint(p.id, 10, 32); err != nil || strconv.FormatUint(n, 10) != p.id || !strings.HasSuffix(s, ":"+p.id) {
			t.Fatalf("%q accepted with point %q", s, p.id)
		}
	})
}

// FuzzFigureTracker feeds power and counter values in any order and at any
// times: the figures stay finite and energy from a non-negative power is never
// negative.
func FuzzFigureTracker(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 100})
	f.Fuzz(func(t *testing.T, data []byte) {
		tr := newFigureTracker(KeyFigures{Power: "inst:1:M:4", Timezone: "UTC", Energy: KeyFigureOff})
		ctr := newFigureTracker(KeyFigures{Power: "inst:1:M:4", Energy: "inst:1:M:5", Timezone: "UTC"})
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
		for len(data) >= 12 {
			ts := base + int64(binary.BigEndian.Uint64(data[:8])%(3*86_400_000))
			v := float64(binary.BigEndian.Uint32(data[8:12]) % 100_000)
			data = data[12:]
			tr.observe("inst:1:M", "4", PointValue{Value: v, TS: ts})
			ctr.observe("inst:1:M", "5", PointValue{Value: v, TS: ts})
		}
		for _, now := range []int64{base, base + 86_400_000, base + 5*86_400_000} {
			for _, live := range []bool{true, false} {
				if k := tr.figures(time.UnixMilli(now), live); k != nil && k.EnergyTodayKWh != nil {
					if e := *k.EnergyTodayKWh; e < 0 || math.IsNaN(e) || math.IsInf(e, 0) {
						t.Fatalf("integrated energy %v", e)
					}
				}
				if k := ctr.figures(time.UnixMilli(now), live); k != nil && k.EnergyTodayKWh != nil {
					if e := *k.EnergyTodayKWh; math.IsNaN(e) || math.IsInf(e, 0) {
						t.Fatalf("counted energy %v", e)
					}
				}
			}
		}
	})
}
