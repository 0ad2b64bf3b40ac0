package hub

import (
	"fmt"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/subjects"
)

// BenchmarkApplyKeyFigures is the fleet state's apply of instance batches
// (10 measurements each, the station's among them) without key figures (the
// baseline) and with the default ones; compare the two ns/op. Every batch is
// newer than the last (an older value is skipped before the figures see it) as
// long as b.N ≤ 200000: run it with -benchtime 200000x.
func BenchmarkApplyKeyFigures(b *testing.B) {
	subject := subjects.InstanceUp("s", 1)
	batches := make([][]byte, 200_000)
	t0 := time.Now().UnixMilli()
	for i := range batches {
		batches[i] = fmt.Appendf(nil, `{"ts":%d,"v":{"1":%d,"2":2,"3":3,"4":%d,"5":5,"6":50,"7":7,"8":8,"9":9,"10":10}}`, t0+int64(i)*1000, i%100, i%77)
	}
	for _, name := range []string{"baseline", "key_figures"} {
		b.Run(name, func(b *testing.B) {
			r := newRegistry(5 * time.Second)
			s, _ := r.add("s", "", true)
			if name == "key_figures" {
				s.useKeyFigures(defaultKeyFigures)
			}
			now := time.Now()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := s.apply(subject, 0, batches[i%len(batches)], now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
