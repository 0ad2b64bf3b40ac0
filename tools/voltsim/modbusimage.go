package voltsim

import (
	"fmt"
	"sort"
	"sync"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/modbusmap"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/tools/voltsim/modbusserver"
)

// modbusImage is the register image of one Modbus channel: per slave (unit id) the
// four data areas, each a dense block from its lowest mapped address to the end of
// its highest mapped point.
//
// Served range: a request must lie completely inside that block, otherwise it gets
// exception 02. Addresses inside the block that no point covers read as 0 and can be
// written, as on most devices; this is what lets a poller merge two points separated
// by a small gap into one read. An area in which the slave has no point at all
// answers every address with 02.
type modbusImage struct {
	mu     sync.Mutex
	slaves map[uint8]*slaveImage
	points map[pointKey]*mappedPoint
}

type slaveImage struct {
	areas [5]*areaImage // indexed by modbusserver.Area (1..4)
}

type areaImage struct {
	start  uint16
	bits   []bool   // coils and discrete inputs
	regs   []uint16 // holding and input registers
	points []*mappedPoint
}

func (a *areaImage) size() int { return max(len(a.bits), len(a.regs)) }

// contains reports whether [addr, addr+n) lies inside the served block.
func (a *areaImage) contains(addr, n uint16) bool {
	return addr >= a.start && int(addr)+int(n) <= int(a.start)+a.size()
}

// mappedPoint is where one point lives in the image.
type mappedPoint struct {
	key   pointKey
	cfg   *config.Point
	area  *areaImage
	addr  uint16 // protocol address
	width uint16 // registers, or 1 for a bit
}

func (p *mappedPoint) overlaps(addr, n uint16) bool {
	return int(p.addr) < int(addr)+int(n) && int(addr) < int(p.addr)+int(p.width)
}

// areaForFunction maps a mapping's read function code to the area it reads.
func areaForFunction(fc uint8) (modbusserver.Area, error) {
	switch fc {
	case 1:
		return modbusserver.Coils, nil
	case 2:
		return modbusserver.DiscreteInputs, nil
	case 3:
		return modbusserver.HoldingRegisters, nil
	case 4:
		return modbusserver.InputRegisters, nil
	}
	return 0, fmt.Errorf("function code %d is not a read function code (1-4)", fc)
}

// newModbusImage lays out every point of ch. addressBase is subtracted from the
// mapping's register numbers.
func newModbusImage(ch *config.Channel, addressBase int) (*modbusImage, error) {
	type span struct{ lo, hi int }
	type placed struct {
		mp    *mappedPoint
		slave uint8
		area  modbusserver.Area
	}
	var all []placed
	spans := map[uint8]*[5]*span{}
	for _, t := range point.Types {
		for i := range ch.Points[t] {
			p := &ch.Points[t][i]
			m := p.Modbus
			if m == nil {
				return nil, fmt.Errorf("point %s%d has no Modbus mapping", t, p.ID)
			}
			area, err := areaForFunction(m.FunctionCode)
			if err != nil {
				return nil, fmt.Errorf("point %s%d: %w", t, p.ID, err)
			}
			addr := int(m.Register) - addressBase
			if addr < 0 {
				return nil, fmt.Errorf("point %s%d: register %d is below address_base %d", t, p.ID, m.Register, addressBase)
			}
			width := 1
			if (area == modbusserver.HoldingRegisters || area == modbusserver.InputRegisters) && m.Bit < 0 {
				width = m.DataType.Registers()
			}
			if addr+width > 0x10000 {
				return nil, fmt.Errorf("point %s%d: %s at address %d runs past 65535", t, p.ID, m.DataType, addr)
			}
			if spans[m.SlaveID] == nil {
				spans[m.SlaveID] = &[5]*span{}
			}
			s := &spans[m.SlaveID][area]
			if *s == nil {
				*s = &span{lo: addr, hi: addr + width}
			}
			(*s).lo, (*s).hi = min((*s).lo, addr), max((*s).hi, addr+width)
			all = append(all, placed{
				mp:    &mappedPoint{key: pointKey{t, p.ID}, cfg: p, addr: uint16(addr), width: uint16(width)},
				slave: m.SlaveID, area: area,
			})
		}
	}

	img := &modbusImage{slaves: map[uint8]*slaveImage{}, points: map[pointKey]*mappedPoint{}}
	for id, areas := range spans {
		si := &slaveImage{}
		for a, s := range areas {
			if s == nil {
				continue
			}
			ai := &areaImage{start: uint16(s.lo)}
			if a == int(modbusserver.Coils) || a == int(modbusserver.DiscreteInputs) {
				ai.bits = make([]bool, s.hi-s.lo)
			} else {
				ai.regs = make([]uint16, s.hi-s.lo)
			}
			si.areas[a] = ai
		}
		img.slaves[id] = si
	}
	for _, pl := range all {
		ai := img.slaves[pl.slave].areas[pl.area]
		pl.mp.area = ai
		ai.points = append(ai.points, pl.mp)
		img.points[pl.mp.key] = pl.mp
	}
	for _, si := range img.slaves {
		for _, ai := range si.areas {
			if ai != nil {
				sort.SliceStable(ai.points, func(i, j int) bool { return ai.points[i].addr < ai.points[j].addr })
			}
		}
	}
	return img, nil
}

