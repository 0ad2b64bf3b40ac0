package modbus

import (
	"encoding/binary"
	"testing"

	"github.com/voltageems/voltage/shared/point"
)

// FuzzPlan reads data as options (max gap, max registers, max bits, per point: one
// signed byte and two big-endian uint16s and a flag byte) followed by 5-byte points
// (slave, function, address, width). Plan must never panic, must fail exactly when a
// point or option is impossible, and must satisfy checkPlan otherwise.
func FuzzPlan(f *testing.F) {
	f.Add([]byte{10, 0, 0, 0, 0, 0, 1, 3, 0, 0, 2, 1, 3, 0, 4, 1})
	f.Add([]byte{0xFF, 0, 10, 0, 0, 0, 1, 3, 0, 0, 1, 1, 3, 0, 7, 4})
	f.Add([]byte{0, 0, 0, 0, 8, 1, 1, 1, 0, 5, 1, 1, 1, 0, 5, 1, 2, 2, 0xFF, 0xFF, 1})
	f.Add([]byte{0, 0, 126, 0, 0, 0, 1, 5, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 6 {
			return
		}
		opt := PlanOptions{
			MaxGap:       int(int8(data[0])),
			MaxRegisters: int(binary.BigEndian.Uint16(data[1:])),
			MaxBits:      int(binary.BigEndian.Uint16(data[3:])),
			PerPoint:     data[5]&1 == 1,
		}
		var points []PlanPoint
		for i, rec := 0, data[6:]; len(rec) >= 5; i, rec = i+1, rec[5:] {
			points = append(points, PlanPoint{
				Key:       PointKey{point.Telemetry, point.ID(i)},
				Slave:     rec[0],
				Function:  rec[1] % 6, // 0 and 5 are invalid
				Address:   binary.BigEndian.Uint16(rec[2:]),
				Registers: uint16(rec[4] % 130),
			})
		}
		reqs, err := Plan(points, opt)
		if possible := feasible(points, opt); (err == nil) != possible {
			t.Fatalf("Plan(%+v, %+v) = %v; feasible %v", points, opt, err, possible)
		}
		if err == nil {
			checkPlan(t, points, opt, reqs)
		}
	})
}

// feasible restates the rules of a valid plan input independently of Plan.
func feasible(points []PlanPoint, opt PlanOptions) bool {
	maxRegs, maxBits := orDefault(opt.MaxRegisters, 125), orDefault(opt.MaxBits, 2000)
	if maxRegs < 1 || maxRegs > 125 || maxBits < 1 || maxBits > 2000 {
		return false
	}
	for _, p := range points {
		bits := p.Function == 1 || p.Function == 2
		regs := p.Function == 3 || p.Function == 4
		switch {
		case !bits && !regs,
			bits && p.Registers != 1,
			regs && (p.Registers < 1 || int(p.Registers) > maxRegs),
			int(p.Address)+int(p.Registers) > 65536:
			return false
		}
	}
	return true
}
