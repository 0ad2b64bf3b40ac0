package can

import (
	"testing"
	"time"

	"go.einride.tech/can"
	"go.einride.tech/can/pkg/descriptor"

	"github.com/voltageems/voltage/shared/config"
)

// BenchmarkSignalDecode decodes a big-endian signed 16-bit signal with the driver's
// codec and reports its speed as a ratio to einride's descriptor decoding the same
// frame in the same run (ratio > 1: ours is slower).
func BenchmarkSignalDecode(b *testing.B) {
	m := config.CANMapping{StartBit: 23, Length: 16, Order: config.CANBigEndian, Signed: true, Scale: 0.1}
	ref := &descriptor.Signal{Start: 23, Length: 16, IsBigEndian: true, IsSigned: true, Scale: 0.1}
	d := can.Data{1, 2, 3, 4, 5, 6, 7, 8}
	const n = 200000
	start := time.Now()
	var sink float64
	for range n {
		sink += ref.UnmarshalPhysical(d)
	}
	base := time.Since(start)
	b.ResetTimer()
	for b.Loop() {
		v, _ := m.Decode(d[:])
		sink += v
	}
	b.StopTimer()
	ours := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(ours/(float64(base.Nanoseconds())/n), "x_einride")
	if sink == 0.5 {
		b.Log(sink)
	}
}
