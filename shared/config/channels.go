package config

import (
	"bytes"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// Protocols lists the protocol names channels.yaml accepts.
var Protocols = []string{
	ProtocolModbusTCP, ProtocolModbusRTU, ProtocolModbusRTUOverTCP,
	ProtocolIEC104, ProtocolCAN, ProtocolGPIO, ProtocolVirtual,
}

// IsModbus reports whether the channel speaks one of the Modbus protocols, whose
// points all carry a ModbusMapping.
func (c *Channel) IsModbus() bool { return isModbus(c.Protocol) }

func isModbus(protocol string) bool {
	switch protocol {
	case ProtocolModbusTCP, ProtocolModbusRTU, ProtocolModbusRTUOverTCP:
		return true
	}
	return false
}

// paramsSource is where a channel's parameters were written: the YAML node (nil when
// the channel has none) and the file it is in, so a driver's decode errors point into
// channels.yaml.
type paramsSource struct {
	doc  *yamlDoc
	node ast.Node
}

// DecodeParameters decodes the channel's parameters into dst, a pointer to the
// driver's own struct (yaml tags). Unknown keys are rejected; the error is a
// *PosError at the key's place in channels.yaml. A channel without parameters leaves
// dst as it is, so a driver may fill in its defaults first. Safe for concurrent use.
func (c *Channel) DecodeParameters(dst any) error {
	d := c.params.doc
	if d == nil || isNull(d.resolve(c.params.node)) {
		return nil
	}
	// A decoder of its own per call: the library's decoder keeps state while it
	// decodes, and several drivers may start at once.
	dec := yaml.NewDecoder(bytes.NewReader(d.src), decodeOptions...)
	if err := GuardYAML(func() error { return dec.DecodeFromNode(c.params.node, dst) }); err != nil {
		return yamlError(d.path, "parameters", err)
	}
	return nil
}

// channelEntry is a channel as decoded from channels.yaml, before its point tables
// are read.
type channelEntry struct {
	ch     Channel
	pos    Position // the list item
	fields map[string]fieldInfo
	// tables says whether the point tables of the channel should be read: its id is
	// valid and not a duplicate.
	tables bool
}

// loadChannels decodes and validates comsrv/channels.yaml.
func loadChannels(path string, src []byte, l *errList) []channelEntry {
	doc := parseYAML(path, src, l)
	if doc == nil || isNull(doc.body) {
		return nil
	}
	pairs, ok := doc.pairs(doc.body, 0, l)
	if !ok {
		l.add(doc.pos(doc.body), "want a mapping with the key \"channels\", got %s", nodeKind(doc.body))
		return nil
	}
	var list ast.Node
	for _, kv := range pairs {
		if key := keyName(kv.Key); key != "channels" {
			l.add(doc.pos(kv.Key), "unknown key %q (known keys: channels)", key)
			continue
		}
		list = kv.Value
	}
	if isNull(list) {
		return nil
	}
	seq, ok := doc.resolve(list).(*ast.SequenceNode)
	if !ok {
		l.add(doc.pos(list), "channels: want a list of channels, got %s", nodeKind(list))
		return nil
	}

	entries := make([]channelEntry, 0, len(seq.Values))
	byID := map[uint32]Position{}
	byName := map[string]Position{}
	for _, item := range seq.Values {
		e := channelEntry{pos: doc.pos(item), fields: map[string]fieldInfo{}}
		// A listed channel is meant to run unless it says otherwise.
		e.ch.Enabled = true
		doc.decodeStruct(item, &e.ch, "", e.fields, l)
		e.ch.params = paramsSource{doc: doc}
		// Problems of the item's merge keys were reported by decodeStruct.
		if pairs, ok := doc.pairs(item, 0, &errList{}); ok {
			for _, kv := range pairs {
				if keyName(kv.Key) == "parameters" {
					e.ch.params.node = kv.Value
				}
			}
		}
		e.tables = validateChannel(&e, byID, byName, l)
		entries = append(entries, e)
	}
	// The channels keep doc for DecodeParameters, which needs only its source, body
	// and anchors; drop what only loading needed.
	doc.dec, doc.merged = nil, nil
	return entries
}

// validateChannel checks one channel against itself and the channels before it, and
// reports whether its point tables can be read.
func validateChannel(e *channelEntry, byID map[uint32]Position, byName map[string]Position, l *errList) bool {
	c := &e.ch
	at := func(key string) Position {
		if f, ok := e.fields[key]; ok {
			return f.pos
		}
		return e.pos
	}

	idOK := false
	switch f, ok := e.fields["id"]; {
	case !ok:
		l.add(e.pos, "channel without id (every channel needs a unique id > 0)")
	case !f.ok:
	case c.ID == 0:
		l.add(f.pos, "id: must be > 0")
	default:
		if first, dup := byID[c.ID]; dup {
			l.add(f.pos, "duplicate channel id %d (first used on line %d)", c.ID, first.Line)
		} else {
			byID[c.ID] = f.pos
			idOK = true
		}
	}

	switch f, ok := e.fields["name"]; {
	case !ok || f.ok && c.Name == "":
		l.add(at("name"), "channel %s: name is required", channelLabel(c))
	case !f.ok:
	default:
		if first, dup := byName[c.Name]; dup {
			l.add(f.pos, "duplicate channel name %q (first used on line %d)", c.Name, first.Line)
		} else {
			byName[c.Name] = f.pos
		}
	}

	switch f, ok := e.fields["protocol"]; {
	case !ok:
		l.add(e.pos, "channel %s: protocol is required (one of %s)", channelLabel(c), joinQuoted(Protocols))
	case !f.ok:
	default:
		if !contains(Protocols, c.Protocol) {
			l.add(f.pos, "protocol: unknown protocol %q (want one of %s)", c.Protocol, joinQuoted(Protocols))
		}
	}
	return idOK
}

func channelLabel(c *Channel) string {
	if c.ID == 0 {
		return "(no id)"
	}
	return uitoa(c.ID)
}
