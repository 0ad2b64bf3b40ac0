package point

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestParseTypeAcceptsEverySpelling(t *testing.T) {
	cases := map[Type][]string{
		Telemetry:  {"T", "t", "YC", "yc", "Yc", "telemetry", "TELEMETRY", "Telemetry", " T ", "\tyc\n"},
		Signal:     {"S", "s", "YX", "yx", "signal", "Signal", "  SIGNAL"},
		Control:    {"C", "c", "YK", "yK", "control", "CONTROL "},
		Adjustment: {"A", "a", "YT", "yt", "adjustment", "Adjustment"},
	}
	for want, spellings := range cases {
		for _, s := range spellings {
			got, err := ParseType(s)
			if err != nil {
				t.Errorf("ParseType(%q): %v", s, err)
				continue
			}
			if got != want {
				t.Errorf("ParseType(%q) = %v, want %v", s, got, want)
			}
		}
	}
}

func TestParseTypeRejectsOthers(t *testing.T) {
	for _, s := range []string{"", " ", "X", "Y", "YY", "tele", "telemetry1", "T S", "measurement", "0", "\x00"} {
		got, err := ParseType(s)
		if err == nil {
			t.Errorf("ParseType(%q) = %v, want an error", s, got)
			continue
		}
		msg := err.Error()
		// The message must quote the input and say what is accepted, so an operator
		// can fix a CSV cell without reading the code.
		for _, want := range []string{strconv.Quote(s), "T/S/C/A", "YC/YX/YK/YT", "telemetry", "signal", "control", "adjustment"} {
			if !strings.Contains(msg, want) {
				t.Errorf("ParseType(%q) error %q does not mention %q", s, msg, want)
			}
		}
	}
}

func TestTypeMethods(t *testing.T) {
	cases := []struct {
		typ               Type
		letter, name      string
		writable, digital bool
	}{
		{Telemetry, "T", "telemetry", false, false},
		{Signal, "S", "signal", false, true},
		{Control, "C", "control", true, true},
		{Adjustment, "A", "adjustment", true, false},
	}
	for i, c := range cases {
		if Types[i] != c.typ {
			t.Errorf("Types[%d] = %v, want %v (canonical order T, S, C, A)", i, Types[i], c.typ)
		}
		if got := c.typ.String(); got != c.letter {
			t.Errorf("%v.String() = %q, want %q", c.typ, got, c.letter)
		}
		if got := c.typ.Name(); got != c.name {
			t.Errorf("%v.Name() = %q, want %q", c.typ, got, c.name)
		}
		if !c.typ.Valid() {
			t.Errorf("%v.Valid() = false", c.typ)
		}
		if got := c.typ.Writable(); got != c.writable {
			t.Errorf("%v.Writable() = %v, want %v", c.typ, got, c.writable)
		}
		if got := c.typ.Digital(); got != c.digital {
			t.Errorf("%v.Digital() = %v, want %v", c.typ, got, c.digital)
		}
		// The long name parses back to the same type.
		if back, err := ParseType(c.typ.Name()); err != nil || back != c.typ {
			t.Errorf("ParseType(%q) = %v, %v; want %v", c.typ.Name(), back, err, c.typ)
		}
	}
	for _, bad := range []Type{0, 'X', 't'} {
		if bad.Valid() || bad.Writable() || bad.Digital() {
			t.Errorf("Type %q: Valid/Writable/Digital must all be false", byte(bad))
		}
		if got := bad.Name(); got != "unknown" {
			t.Errorf("Type %q.Name() = %q, want unknown", byte(bad), got)
		}
	}
}

func TestTypeTextRoundTrip(t *testing.T) {
	for _, typ := range Types {
		b, err := typ.MarshalText()
		if err != nil {
			t.Fatalf("%v.MarshalText: %v", typ, err)
		}
		if string(b) != typ.String() {
			t.Errorf("%v.MarshalText() = %q, want the letter %q", typ, b, typ.String())
		}
		var back Type
		if err := back.UnmarshalText(b); err != nil {
			t.Fatalf("UnmarshalText(%q): %v", b, err)
		}
		if back != typ {
			t.Errorf("UnmarshalText(%q) = %v, want %v", b, back, typ)
		}
	}
	// UnmarshalText takes every spelling ParseType does ...
	var typ Type
	if err := typ.UnmarshalText([]byte(" yt ")); err != nil || typ != Adjustment {
		t.Errorf("UnmarshalText(\" yt \") = %v, %v; want A", typ, err)
	}
	// ... and leaves the value alone on error.
	typ = Signal
	if err := typ.UnmarshalText([]byte("nope")); err == nil {
		t.Error("UnmarshalText(\"nope\") succeeded")
	}
	if typ != Signal {
		t.Errorf("failed UnmarshalText changed the value to %v", typ)
	}
}

