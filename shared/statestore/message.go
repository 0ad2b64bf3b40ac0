package statestore

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/voltageems/voltage/shared/point"
)

// Message is a change batch as published on a hash's pub/sub channel and stored in
// the "m" field of a voltage:changes entry:
// {"ts":<ms>,"v":{"<point_id>":<value>,...},"t":{...},"q":{...}}.
type Message struct {
	TS int64              `json:"ts"`          // the batch timestamp, Unix ms
	V  map[string]float64 `json:"v"`           // values that were written
	T  map[string]int64   `json:"t,omitempty"` // per-point timestamps that differ from TS
	Q  map[string]string  `json:"q,omitempty"` // qualities that are not good
}

// DecodeMessage parses a change message.
func DecodeMessage(b []byte) (Message, error) {
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return Message{}, fmt.Errorf("decode change message: %w", err)
	}
	if m.TS == 0 {
		return Message{}, errors.New(`decode change message: no "ts"`)
	}
	return m, nil
}

// PointTS returns the timestamp of the point with id: its own from T, or the
// batch's.
func (m *Message) PointTS(id string) int64 {
	if ts, ok := m.T[id]; ok {
		return ts
	}
	return m.TS
}

// Quality returns the point's quality: from Q, or good. A name this version does
// not know reads as invalid, so a reader never trusts what it cannot interpret.
func (m *Message) Quality(id string) point.Quality {
	name, ok := m.Q[id]
	if !ok {
		return point.Good
	}
	q, err := point.ParseQuality(name)
	if err != nil {
		return point.Invalid
	}
	return q
}
