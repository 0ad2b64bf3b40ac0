package netsrv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"text/template"
	"time"
)

// DefaultTopic is the telemetry topic of mqtt and aws_iot links without one.
const DefaultTopic = "voltage/{{.Site}}/{{.Kind}}/{{.Source}}/{{.Type}}"

// Payload is what a payload template executes on.
type Payload struct {
	Site   string   `json:"site"`
	Link   string   `json:"link"`
	ID     string   `json:"id"` // voltage:changes id of the first change in the message
	TS     int64    `json:"ts"` // newest sample timestamp, Unix ms
	Points []Sample `json:"points"`
}

// TopicData is what a topic template executes on: one sample plus site and link.
type TopicData struct {
	Site, Link string
	Sample
}

var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"rfc3339": func(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) },
}

// Message is one publish (or one HTTP POST).
type Message struct {
	Topic   string `json:"t,omitempty"`
	Payload []byte `json:"p"`
	QoS     byte   `json:"q,omitempty"`
	Retain  bool   `json:"r,omitempty"`
	// acks are the stream entries this message completes: they are acknowledged
	// once it is delivered (not stored in the spool).
	acks   []string
	points int // samples in the payload (0 for a shadow update)
}

// errTooLarge is a single sample that does not fit into max_payload.
var errTooLarge = errors.New("one sample exceeds max_payload")

// encoder renders the payloads of one link.
type encoder struct {
	site, link string
	cfg        *LinkConfig
	seq        atomic.Uint32 // Alink message ids
}

// tagged is a sample with the stream entry it came from.
type tagged struct {
	Sample
	entry string
}

type group struct {
	topic   string
	samples []tagged
}

// build turns one batch's selected samples (in stream order) into messages, each
// carrying the entries it completes. Entries that yield no sample are
// completed by the first message, or returned in idle when there is none.
func (e *encoder) build(samples []tagged, entries []string) (msgs []Message, idle []string, err error) {
	var groups []*group
	byTopic := map[string]*group{}
	for _, s := range samples {
		topic, err := e.topic(s.Sample)
		if err != nil {
			return nil, nil, err
		}
		g := byTopic[topic]
		if g == nil {
			g = &group{topic: topic}
			byTopic[topic] = g
			groups = append(groups, g)
		}
		g.samples = append(g.samples, s)
	}
	last := map[string]int{} // entry → index of its last message
	for _, g := range groups {
		var chunks []chunk
		for _, run := range e.runs(g.samples) {
			c, err := e.chunk(run)
			if err != nil {
				return nil, nil, fmt.Errorf("topic %s: %w", g.topic, err)
			}
			chunks = append(chunks, c...)
		}
		for _, c := range chunks {
			for _, s := range c.samples {
				last[s.entry] = len(msgs)
			}
			msgs = append(msgs, Message{Topic: g.topic, Payload: c.payload, QoS: e.cfg.QoSLevel(), Retain: e.cfg.Retain, points: len(c.samples)})
		}
	}
	if e.cfg.Type == TypeAWSIoT && e.cfg.AWS != nil && e.cfg.AWS.Shadow && len(samples) > 0 {
		shadow, err := e.shadow(samples)
		if err != nil {
			return nil, nil, err
		}
		for _, m := range shadow {
			for _, s := range samples {
				last[s.entry] = len(msgs)
			}
			msgs = append(msgs, m)
		}
	}
	for _, id := range entries {
		i, ok := last[id]
		switch {
		case ok:
			msgs[i].acks = append(msgs[i].acks, id)
		case len(msgs) > 0:
			msgs[0].acks = append(msgs[0].acks, id)
		default:
			idle = append(idle, id)
		}
	}
	return msgs, idle, nil
}

func (e *encoder) topic(s Sample) (string, error) {
	switch e.cfg.Type {
	case TypeHTTP:
		return "", nil
	case TypeAliyun:
		return AliyunPropertyPostTopic(e.cfg.Aliyun.ProductKey, e.cfg.Aliyun.DeviceName), nil
	}
	var b bytes.Buffer
	if err := e.cfg.topicTmpl.Execute(&b, TopicData{Site: e.site, Link: e.link, Sample: s}); err != nil {
		return "", fmt.Errorf("topic template: %w", err)
	}
	return b.String(), nil
}

// runs splits samples for formats keyed by point name (compact, Alink), where a
// message can hold one value per point: a point's second value starts a new message.
func (e *encoder) runs(samples []tagged) [][]tagged {
	keyed := e.cfg.Format == FormatCompact || e.cfg.Type == TypeAliyun && e.cfg.Format == FormatJSON
	if !keyed {
		return [][]tagged{samples}
	}
	var out [][]tagged
	seen := map[string]bool{}
	start := 0
	for i, s := range samples {
		if seen[s.Name] {
			out = append(out, samples[start:i])
			start, seen = i, map[string]bool{}
		}
		seen[s.Name] = true
	}
	return append(out, samples[start:])
}

type chunk struct {
	samples []tagged
	payload []byte
}

