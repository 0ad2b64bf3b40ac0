package netsrv

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/voltageems/voltage/shared/statestore"
)

func mustLink(t *testing.T, yaml string) *LinkConfig {
	t.Helper()
	fc, err := Parse("netsrv.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return &fc.Links[0]
}

func samplesOf(n int, entry func(i int) string) []tagged {
	out := make([]tagged, n)
	for i := range out {
		out[i] = tagged{Sample: Sample{Name: fmt.Sprintf("c1_T_%d", i), Kind: KindChannel, Source: 1, Type: "T", Point: uint32(i), Value: float64(i) * 1.5, TS: 1000, Quality: "good"}, entry: entry(i)}
	}
	return out
}

// Payloads stay under max_payload, every sample lands in exactly one message, and
// each entry is acknowledged with the last message that carries part of it.
func TestBuildSplitsUnderMaxPayload(t *testing.T) {
	l := mustLink(t, "links:\n  - {name: a, type: mqtt, broker: 'tcp://h:1', max_payload: 1024}\n")
	e := &encoder{site: "s", link: "a", cfg: l}
	in := samplesOf(200, func(i int) string { return fmt.Sprintf("1-%d", i/10) })
	entries := make([]string, 20)
	for i := range entries {
		entries[i] = fmt.Sprintf("1-%d", i)
	}
	msgs, idle, err := e.build(in, append(entries, "2-0"))
	if err != nil {
		t.Fatal(err)
	}
	if len(idle) != 0 {
		t.Fatalf("idle %v: an entry without samples is acknowledged with the first message", idle)
	}
	seen, acked := map[string]int{}, map[string]int{}
	for i, m := range msgs {
		if len(m.Payload) > 1024 {
			t.Fatalf("message %d has %d bytes", i, len(m.Payload))
		}
		var p Payload
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			t.Fatal(err)
		}
		for _, s := range p.Points {
			seen[s.Name]++
		}
		if m.points != len(p.Points) {
			t.Errorf("message %d counts %d points, carries %d", i, m.points, len(p.Points))
		}
		for _, id := range m.acks {
			acked[id]++
		}
	}
	if len(msgs) < 2 || len(seen) != 200 {
		t.Fatalf("%d messages carry %d distinct samples", len(msgs), len(seen))
	}
	for name, n := range seen {
		if n != 1 {
			t.Errorf("%s in %d messages", name, n)
		}
	}
	if len(acked) != 21 {
		t.Errorf("%d entries acknowledged, want 21", len(acked))
	}
	// A single sample larger than the limit is an error, not a silent drop.
	l.MaxPayload = 20
	if _, _, err := e.build(samplesOf(1, func(int) string { return "1-0" }), []string{"1-0"}); err == nil {
		t.Fatal("a sample larger than max_payload was accepted")
	}
}

