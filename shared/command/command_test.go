package command

import (
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/voltageems/voltage/shared/point"
)

func TestFieldsParseRoundTrip(t *testing.T) {
	cmds := []Command{
		{ID: "c1", Channel: 1, Type: point.Control, Point: 3, Value: 1, Source: "api", User: "alice", TS: 1717000000000, Expires: 1717000005000},
		{ID: "c2", Channel: 4294967295, Type: point.Adjustment, Point: 4294967295, Value: 0.1, Source: "rule", User: "", TS: 1, Expires: 0},
		{ID: "c3", Channel: 7, Type: point.Adjustment, Point: 0, Value: -123.456, TS: 0},
		{ID: "c4", Channel: 7, Type: point.Adjustment, Point: 9, Value: 1e21, Source: "cloud", User: "ops@example.com"},
		{ID: "c5", Channel: 7, Type: point.Adjustment, Point: 9, Value: math.Copysign(0, -1)},
	}
	for _, c := range cmds {
		f := c.Fields()
		for k, v := range f {
			if _, ok := v.(string); !ok {
				t.Errorf("%s: field %s is %T, want string (stream fields are text)", c.ID, k, v)
			}
		}
		got, err := Parse(c.Channel, "1-0", f)
		if err != nil {
			t.Errorf("%s: Parse(Fields()) = %v", c.ID, err)
			continue
		}
		if got != c || math.Signbit(got.Value) != math.Signbit(c.Value) {
			t.Errorf("round trip of %+v gave %+v", c, got)
		}
	}
}

func TestParseDefaults(t *testing.T) {
	// Only the required fields: no id, source, user, ts or expires.
	got, err := Parse(5, "1717000000000-3", map[string]any{"type": "YT", "point": "8", "value": "42.5"})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := Command{ID: "1717000000000-3", Channel: 5, Type: point.Adjustment, Point: 8, Value: 42.5}
	if got != want {
		t.Errorf("Parse = %+v, want %+v", got, want)
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	valid := func() map[string]any {
		return map[string]any{"id": "", "type": "C", "point": "3", "value": "1", "ts": "1717000000000", "expires": "1717000060000"}
	}
	cases := []struct {
		field, value string
	}{
		{"type", ""},
		{"type", "X"},
		{"point", ""},
		{"point", "abc"},
		{"point", "-1"},
		{"point", "4294967296"}, // does not fit a point id
		{"point", "3.5"},
		{"value", ""},
		{"value", "on"},
		{"value", "1e400"}, // out of float64 range
		{"ts", "yesterday"},
		{"ts", "1.5"},
		{"expires", "soon"},
	}
	for _, c := range cases {
		f := valid()
		f[c.field] = c.value
		got, err := Parse(2, "1717000000000-0", f)
		if err == nil {
			t.Errorf("Parse with %s=%q succeeded: %+v", c.field, c.value, got)
			continue
		}
		if !strings.HasPrefix(err.Error(), "field "+c.field+":") {
			t.Errorf("Parse with %s=%q: error %q does not start with \"field %s:\"", c.field, c.value, err, c.field)
		}
		// comsrv records a rejection in cmd:{id}, so the id must survive a bad entry.
		if got.ID != "1717000000000-0" {
			t.Errorf("Parse with %s=%q: ID = %q, want the stream id", c.field, c.value, got.ID)
		}
	}

	// A missing field is as wrong as a bad one.
	f := valid()
	delete(f, "point")
	if _, err := Parse(2, "9-0", f); err == nil || !strings.HasPrefix(err.Error(), "field point:") {
		t.Errorf("Parse without point: error %v, want one naming field point", err)
	}
	// An explicit id wins over the stream id, also on error.
	f = valid()
	f["id"], f["type"] = "mine", "bogus"
	if got, err := Parse(2, "9-0", f); err == nil || got.ID != "mine" {
		t.Errorf("Parse with id mine and a bad type = %+v, %v; want ID mine and an error", got, err)
	}
}

// TestParseRejectsNonFiniteValue: strconv.ParseFloat accepts "NaN", "Inf" and
// "-Infinity" without error, and NaN compares false against both min_value and
// max_value, so comsrv's limit check could not catch it: Parse itself must refuse
// a non-finite value.
func TestParseRejectsNonFiniteValue(t *testing.T) {
	for _, v := range []string{"NaN", "nan", "Inf", "+Inf", "-Inf", "infinity", "-Infinity"} {
		f := map[string]any{"id": "x", "type": "A", "point": "1", "value": v}
		got, err := Parse(1, "1-0", f)
		if err == nil {
			t.Errorf("Parse accepted value %q as %v; a command value must be a finite number", v, got.Value)
			continue
		}
		if !strings.HasPrefix(err.Error(), "field value:") {
			t.Errorf("Parse with value %q: error %q does not name field value", v, err)
		}
	}
}

func TestDeadline(t *testing.T) {
	cases := []struct {
		name string
		c    Command
		want int64
	}{
		{"explicit expiry", Command{TS: 1000, Expires: 5000}, 5000},
		{"explicit expiry before ts still wins", Command{TS: 9000, Expires: 5000}, 5000},
		{"ts plus default max age", Command{TS: 1000}, 1000 + DefaultMaxAge.Milliseconds()},
		{"neither: never expires", Command{}, 0},
		{"expiry without ts", Command{Expires: 7}, 7},
	}
	for _, c := range cases {
		if got := c.c.Deadline(); got != c.want {
			t.Errorf("%s: Deadline() = %d, want %d", c.name, got, c.want)
		}
	}
	if DefaultMaxAge.Milliseconds() != 60000 {
		t.Errorf("DefaultMaxAge = %v, the contract says 60 s", DefaultMaxAge)
	}
}

func TestStatusFinal(t *testing.T) {
	want := map[Status]bool{
		Pending: false, Executing: false,
		OK: true, Failed: true, Expired: true, Rejected: true,
		"": false, "done": false, "OK": false,
	}
	for s, final := range want {
		if got := s.Final(); got != final {
			t.Errorf("Status(%q).Final() = %v, want %v", s, got, final)
		}
	}
}

func TestNewID(t *testing.T) {
	hex24 := regexp.MustCompile(`^[0-9a-f]{24}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := NewID()
		if !hex24.MatchString(id) {
			t.Fatalf("NewID() = %q, want 24 lowercase hex digits", id)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
}
