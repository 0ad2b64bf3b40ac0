package config

import (
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/voltageems/voltage/shared/point"
)

// IEC104Mapping is one row of mapping/{type}_mapping.csv of an iec104 channel
// (DESIGN §3: point_id,common_address,ioa,type_id[,cot]).
type IEC104Mapping struct {
	CommonAddress uint16 // ASDU common address (station), 1..65534
	IOA           uint32 // information object address, 1..16777215
	// TypeID is the ASDU type: for T and S points the monitoring type the station
	// reports (any type of the same family is accepted: M_SP_NA_1 also takes
	// M_SP_TB_1), for C and A points the command type sent.
	TypeID IEC104TypeID
	// COT, when not 0, limits a T or S point to values sent with this cause of
	// transmission (e.g. 3 spontaneous, 20 station interrogation). C and A points
	// always send activation (6), so the column is empty or 6 for them.
	COT uint8
	// SBO says whether a command uses select-before-operate: nil follows the
	// channel's select_before_operate parameter.
	SBO *bool
	Pos Position
}

// IEC104TypeID is an ASDU type identification (IEC 60870-5-101 §7.2.1).
type IEC104TypeID uint8

// The type identifications an iec104 mapping accepts.
const (
	MSpNa1 IEC104TypeID = 1  // single point
	MDpNa1 IEC104TypeID = 3  // double point
	MStNa1 IEC104TypeID = 5  // step position
	MBoNa1 IEC104TypeID = 7  // bitstring of 32 bits
	MMeNa1 IEC104TypeID = 9  // measured value, normalized
	MMeNb1 IEC104TypeID = 11 // measured value, scaled
	MMeNc1 IEC104TypeID = 13 // measured value, short float
	MItNa1 IEC104TypeID = 15 // integrated totals
	MMeNd1 IEC104TypeID = 21 // measured value, normalized, no quality
	MSpTb1 IEC104TypeID = 30 // single point with CP56Time2a
	MDpTb1 IEC104TypeID = 31 // double point with CP56Time2a
	MStTb1 IEC104TypeID = 32 // step position with CP56Time2a
	MBoTb1 IEC104TypeID = 33 // bitstring with CP56Time2a
	MMeTd1 IEC104TypeID = 34 // normalized with CP56Time2a
	MMeTe1 IEC104TypeID = 35 // scaled with CP56Time2a
	MMeTf1 IEC104TypeID = 36 // short float with CP56Time2a
	MItTb1 IEC104TypeID = 37 // integrated totals with CP56Time2a
	CScNa1 IEC104TypeID = 45 // single command
	CDcNa1 IEC104TypeID = 46 // double command
	CRcNa1 IEC104TypeID = 47 // regulating step command
	CSeNa1 IEC104TypeID = 48 // set-point, normalized
	CSeNb1 IEC104TypeID = 49 // set-point, scaled
	CSeNc1 IEC104TypeID = 50 // set-point, short float
	CBoNa1 IEC104TypeID = 51 // bitstring of 32 bits command
)

var iec104TypeNames = map[IEC104TypeID]string{
	MSpNa1: "M_SP_NA_1", MDpNa1: "M_DP_NA_1", MStNa1: "M_ST_NA_1", MBoNa1: "M_BO_NA_1",
	MMeNa1: "M_ME_NA_1", MMeNb1: "M_ME_NB_1", MMeNc1: "M_ME_NC_1", MItNa1: "M_IT_NA_1",
	MMeNd1: "M_ME_ND_1", MSpTb1: "M_SP_TB_1", MDpTb1: "M_DP_TB_1", MStTb1: "M_ST_TB_1",
	MBoTb1: "M_BO_TB_1", MMeTd1: "M_ME_TD_1", MMeTe1: "M_ME_TE_1", MMeTf1: "M_ME_TF_1",
	MItTb1: "M_IT_TB_1", CScNa1: "C_SC_NA_1", CDcNa1: "C_DC_NA_1", CRcNa1: "C_RC_NA_1",
	CSeNa1: "C_SE_NA_1", CSeNb1: "C_SE_NB_1", CSeNc1: "C_SE_NC_1", CBoNa1: "C_BO_NA_1",
}

// The CP24Time2a monitoring types of IEC 60870-5-101, which IEC 104 does not use.
var iec104CP24Types = map[uint64]string{
	2: "M_SP_TA_1", 4: "M_DP_TA_1", 6: "M_ST_TA_1", 8: "M_BO_TA_1",
	10: "M_ME_TA_1", 12: "M_ME_TB_1", 14: "M_ME_TC_1", 16: "M_IT_TA_1",
}

