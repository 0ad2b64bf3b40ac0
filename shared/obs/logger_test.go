package obs

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestNewLoggerLevels(t *testing.T) {
	// Each level lets its own messages and the more severe ones through.
	cases := []struct {
		level   string
		written []string // messages expected among debug, info, warn, error
	}{
		{"debug", []string{"d", "i", "w", "e"}},
		{"info", []string{"i", "w", "e"}},
		{"warn", []string{"w", "e"}},
		{"error", []string{"e"}},
		{" INFO ", []string{"i", "w", "e"}}, // case and surrounding space do not matter
		{"Warn", []string{"w", "e"}},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		log, err := NewLogger(&buf, c.level, "text")
		if err != nil {
			t.Fatalf("NewLogger(level %q): %v", c.level, err)
		}
		log.Debug("d")
		log.Info("i")
		log.Warn("w")
		log.Error("e")
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if i := strings.Index(line, "msg="); i >= 0 {
				got = append(got, line[i+len("msg="):])
			}
		}
		if strings.Join(got, ",") != strings.Join(c.written, ",") {
			t.Errorf("level %q wrote %v, want %v; output:\n%s", c.level, got, c.written, buf.String())
		}
	}
}

func TestNewLoggerFormats(t *testing.T) {
	for _, format := range []string{"", "text"} {
		var buf bytes.Buffer
		log, err := NewLogger(&buf, "info", format)
		if err != nil {
			t.Fatalf("NewLogger(format %q): %v", format, err)
		}
		log.Info("hello", "channel", 7)
		out := buf.String()
		if !strings.Contains(out, "level=INFO") || !strings.Contains(out, "msg=hello") || !strings.Contains(out, "channel=7") {
			t.Errorf("format %q: output %q is not slog text with the message and its field", format, out)
		}
	}

	var buf bytes.Buffer
	log, err := NewLogger(&buf, "info", "json")
	if err != nil {
		t.Fatalf("NewLogger(format json): %v", err)
	}
	log.Info("hello", "channel", 7)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("json output %q does not parse: %v", buf.String(), err)
	}
	if rec["msg"] != "hello" || rec["level"] != "INFO" || rec["channel"] != float64(7) {
		t.Errorf("json record = %v, want msg hello, level INFO, channel 7", rec)
	}
}

func TestNewLoggerRejectsBadSettings(t *testing.T) {
	cases := []struct {
		level, format string
		mention       []string // the bad value and what would be accepted
	}{
		{"verbose", "text", []string{`"verbose"`, "debug", "info", "warn", "error"}},
		{"", "text", []string{`""`, "debug"}},
		{"info", "xml", []string{`"xml"`, "text", "json"}},
		{"info", "JSON ", []string{`"JSON "`, "text", "json"}},
	}
	for _, c := range cases {
		log, err := NewLogger(&bytes.Buffer{}, c.level, c.format)
		if err == nil {
			t.Errorf("NewLogger(level %q, format %q) = %v, want an error", c.level, c.format, log)
			continue
		}
		if log != nil {
			t.Errorf("NewLogger(level %q, format %q) returned a logger with its error", c.level, c.format)
		}
		for _, m := range c.mention {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("NewLogger(level %q, format %q) error %q does not mention %s", c.level, c.format, err, m)
			}
		}
	}
}
