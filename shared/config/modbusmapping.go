package config

import (
	"math"

	"github.com/voltageems/voltage/shared/modbusmap"
	"github.com/voltageems/voltage/shared/point"
)

var modbusColumns = columns{
	allowed:  []string{"point_id", "slave_id", "function_code", "register_address", "data_type", "byte_order", "bit_position"},
	required: []string{"point_id", "slave_id", "function_code", "register_address", "data_type"},
}

// Modbus function codes a mapping row may name.
const (
	fcReadCoils          = 1
	fcReadDiscreteInputs = 2
	fcReadHolding        = 3
	fcReadInput          = 4
	fcWriteCoil          = 5
	fcWriteRegister      = 6
	fcWriteCoils         = 15
	fcWriteRegisters     = 16
)

// modbusTable is one parsed Modbus {type}_mapping.csv.
type modbusTable = mappingTable[ModbusMapping]

// parseModbusMapping parses a Modbus mapping table of points of type typ. base is the
// channel's address_base: 1 when the table numbers registers from 1.
func parseModbusMapping(path string, typ point.Type, src []byte, base uint16, l *errList) modbusTable {
	t := readCSV(path, src, modbusColumns, l)
	mt := modbusTable{path: path, broken: t.broken, failed: map[point.ID]bool{}}
	firstLine := map[point.ID]int{}
	for i := range t.rows {
		r := &t.rows[i]
		rr := newRowReader(t, r, l)
		id := point.ID(rr.uint("point_id", math.MaxUint32, -1))
		if !rr.ok {
			continue
		}
		m := readModbusRow(rr, typ, base)
		if line, dup := firstLine[id]; dup {
			l.add(t.fieldPos(r, "point_id"), "second mapping row for point_id %d (first on line %d); a point has exactly one", id, line)
			continue
		}
		firstLine[id] = r.line
		if !rr.ok {
			mt.failed[id] = true
			continue
		}
		mt.rows = append(mt.rows, mappingRow[ModbusMapping]{id: id, idPos: t.fieldPos(r, "point_id"), m: m})
	}
	return mt
}

func readModbusRow(rr *rowReader, typ point.Type, base uint16) ModbusMapping {
	m := ModbusMapping{
		SlaveID: uint8(rr.uint("slave_id", 255, -1)),
		Pos:     rr.t.rowPos(rr.r),
		Bit:     -1,
	}
	slaveOK := rr.ok
	fc := rr.uint("function_code", 255, -1)
	fcOK := rr.ok
	dtText := rr.required("data_type")
	dt, err := modbusmap.ParseDataType(dtText)
	dtOK := err == nil
	if dtText != "" && err != nil {
		rr.fail("data_type", "%v", err)
	}
	m.DataType = dt

	if slaveOK {
		switch {
		case m.SlaveID > 247:
			rr.fail("slave_id", "slave_id %d is reserved (want 1..247)", m.SlaveID)
		case m.SlaveID == 0 && !typ.Writable():
			rr.fail("slave_id", "slave_id 0 is the broadcast address, which answers no reads; a %s point needs 1..247", typ.Name())
		}
	}
	if fcOK {
		m.FunctionCode, m.WriteFunctionCode = readFunctionCode(rr, typ, uint8(fc))
	}
	if fcOK && dtOK && m.FunctionCode != 0 {
		checkFunctionCodeFits(rr, typ, m.FunctionCode, m.WriteFunctionCode, dt)
	}

	if dtOK {
		if bo, err := modbusmap.ParseByteOrder(rr.str("byte_order")); err != nil {
			rr.fail("byte_order", "%v", err)
		} else if m.ByteOrder, err = modbusmap.ForType(bo, dt); err != nil {
			rr.fail("byte_order", "%v", err)
		}
	}

	if rr.str("bit_position") != "" {
		before := rr.ok
		bit := rr.uint("bit_position", 15, -1)
		switch {
		case before && !rr.ok:
		case dtOK && dt != modbusmap.Bool:
			rr.fail("bit_position", "bit_position is only for bool points, and data_type is %s", dt)
		case m.FunctionCode == fcReadCoils || m.FunctionCode == fcReadDiscreteInputs:
			rr.fail("bit_position", "bit_position is only for bools inside registers (function code 3 or 4); function code %d reads single bits", m.FunctionCode)
		default:
			m.Bit = int(bit)
		}
	}

	before := rr.ok
	reg := rr.uint("register_address", math.MaxUint16, -1)
	m.Register = uint16(reg)
	switch {
	case before && !rr.ok:
	case reg < uint64(base):
		rr.fail("register_address", "register 0 does not exist: the channel sets address_base 1, so registers count from 1")
	case dtOK && m.FunctionCode != 0:
		width := uint64(dt.Registers())
		if m.FunctionCode == fcReadCoils || m.FunctionCode == fcReadDiscreteInputs {
			width = 1
		}
		if last := reg - uint64(base) + width - 1; last > math.MaxUint16 {
			rr.fail("register_address", "%s at register %d needs %d registers and runs past the last address, 65535", dt, reg, width)
		}
	}
	return m
}

// readFunctionCode checks the code for the point type and returns the code the point
// is read with and, for C/A points, the write code named (0 when a read code was
// given and the driver picks the write code).
func readFunctionCode(rr *rowReader, typ point.Type, fc uint8) (read, write uint8) {
	if !typ.Writable() {
		switch fc {
		case fcReadCoils, fcReadDiscreteInputs, fcReadHolding, fcReadInput:
			return fc, 0
		}
		rr.fail("function_code", "function code %d is not a read; a %s point is read with 1 (coils), 2 (discrete inputs), 3 (holding registers) or 4 (input registers)", fc, typ.Name())
		return 0, 0
	}
	switch fc {
	case fcReadCoils, fcReadHolding:
		return fc, 0
	case fcWriteCoil, fcWriteCoils:
		return fcReadCoils, fc
	case fcWriteRegister, fcWriteRegisters:
		return fcReadHolding, fc
	case fcReadDiscreteInputs, fcReadInput:
		rr.fail("function_code", "function code %d reads a read-only area, which cannot be written; a %s point needs coils (1, 5, 15) or holding registers (3, 6, 16)", fc, typ.Name())
		return 0, 0
	}
	rr.fail("function_code", "unknown function code %d; a %s point needs coils (1, 5, 15) or holding registers (3, 6, 16)", fc, typ.Name())
	return 0, 0
}

// checkFunctionCodeFits checks the codes against the wire data type.
func checkFunctionCodeFits(rr *rowReader, typ point.Type, read, write uint8, dt modbusmap.DataType) {
	if (read == fcReadCoils || read == fcReadDiscreteInputs) && dt != modbusmap.Bool {
		want := "3 or 4"
		if typ.Writable() {
			want = "3, 6 or 16"
		}
		rr.fail("function_code", "function code %s reads single bits, and data_type %s needs registers (function code %s)", rr.str("function_code"), dt, want)
		return
	}
	if write == fcWriteRegister && dt.Registers() > 1 {
		rr.fail("function_code", "function code 6 writes one register, and %s takes %d (use 16)", dt, dt.Registers())
	}
}

// joinModbus attaches every Modbus mapping row to its point.
func joinModbus(pt *pointTable, mt *modbusTable, l *errList) {
	mt.join(pt, "a Modbus channel", func(p *Point, m ModbusMapping) { p.Modbus = &m }, func(p *Point) bool { return p.Modbus != nil }, l)
}