// chunk encodes samples into payloads that fit max_payload, splitting a group
// that is too large.
func (e *encoder) chunk(samples []tagged) ([]chunk, error) {
	p, err := e.payload(samples)
	if err != nil {
		return nil, err
	}
	if len(p) <= e.cfg.MaxPayload {
		return []chunk{{samples: samples, payload: p}}, nil
	}
	if len(samples) == 1 {
		return nil, fmt.Errorf("%s: %d bytes > %d: %w", samples[0].Name, len(p), e.cfg.MaxPayload, errTooLarge)
	}
	// Split into as many even parts as the size suggests (one encoding per level,
	// not one per halving); a part that is still too large splits again.
	parts := min(len(samples), len(p)/e.cfg.MaxPayload+1)
	var out []chunk
	for i := range parts {
		c, err := e.chunk(samples[i*len(samples)/parts : (i+1)*len(samples)/parts])
		if err != nil {
			return nil, err
		}
		out = append(out, c...)
	}
	return out, nil
}

func (e *encoder) payload(samples []tagged) ([]byte, error) {
	pl := Payload{Site: e.site, Link: e.link, Points: make([]Sample, len(samples))}
	for i, s := range samples {
		pl.Points[i] = s.Sample
		pl.TS = max(pl.TS, s.TS)
	}
	if len(samples) > 0 {
		pl.ID = samples[0].entry
	}
	if e.cfg.Type == TypeAliyun && e.cfg.Format == FormatJSON {
		return e.alink(pl)
	}
	switch e.cfg.Format {
	case FormatCompact:
		return compactPayload(pl)
	case FormatTemplate:
		var b bytes.Buffer
		if err := e.cfg.tmpl.Execute(&b, pl); err != nil {
			return nil, fmt.Errorf("payload template: %w", err)
		}
		return b.Bytes(), nil
	default:
		return json.Marshal(pl)
	}
}

// compactPayload is {"site","link","id","ts","v":{name:value},"q":{name:quality}}
// with q only for points that are not good.
func compactPayload(pl Payload) ([]byte, error) {
	type compact struct {
		Site string             `json:"site"`
		Link string             `json:"link"`
		ID   string             `json:"id"`
		TS   int64              `json:"ts"`
		V    map[string]float64 `json:"v"`
		Q    map[string]string  `json:"q,omitempty"`
	}
	c := compact{Site: pl.Site, Link: pl.Link, ID: pl.ID, TS: pl.TS, V: make(map[string]float64, len(pl.Points))}
	for _, s := range pl.Points {
		c.V[s.Name] = s.Value
		if s.Quality != "good" {
			if c.Q == nil {
				c.Q = map[string]string{}
			}
			c.Q[s.Name] = s.Quality
		}
	}
	return json.Marshal(c)
}

// alink is the Alink JSON property post.
func (e *encoder) alink(pl Payload) ([]byte, error) {
	type prop struct {
		Value float64 `json:"value"`
		Time  int64   `json:"time"`
	}
	params := make(map[string]prop, len(pl.Points))
	for _, s := range pl.Points {
		params[s.Name] = prop{Value: s.Value, Time: s.TS}
	}
	return json.Marshal(struct {
		ID      string          `json:"id"`
		Version string          `json:"version"`
		Params  map[string]prop `json:"params"`
		Method  string          `json:"method"`
	}{strconv.FormatUint(uint64(e.seq.Add(1)), 10), "1.0", params, "thing.event.property.post"})
}

// shadow is the AWS device shadow update with the newest value of every point,
// split into several updates when one would exceed max_payload.
func (e *encoder) shadow(samples []tagged) ([]Message, error) {
	var names []string
	latest := map[string]float64{}
	for _, s := range samples {
		if _, ok := latest[s.Name]; !ok {
			names = append(names, s.Name)
		}
		latest[s.Name] = s.Value
	}
	return e.shadowParts(names, latest)
}

func (e *encoder) shadowParts(names []string, latest map[string]float64) ([]Message, error) {
	reported := make(map[string]float64, len(names))
	for _, n := range names {
		reported[n] = latest[n]
	}
	b, err := json.Marshal(map[string]any{"state": map[string]any{"reported": reported}})
	if err != nil {
		return nil, err
	}
	if len(b) <= e.cfg.MaxPayload {
		return []Message{{Topic: AWSShadowTopic(e.cfg.AWS.Thing), Payload: b, QoS: 1}}, nil
	}
	if len(names) == 1 {
		return nil, fmt.Errorf("shadow update of %s is %d bytes > %d: %w", names[0], len(b), e.cfg.MaxPayload, errTooLarge)
	}
	a, err := e.shadowParts(names[:len(names)/2], latest)
	if err != nil {
		return nil, err
	}
	c, err := e.shadowParts(names[len(names)/2:], latest)
	return append(a, c...), err
}

// AWSShadowTopic is the topic of a thing's shadow update.
func AWSShadowTopic(thing string) string { return "$aws/things/" + thing + "/shadow/update" }
