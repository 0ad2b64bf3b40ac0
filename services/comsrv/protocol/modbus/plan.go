// The poll plan turns a channel's mapped points into as few read requests as the
// device allows, because on a 500-device site the number of round trips, not the
// bytes, decides how long a poll takes. (The package comment is in driver.go.)

package modbus

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/voltageems/voltage/shared/point"
)

// Protocol limits of one read (Modbus Application Protocol v1.1b3 §6.1–6.4).
const (
	maxRegistersLimit = 125
	maxBitsLimit      = 2000
	defaultMaxGap     = 10
)

// PointKey identifies a point of the channel; the planner only carries it along.
type PointKey struct {
	Type point.Type
	ID   point.ID
}

func (k PointKey) String() string { return fmt.Sprintf("%s:%d", k.Type, k.ID) }

// PlanPoint is one point to read.
type PlanPoint struct {
	Key      PointKey
	Slave    uint8
	Function uint8  // 1 (coils), 2 (discrete inputs), 3 (holding registers) or 4 (input registers)
	Address  uint16 // 0-based protocol address; the caller has subtracted address_base
	// Registers is the width: 1 for a bit (functions 1 and 2), the number of
	// registers of the data type (1, 2 or 4) for functions 3 and 4.
	Registers uint16
}

// PlanOptions tunes the plan to a device.
type PlanOptions struct {
	// MaxGap is how many unmapped registers (or bits) may be read across to merge two
	// blocks into one request: 0 means the default of 10, a negative value merges only
	// blocks that touch or overlap. Some devices answer an exception for any unmapped
	// address inside a request; they need a negative MaxGap.
	MaxGap int
	// MaxRegisters caps the count of a function 3 or 4 request: 0 means 125, the
	// protocol maximum; some devices accept less.
	MaxRegisters int
	// MaxBits caps the count of a function 1 or 2 request: 0 means 2000, the protocol
	// maximum.
	MaxBits int
	// PerPoint reads every point with its own request, for devices that reject any
	// request not aligned to one value.
	PerPoint bool
}

// Request is one read request of the plan.
type Request struct {
	Slave    uint8
	Function uint8
	Address  uint16
	Count    uint16      // registers or bits
	Points   []PlanPoint // the points the response carries, sorted by address
}

// Offset is the index of p's first register (or bit) in the response to r.
func (r Request) Offset(p PlanPoint) int { return int(p.Address) - int(r.Address) }

// limits are the options with defaults applied.
type limits struct {
	gap, registers, bits int
}

func (o PlanOptions) limits() (limits, error) {
	l := limits{gap: o.MaxGap, registers: o.MaxRegisters, bits: o.MaxBits}
	switch {
	case l.gap == 0:
		l.gap = defaultMaxGap
	case l.gap < 0:
		l.gap = 0
	}
	if l.registers == 0 {
		l.registers = maxRegistersLimit
	}
	if l.bits == 0 {
		l.bits = maxBitsLimit
	}
	if l.registers < 0 || l.registers > maxRegistersLimit {
		return l, fmt.Errorf("max registers %d: want 1 to %d", o.MaxRegisters, maxRegistersLimit)
	}
	if l.bits < 0 || l.bits > maxBitsLimit {
		return l, fmt.Errorf("max bits %d: want 1 to %d", o.MaxBits, maxBitsLimit)
	}
	return l, nil
}

// max is the largest count of one request of function fc.
func (l limits) max(fc uint8) int {
	if fc == 1 || fc == 2 {
		return l.bits
	}
	return l.registers
}

func (l limits) check(p PlanPoint) error {
	switch p.Function {
	case 1, 2:
		if p.Registers != 1 {
			return fmt.Errorf("width %d: a bit read by function %d is 1 wide", p.Registers, p.Function)
		}
	case 3, 4:
		if p.Registers == 0 {
			return errors.New("width 0: want at least 1 register")
		}
		if int(p.Registers) > l.registers {
			return fmt.Errorf("width %d registers exceeds the %d of one request", p.Registers, l.registers)
		}
	default:
		return fmt.Errorf("function %d cannot read (want 1, 2, 3 or 4)", p.Function)
	}
	if end := int(p.Address) + int(p.Registers); end > 1<<16 {
		return fmt.Errorf("%d wide at address %d runs past the last address 65535", p.Registers, p.Address)
	}
	return nil
}

// Plan groups points by slave and function and merges neighbours into as few
// requests as opt allows. Points that share registers (bits of one register, or two
// types read over the same address) share a request. The result is sorted by slave,
// function and address, so equal inputs give equal plans whatever their order.
func Plan(points []PlanPoint, opt PlanOptions) ([]Request, error) {
	lim, err := opt.limits()
	if err != nil {
		return nil, fmt.Errorf("plan modbus reads: %w", err)
	}
	for _, p := range points {
		if err := lim.check(p); err != nil {
			return nil, fmt.Errorf("plan modbus reads: point %s (slave %d, function %d, address %d): %w",
				p.Key, p.Slave, p.Function, p.Address, err)
		}
	}
	sorted := slices.Clone(points)
	slices.SortFunc(sorted, comparePoints)

	var reqs []Request
	end := 0 // exclusive end of the last request's span
	for _, p := range sorted {
		pEnd := int(p.Address) + int(p.Registers)
		if n := len(reqs); n > 0 && !opt.PerPoint {
			r := &reqs[n-1]
			merged := max(end, pEnd)
			if r.Slave == p.Slave && r.Function == p.Function &&
				int(p.Address)-end <= lim.gap && merged-int(r.Address) <= lim.max(p.Function) {
				r.Points = append(r.Points, p)
				end = merged
				r.Count = uint16(end - int(r.Address))
				continue
			}
		}
		reqs = append(reqs, Request{
			Slave: p.Slave, Function: p.Function, Address: p.Address, Count: p.Registers,
			Points: []PlanPoint{p},
		})
		end = pEnd
	}
	return reqs, nil
}

// comparePoints orders by slave, function and address; the remaining fields only make
// the order total, so that the plan does not depend on the input order.
func comparePoints(a, b PlanPoint) int {
	return cmp.Or(
		cmp.Compare(a.Slave, b.Slave),
		cmp.Compare(a.Function, b.Function),
		cmp.Compare(a.Address, b.Address),
		cmp.Compare(a.Registers, b.Registers),
		cmp.Compare(a.Key.Type, b.Key.Type),
		cmp.Compare(a.Key.ID, b.Key.ID),
	)
}