// iec104Allowed lists, per point type, the type ids its points may map to.
var iec104Allowed = map[point.Type][]IEC104TypeID{
	point.Telemetry:  {MMeNa1, MMeNb1, MMeNc1, MMeNd1, MMeTd1, MMeTe1, MMeTf1, MItNa1, MItTb1, MStNa1, MStTb1, MBoNa1, MBoTb1},
	point.Signal:     {MSpNa1, MSpTb1, MDpNa1, MDpTb1},
	point.Control:    {CScNa1, CDcNa1, CRcNa1},
	point.Adjustment: {CSeNa1, CSeNb1, CSeNc1, CRcNa1, CBoNa1},
}

// String is the standard name, e.g. M_ME_NC_1; unknown ids print as numbers.
func (t IEC104TypeID) String() string {
	if n, ok := iec104TypeNames[t]; ok {
		return n
	}
	return strconv.Itoa(int(t))
}

// IEC104TypeFamily groups a monitoring type with its time-tagged variant (and
// M_ME_ND_1 with M_ME_NA_1): a point mapped to one accepts data of any member.
// It returns the type without time tag; commands are their own family.
func IEC104TypeFamily(t IEC104TypeID) IEC104TypeID {
	switch t {
	case MSpTb1:
		return MSpNa1
	case MDpTb1:
		return MDpNa1
	case MStTb1:
		return MStNa1
	case MBoTb1:
		return MBoNa1
	case MMeTd1, MMeNd1:
		return MMeNa1
	case MMeTe1:
		return MMeNb1
	case MMeTf1:
		return MMeNc1
	case MItTb1:
		return MItNa1
	}
	return t
}

// ParseIEC104TypeID accepts a type id as a number (13) or a name (M_ME_NC_1, any
// case) among the types an iec104 mapping supports.
func ParseIEC104TypeID(s string) (IEC104TypeID, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseUint(s, 10, 8); err == nil {
		if name, ok := iec104CP24Types[n]; ok {
			return 0, &iec104TypeError{msg: "type " + s + " (" + name + ") carries a CP24Time2a time tag, which IEC 60870-5-104 does not use; use the CP56Time2a type (30..37) or the type without time"}
		}
		if _, ok := iec104TypeNames[IEC104TypeID(n)]; ok {
			return IEC104TypeID(n), nil
		}
		return 0, &iec104TypeError{msg: "unsupported type id " + s + " (supported: " + iec104TypeList() + ")"}
	}
	up := strings.ToUpper(s)
	for id, name := range iec104TypeNames {
		if name == up {
			return id, nil
		}
	}
	for _, name := range iec104CP24Types {
		if name == up {
			return 0, &iec104TypeError{msg: "type " + up + " carries a CP24Time2a time tag, which IEC 60870-5-104 does not use; use the CP56Time2a type (30..37) or the type without time"}
		}
	}
	return 0, &iec104TypeError{msg: "unknown type id " + strconv.Quote(s) + " (supported: " + iec104TypeList() + ")"}
}

type iec104TypeError struct{ msg string }

func (e *iec104TypeError) Error() string { return e.msg }

func iec104TypeList() string {
	var parts []string
	for _, t := range []IEC104TypeID{MSpNa1, MDpNa1, MStNa1, MBoNa1, MMeNa1, MMeNb1, MMeNc1, MItNa1, MMeNd1,
		MSpTb1, MDpTb1, MStTb1, MBoTb1, MMeTd1, MMeTe1, MMeTf1, MItTb1, CScNa1, CDcNa1, CRcNa1, CSeNa1, CSeNb1, CSeNc1, CBoNa1} {
		parts = append(parts, strconv.Itoa(int(t))+" "+t.String())
	}
	return strings.Join(parts, ", ")
}

var iec104Columns = columns{
	allowed:  []string{"point_id", "common_address", "ioa", "type_id", "cot", "sbo"},
	required: []string{"point_id", "common_address", "ioa", "type_id"},
}

// iec104Table is one parsed {type}_mapping.csv of an iec104 channel.
type iec104Table = mappingTable[IEC104Mapping]

// loadIEC104Mapping reads the mapping table of one point type of an iec104 channel
// and joins it to the point table: every point needs exactly one row.
func loadIEC104Mapping(chDir string, typ point.Type, pt *pointTable, l *errList) {
	mpath := filepath.Join(chDir, "mapping", typ.Name()+"_mapping.csv")
	mt := iec104Table{path: mpath}
	switch src, state := readFile(mpath, l); state {
	case fileOK:
		mt = parseIEC104Mapping(mpath, typ, src, l)
	case fileAbsent:
		mt.absent = true
	case fileError:
		mt.broken = true
	}
	joinIEC104(pt, &mt, l)
}