// Keyed formats (compact, Alink) cannot hold two values of one point: the second
// starts a new message, so no value is overwritten.
func TestKeyedFormatsKeepEveryValue(t *testing.T) {
	for _, yaml := range []string{
		"links:\n  - {name: a, type: mqtt, broker: 'tcp://h:1', format: compact}\n",
		"links:\n  - {name: a, type: aliyun, broker: 'tcp://h:1', aliyun: {product_key: p, device_name: d, device_secret: s}}\n",
	} {
		l := mustLink(t, yaml)
		e := &encoder{site: "s", link: "a", cfg: l}
		in := []tagged{
			{Sample: Sample{Name: "x", Value: 1}, entry: "1-0"},
			{Sample: Sample{Name: "y", Value: 2}, entry: "1-0"},
			{Sample: Sample{Name: "x", Value: 3}, entry: "1-1"},
		}
		msgs, _, err := e.build(in, []string{"1-0", "1-1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 2 {
			t.Fatalf("%s: %d messages, want 2", l.Format, len(msgs))
		}
	}
}

func TestDeadbandAndSelection(t *testing.T) {
	l := mustLink(t, `links:
  - name: a
    type: mqtt
    broker: 'tcp://h:1'
    deadband: 0.5
    select:
      - {channel: 1, types: [T], points: [1, 2]}
      - {instance: 3}
`)
	s := newSelector(l)
	m := &statestore.Message{TS: 5, V: map[string]float64{"1": 10, "2": 20, "3": 30}}
	got := s.samples("comsrv:1:T", m)
	if len(got) != 2 || got[0].Point != 1 || got[1].Point != 2 {
		t.Fatalf("selected %+v", got)
	}
	if s.samples("comsrv:1:S", m) != nil && len(s.samples("comsrv:1:S", m)) != 0 {
		t.Fatal("signal selected")
	}
	if n := len(s.samples("inst:3:M", m)); n != 3 {
		t.Fatalf("instance 3: %d samples", n)
	}
	if len(s.samples("alarm:events", m)) != 0 {
		t.Fatal("a foreign key yields samples")
	}
	pass := func(v float64, q string) bool {
		return s.pass(Sample{Kind: KindChannel, Source: 1, Type: "T", Point: 1, Value: v, Quality: q})
	}
	for i, c := range []struct {
		v    float64
		q    string
		want bool
	}{{10, "good", true}, {10.4, "good", false}, {10.6, "good", true}, {10.7, "stale", true}, {10.7, "stale", false}, {10.1, "stale", true}} {
		if got := pass(c.v, c.q); got != c.want {
			t.Errorf("step %d: pass(%v, %s) = %v", i, c.v, c.q, got)
		}
	}
}

func TestLatestPerPoint(t *testing.T) {
	in := []tagged{
		{Sample: Sample{Name: "a", Point: 1, Value: 1}}, {Sample: Sample{Name: "b", Point: 2, Value: 1}},
		{Sample: Sample{Name: "a", Point: 1, Value: 2}},
	}
	out := latestPerPoint(in)
	if len(out) != 2 || out[0].Name != "b" || out[1].Value != 2 {
		t.Fatalf("%+v", out)
	}
}

func TestStreamIDOrder(t *testing.T) {
	a, _ := parseStreamID("1000-5")
	b, _ := parseStreamID("1000-12")
	c, _ := parseStreamID("999-99")
	if !a.less(b) || !c.less(a) || b.less(a) {
		t.Fatal("stream id order")
	}
	if _, ok := parseStreamID("x-1"); ok {
		t.Fatal("parsed a bad id")
	}
}

// A shadow update larger than max_payload is split, not dropped.
func TestShadowSplitsUnderMaxPayload(t *testing.T) {
	l := mustLink(t, "links:\n  - {name: a, type: aws_iot, broker: 'tls://h:1', aws: {thing: t1, shadow: true}, tls: {cert: c, key: k}, max_payload: 600}\n")
	e := &encoder{site: "s", link: "a", cfg: l}
	msgs, _, err := e.build(samplesOf(100, func(int) string { return "1-0" }), []string{"1-0"})
	if err != nil {
		t.Fatal(err)
	}
	reported := map[string]float64{}
	shadows := 0
	for _, m := range msgs {
		if len(m.Payload) > 600 {
			t.Fatalf("%d bytes on %s", len(m.Payload), m.Topic)
		}
		if m.Topic != AWSShadowTopic("t1") {
			continue
		}
		shadows++
		var doc struct {
			State struct {
				Reported map[string]float64 `json:"reported"`
			} `json:"state"`
		}
		if err := json.Unmarshal(m.Payload, &doc); err != nil {
			t.Fatal(err)
		}
		for k, v := range doc.State.Reported {
			reported[k] = v
		}
	}
	if shadows < 2 || len(reported) != 100 {
		t.Fatalf("%d shadow updates report %d points, want several reporting 100", shadows, len(reported))
	}
}