// set encodes engineering value v of point k into the image.
func (img *modbusImage) set(k pointKey, v float64) error {
	mp, ok := img.points[k] // the map is read-only after construction
	if !ok {
		return fmt.Errorf("point %s is not mapped", k)
	}
	raw := point.RawFromEngineering(v, mp.cfg.Scale, mp.cfg.Offset, mp.cfg.Reverse)
	m := mp.cfg.Modbus
	a := mp.area
	off := int(mp.addr - a.start)
	switch {
	case a.bits != nil:
		img.mu.Lock()
		a.bits[off] = raw != 0
		img.mu.Unlock()
	case m.Bit >= 0:
		img.mu.Lock()
		a.regs[off] = modbusmap.EncodeBit(a.regs[off], m.Bit, raw != 0)
		img.mu.Unlock()
	default:
		regs, err := modbusmap.Encode(raw, m.DataType, m.ByteOrder)
		if err != nil {
			return fmt.Errorf("point %s: engineering value %v (raw %v): %w", k, v, raw, err)
		}
		img.mu.Lock()
		copy(a.regs[off:], regs)
		img.mu.Unlock()
	}
	return nil
}

// lookup finds the area of a request, or the exception to answer with.
func (img *modbusImage) lookup(unit uint8, area modbusserver.Area, addr, n uint16) (*areaImage, error) {
	si, ok := img.slaves[unit]
	if !ok {
		// A gateway with no device behind this unit id.
		return nil, modbusserver.GatewayTargetFailedToRespond
	}
	ai := si.areas[area]
	if ai == nil || !ai.contains(addr, n) {
		return nil, modbusserver.IllegalDataAddress
	}
	return ai, nil
}

// decodeWritten returns the engineering values of the points of ai overlapping
// [addr, addr+n). img.mu must be held.
func (img *modbusImage) decodeWritten(ai *areaImage, addr, n uint16) ([]deviceWrite, []error) {
	var out []deviceWrite
	var errs []error
	for _, mp := range ai.points {
		if !mp.overlaps(addr, n) {
			continue
		}
		off := int(mp.addr - ai.start)
		m := mp.cfg.Modbus
		var raw float64
		switch {
		case ai.bits != nil:
			if ai.bits[off] {
				raw = 1
			}
		case m.Bit >= 0:
			raw = modbusmap.DecodeBit(ai.regs[off], m.Bit)
		default:
			v, err := modbusmap.Decode(ai.regs[off:off+int(mp.width)], m.DataType, m.ByteOrder)
			if err != nil {
				errs = append(errs, fmt.Errorf("point %s: %w", mp.key, err))
				continue
			}
			raw = v
		}
		out = append(out, deviceWrite{key: mp.key, value: point.Engineering(raw, mp.cfg.Scale, mp.cfg.Offset, mp.cfg.Reverse)})
	}
	return out, errs
}

// The methods below make modbusImage the Handler of the channel's server, apart
// from the write notification, which modbusDevice adds.

func (img *modbusImage) ReadBits(unit uint8, area modbusserver.Area, addr, qty uint16) ([]bool, error) {
	img.mu.Lock()
	defer img.mu.Unlock()
	ai, err := img.lookup(unit, area, addr, qty)
	if err != nil {
		return nil, err
	}
	off := int(addr - ai.start)
	return append([]bool(nil), ai.bits[off:off+int(qty)]...), nil
}

func (img *modbusImage) ReadRegisters(unit uint8, area modbusserver.Area, addr, qty uint16) ([]uint16, error) {
	img.mu.Lock()
	defer img.mu.Unlock()
	ai, err := img.lookup(unit, area, addr, qty)
	if err != nil {
		return nil, err
	}
	off := int(addr - ai.start)
	return append([]uint16(nil), ai.regs[off:off+int(qty)]...), nil
}

// writeBits stores coils and returns the points they changed.
func (img *modbusImage) writeBits(unit uint8, addr uint16, values []bool) ([]deviceWrite, []error, error) {
	img.mu.Lock()
	defer img.mu.Unlock()
	ai, err := img.lookup(unit, modbusserver.Coils, addr, uint16(len(values)))
	if err != nil {
		return nil, nil, err
	}
	copy(ai.bits[addr-ai.start:], values)
	w, errs := img.decodeWritten(ai, addr, uint16(len(values)))
	return w, errs, nil
}

// writeRegisters stores holding registers and returns the points they changed.
func (img *modbusImage) writeRegisters(unit uint8, addr uint16, values []uint16) ([]deviceWrite, []error, error) {
	img.mu.Lock()
	defer img.mu.Unlock()
	ai, err := img.lookup(unit, modbusserver.HoldingRegisters, addr, uint16(len(values)))
	if err != nil {
		return nil, nil, err
	}
	copy(ai.regs[addr-ai.start:], values)
	w, errs := img.decodeWritten(ai, addr, uint16(len(values)))
	return w, errs, nil
}