// parseIEC104Mapping parses an IEC 104 mapping table of points of type typ.
func parseIEC104Mapping(path string, typ point.Type, src []byte, l *errList) iec104Table {
	t := readCSV(path, src, iec104Columns, l)
	mt := iec104Table{path: path, broken: t.broken, failed: map[point.ID]bool{}}
	firstLine := map[point.ID]int{}
	type addr struct {
		ca  uint16
		ioa uint32
	}
	addrLine := map[addr]int{}
	for i := range t.rows {
		r := &t.rows[i]
		rr := newRowReader(t, r, l)
		id := point.ID(rr.uint("point_id", math.MaxUint32, -1))
		if !rr.ok {
			continue
		}
		m := readIEC104Row(rr, typ)
		if line, dup := firstLine[id]; dup {
			l.add(t.fieldPos(r, "point_id"), "second mapping row for point_id %d (first on line %d); a point has exactly one", id, line)
			continue
		}
		firstLine[id] = r.line
		if !rr.ok {
			mt.failed[id] = true
			continue
		}
		a := addr{m.CommonAddress, m.IOA}
		if line, dup := addrLine[a]; dup {
			l.add(t.fieldPos(r, "ioa"), "common_address %d ioa %d is already mapped on line %d; two points cannot share an information object", a.ca, a.ioa, line)
			mt.failed[id] = true
			continue
		}
		addrLine[a] = r.line
		mt.rows = append(mt.rows, mappingRow[IEC104Mapping]{id: id, idPos: t.fieldPos(r, "point_id"), m: m})
	}
	return mt
}

func readIEC104Row(rr *rowReader, typ point.Type) IEC104Mapping {
	m := IEC104Mapping{Pos: rr.t.rowPos(rr.r)}
	before := rr.ok
	ca := rr.uint("common_address", math.MaxUint16, -1)
	if before && rr.ok && (ca == 0 || ca == math.MaxUint16) {
		rr.fail("common_address", "common address %d is reserved (0 unused, 65535 broadcast); want 1..65534", ca)
	}
	m.CommonAddress = uint16(ca)

	before = rr.ok
	ioa := rr.uint("ioa", 1<<24-1, -1)
	if before && rr.ok && ioa == 0 {
		rr.fail("ioa", "information object address 0 means \"irrelevant\"; want 1..16777215")
	}
	m.IOA = uint32(ioa)

	if text := rr.required("type_id"); text != "" {
		tid, err := ParseIEC104TypeID(text)
		switch {
		case err != nil:
			rr.fail("type_id", "%v", err)
		case !containsType(iec104Allowed[typ], tid):
			rr.fail("type_id", "%s cannot carry a %s point; use one of %s", tid, typ.Name(), typeNames(iec104Allowed[typ]))
		default:
			m.TypeID = tid
		}
	}

	if rr.str("cot") != "" {
		before := rr.ok
		cot := rr.uint("cot", 63, -1)
		switch {
		case before && !rr.ok:
		case cot == 0:
			rr.fail("cot", "cause of transmission 0 is not used; want 1..63, or leave the column empty for any cause")
		case typ.Writable() && cot != 6:
			rr.fail("cot", "%s points are sent as activation (6); leave cot empty or write 6", typ.Name())
		default:
			m.COT = uint8(cot)
		}
	}

	if rr.str("sbo") != "" {
		before := rr.ok
		b := rr.bool("sbo")
		switch {
		case before && !rr.ok:
		case !typ.Writable():
			rr.fail("sbo", "select-before-operate applies to commands; %s points take no sbo", typ.Name())
		case m.TypeID == CBoNa1:
			rr.fail("sbo", "C_BO_NA_1 has no select/execute qualifier; it cannot use select-before-operate")
		default:
			m.SBO = &b
		}
	}
	return m
}

func containsType(list []IEC104TypeID, t IEC104TypeID) bool {
	for _, x := range list {
		if x == t {
			return true
		}
	}
	return false
}

func typeNames(list []IEC104TypeID) string {
	parts := make([]string, len(list))
	for i, t := range list {
		parts[i] = t.String() + " (" + strconv.Itoa(int(t)) + ")"
	}
	return strings.Join(parts, ", ")
}

// joinIEC104 attaches every IEC 104 mapping row to its point.
func joinIEC104(pt *pointTable, mt *iec104Table, l *errList) {
	mt.join(pt, "an IEC 104 channel", func(p *Point, m IEC104Mapping) { p.IEC104 = &m }, func(p *Point) bool { return p.IEC104 != nil }, l)
}
