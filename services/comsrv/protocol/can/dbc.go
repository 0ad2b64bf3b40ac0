package can

import (
	"fmt"
	"os"
	"path/filepath"

	"go.einride.tech/can/pkg/dbc"

	"github.com/voltageems/voltage/shared/config"
)

// DBCSignal is a signal of a DBC file with its message.
type DBCSignal struct {
	Message string
	Mapping config.CANMapping
}

// LoadDBC parses a DBC file and returns its signals by name, each also under
// "Message.Signal" (for names that several messages share).
func LoadDBC(path string) (map[string]DBCSignal, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read DBC: %w", err)
	}
	p := dbc.NewParser(path, src)
	if err := p.Parse(); err != nil {
		return nil, fmt.Errorf("parse DBC: %w", err)
	}
	out := map[string]DBCSignal{}
	ambiguous := map[string]bool{}
	for _, def := range p.Defs() {
		msg, ok := def.(*dbc.MessageDef)
		if !ok {
			continue
		}
		id := uint32(msg.MessageID.ToCAN())
		for _, sig := range msg.Signals {
			m := config.CANMapping{
				ID: id, Extended: msg.MessageID.IsExtended(),
				StartBit: uint8(sig.StartBit), Length: uint8(sig.Size),
				Signed: sig.IsSigned, Scale: sig.Factor, Offset: sig.Offset,
				Signal: string(sig.Name),
				Pos:    config.Position{File: path, Line: sig.Pos.Line, Column: sig.Pos.Column},
			}
			if sig.IsBigEndian {
				m.Order = config.CANBigEndian
			}
			if sig.StartBit > 63 || sig.Size > 64 {
				return nil, fmt.Errorf("%s: signal %s: start bit %d, size %d do not fit an 8-byte frame", m.Pos, sig.Name, sig.StartBit, sig.Size)
			}
			if err := m.Validate(); err != nil {
				return nil, fmt.Errorf("%s: signal %s: %w", m.Pos, sig.Name, err)
			}
			s := DBCSignal{Message: string(msg.Name), Mapping: m}
			out[string(msg.Name)+"."+string(sig.Name)] = s
			if _, dup := out[string(sig.Name)]; dup {
				ambiguous[string(sig.Name)] = true
			}
			out[string(sig.Name)] = s
		}
	}
	for name := range ambiguous {
		delete(out, name) // only "Message.Signal" names it
	}
	return out, nil
}

// ResolveMappings gives every point of a can channel its signal layout: its
// mapping row's layout, the DBC signal its row names, or (no row) the DBC signal
// named like the point's signal_name. It returns the layouts by point.
func ResolveMappings(ch *config.Channel, p config.CANParams) (map[*config.Point]config.CANMapping, error) {
	var signals map[string]DBCSignal
	if p.DBCFile != "" {
		path := p.DBCFile
		if !filepath.IsAbs(path) {
			path = filepath.Join(channelDir(ch), path)
		}
		var err error
		if signals, err = LoadDBC(path); err != nil {
			return nil, err
		}
	}
	out := map[*config.Point]config.CANMapping{}
	for t, pts := range ch.Points {
		for i := range pts {
			pt := &pts[i]
			var name string
			switch {
			case pt.CAN != nil && pt.CAN.Signal == "":
				out[pt] = *pt.CAN
				continue
			case pt.CAN != nil:
				name = pt.CAN.Signal
			default:
				name = pt.Name
			}
			if signals == nil {
				return nil, fmt.Errorf("%s: %s point %d has no CAN mapping row (and the channel names no dbc_file)", pt.Pos, t.Name(), pt.ID)
			}
			s, ok := signals[name]
			if !ok {
				return nil, fmt.Errorf("%s: %s point %d: DBC %s has no signal %q (a name in several messages needs Message.Signal)", pt.Pos, t.Name(), pt.ID, p.DBCFile, name)
			}
			out[pt] = s.Mapping // the DBC's factor and offset; the point table's scale applies on top
		}
	}
	return out, nil
}

// channelDir is the channel's folder, config/comsrv/{id}: where its point tables are.
func channelDir(ch *config.Channel) string {
	for _, pts := range ch.Points {
		for _, p := range pts {
			if p.Pos.File != "" {
				return filepath.Dir(p.Pos.File)
			}
		}
	}
	return "."
}

// frameKey identifies a frame on the bus: the same number is a different frame
// as a standard and as an extended identifier.
type frameKey struct {
	id       uint32
	extended bool
}

func keyOf(m config.CANMapping) frameKey { return frameKey{m.ID, m.Extended} }

func (k frameKey) String() string {
	if k.extended {
		return fmt.Sprintf("0x%08X (extended)", k.id)
	}
	return fmt.Sprintf("0x%03X", k.id)
}
