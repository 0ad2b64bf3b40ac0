package voltctl

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/voltageems/voltage/shared/point"
)

// table writes aligned columns; call Flush when done.
func table(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// writeJSON prints v as indented JSON and returns the exit code.
func (e *env) writeJSON(v any) int {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return e.fail(ExitFailure, "write JSON: %v", err)
	}
	return ExitOK
}

// since renders how long ago the Unix ms time was ("1.2s ago"); "never" for 0.
func since(ms int64, now time.Time) string {
	if ms <= 0 {
		return "never"
	}
	d := now.Sub(time.UnixMilli(ms))
	if d < 0 {
		return "in " + duration(-d) // a clock ahead of ours
	}
	return duration(d) + " ago"
}

// duration renders d with the precision an operator reads: tenths of a second
// under a minute, then whole units.
func duration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

// orDash prints "-" for an empty cell, so columns stay readable.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// jsonNumber is a stored value as a JSON number, or null when it is absent or
// not a number. The stored text is kept as is: it already is the shortest
// round-trip decimal.
func jsonNumber(s string) *json.Number {
	if _, err := strconv.ParseFloat(s, 64); err != nil {
		return nil
	}
	n := json.Number(s)
	return &n
}

func parseChannel(s string) (uint32, error) {
	id, err := strconv.ParseUint(s, 10, 32)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("channel %q: want a channel id (a number > 0)", s)
	}
	return uint32(id), nil
}

func parsePointID(s string) (point.ID, error) {
	id, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("point %q: want a point id (a number)", s)
	}
	return point.ID(id), nil
}

func parseInt(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
