package apigateway

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// FuzzPattern: any pattern string parses or is refused, never panics, and what
// parses prints back as a pattern that parses to the same thing.
func FuzzPattern(f *testing.F) {
	for _, s := range []string{"1:T:*", "*:*:*", "3:S:17", "1:X:*", "::", "4294967295:A:4294967295", "-1:T:1", "1:T:1:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePattern(s)
		if err != nil {
			return
		}
		q, err := parsePattern(patternString(p))
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", s, patternString(p), err)
		}
		if patternString(q) != patternString(p) {
			t.Fatalf("%q: %q then %q", s, patternString(p), patternString(q))
		}
	})
}

// FuzzSettings: any apigateway.yaml is loaded or refused with an error, never a panic.
func FuzzSettings(f *testing.F) {
	for _, s := range []string{"access_ttl: 1m\n", "login: {max_failures: 3}\n", "cors: {allowed_origins: [a]}\n", "websocket: {max_pending: 1e9}\n", "[", "a: &a [*a]\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		_ = os.MkdirAll(filepath.Join(dir, "apigateway"), 0o755)
		if err := os.WriteFile(filepath.Join(dir, SettingsFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _ = LoadSettings(dir)
	})
}

// FuzzAppendChanges: the hand-written changes frame is always valid JSON and
// decodes to what encoding/json would have written.
func FuzzAppendChanges(f *testing.F) {
	f.Add(uint32(1), "T", uint32(5), 1.5, "good", int64(1700000000000), uint32(0))
	f.Add(uint32(0), "", uint32(7), -0.0, "stale\"\\\x01", int64(0), uint32(3))
	f.Fuzz(func(t *testing.T, ch uint32, typ string, pt uint32, v float64, q string, ts int64, inst uint32) {
		if len(typ) != 1 || typ[0] < 'A' || typ[0] > 'Z' {
			typ = "T"
		}
		val := wsValue{Channel: ch, Type: typ, Instance: inst, Point: pt, Value: &v, Quality: q, TS: ts}
		if inst != 0 {
			val.Channel, val.Type = 0, ""
		}
		b := appendChanges(nil, map[wsKey]wsValue{{point: pt}: val})
		var got struct {
			Type   string    `json:"type"`
			Values []wsValue `json:"values"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if got.Type != "changes" || len(got.Values) != 1 {
			t.Fatalf("%s", b)
		}
		g := got.Values[0]
		// Invalid UTF-8 becomes U+FFFD, as encoding/json writes it.
		var wantQ string
		qb, _ := json.Marshal(q)
		_ = json.Unmarshal(qb, &wantQ)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			if g.Value != nil {
				t.Fatalf("%s: non-finite value not null", b)
			}
			g.Value = &v
		}
		if g.Channel != val.Channel || g.Type != val.Type || g.Instance != val.Instance || g.Point != pt ||
			*g.Value != v || g.Quality != wantQ || g.TS != ts {
			t.Fatalf("%s decoded to %+v, want %+v", b, g, val)
		}
	})
}