func TestQualityNamesAndRoundTrip(t *testing.T) {
	want := map[Quality]string{Good: "good", Stale: "stale", Invalid: "invalid", CommLost: "comm_lost"}
	for q, name := range want {
		if got := q.String(); got != name {
			t.Errorf("Quality(%d).String() = %q, want %q", q, got, name)
		}
		back, err := ParseQuality(name)
		if err != nil || back != q {
			t.Errorf("ParseQuality(%q) = %v, %v; want %v", name, back, err, q)
		}
		b, err := q.MarshalText()
		if err != nil || string(b) != name {
			t.Errorf("%v.MarshalText() = %q, %v; want %q", q, b, err, name)
		}
		var u Quality
		if err := u.UnmarshalText(b); err != nil || u != q {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", b, u, err, q)
		}
	}
	if got := Quality(200).String(); got != "unknown" {
		t.Errorf("Quality(200).String() = %q, want unknown", got)
	}
	for _, bad := range []string{"", "unknown", "ok", "commlost", "comm-lost"} {
		if q, err := ParseQuality(bad); err == nil {
			t.Errorf("ParseQuality(%q) = %v, want an error", bad, q)
		} else if !strings.Contains(err.Error(), strconv.Quote(bad)) {
			t.Errorf("ParseQuality(%q) error %q does not quote the input", bad, err)
		}
	}
	q := Stale
	if err := q.UnmarshalText([]byte("bogus")); err == nil || q != Stale {
		t.Errorf("UnmarshalText(bogus) = %v, err %v; want an error and the value unchanged", q, err)
	}
}

func TestFormatValue(t *testing.T) {
	tenth, fifth := 0.1, 0.2
	cases := []struct {
		v    float64
		want string
	}{
		{0, "0"},
		{1, "1"},
		{-1, "-1"},
		{0.1, "0.1"},
		{tenth + fifth, "0.30000000000000004"}, // float64 sum, not the exact constant 0.3
		{123.456, "123.456"},
		{-123.456, "-123.456"},
		{1e21, "1000000000000000000000"},
		{1e-7, "0.0000001"},
		{65535, "65535"},
		{-2147483648, "-2147483648"},
		{math.MaxInt64, "9223372036854776000"}, // shortest text of the float64 nearest 2^63-1
		{5e-324, "0." + strings.Repeat("0", 323) + "5"},
		// -0 keeps its sign: the text parses back to -0, so the round trip is exact.
		{math.Copysign(0, -1), "-0"},
	}
	for _, c := range cases {
		if got := FormatValue(c.v); got != c.want {
			t.Errorf("FormatValue(%v) = %q, want %q", c.v, got, c.want)
		}
	}
}

// TestFormatValueRoundTrips checks, over many magnitudes, that the text has no
// exponent and parses back to exactly the same float64 (sign of zero included).
func TestFormatValueRoundTrips(t *testing.T) {
	values := []float64{0, math.Copysign(0, -1), math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64}
	for e := -30; e <= 30; e++ {
		for _, m := range []float64{1, 1.5, 3.141592653589793, 9.999999999999998, 7.1e-3} {
			values = append(values, m*math.Pow(10, float64(e)), -m*math.Pow(10, float64(e)))
		}
	}
	for _, v := range values {
		s := FormatValue(v)
		if strings.ContainsAny(s, "eE") {
			t.Errorf("FormatValue(%v) = %q has an exponent", v, s)
		}
		back, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Errorf("FormatValue(%v) = %q does not parse: %v", v, s, err)
			continue
		}
		if math.Float64bits(back) != math.Float64bits(v) {
			t.Errorf("FormatValue(%v) = %q parses back to %v", v, s, back)
		}
		// Shortest: no trailing zeros after a decimal point.
		if strings.Contains(s, ".") && strings.HasSuffix(s, "0") {
			t.Errorf("FormatValue(%v) = %q has trailing zeros", v, s)
		}
	}
}
