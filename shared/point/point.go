// Package point is the point model of DESIGN §2: the four point types of a channel
// ("four remotes"), the quality of a value, and a sample as it travels from a
// protocol driver to the state store.
package point

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Type is one of the four remotes. Its value is the letter used in Redis keys.
type Type byte

const (
	Telemetry  Type = 'T' // YC: analog measurement, device → system
	Signal     Type = 'S' // YX: digital status, device → system
	Control    Type = 'C' // YK: digital command, system → device
	Adjustment Type = 'A' // YT: analog setpoint, system → device
)

// Types lists the four types in their canonical order.
var Types = [...]Type{Telemetry, Signal, Control, Adjustment}

// ParseType accepts T/S/C/A, YC/YX/YK/YT and the long names, in any case.
func ParseType(s string) (Type, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "t", "yc", "telemetry":
		return Telemetry, nil
	case "s", "yx", "signal":
		return Signal, nil
	case "c", "yk", "control":
		return Control, nil
	case "a", "yt", "adjustment":
		return Adjustment, nil
	}
	return 0, fmt.Errorf("unknown point type %q (want T/S/C/A, YC/YX/YK/YT or telemetry/signal/control/adjustment)", s)
}

// String returns the letter (T, S, C or A).
func (t Type) String() string { return string(t) }

// Name returns the long name (telemetry, signal, control, adjustment).
func (t Type) Name() string {
	switch t {
	case Telemetry:
		return "telemetry"
	case Signal:
		return "signal"
	case Control:
		return "control"
	case Adjustment:
		return "adjustment"
	}
	return "unknown"
}

// Valid reports whether t is one of the four types.
func (t Type) Valid() bool {
	return t == Telemetry || t == Signal || t == Control || t == Adjustment
}

// Writable reports whether points of this type accept commands (C and A).
func (t Type) Writable() bool { return t == Control || t == Adjustment }

// Digital reports whether values of this type are booleans (S and C).
func (t Type) Digital() bool { return t == Signal || t == Control }

// MarshalText writes the letter.
func (t Type) MarshalText() ([]byte, error) { return []byte{byte(t)}, nil }

// UnmarshalText accepts everything ParseType accepts.
func (t *Type) UnmarshalText(b []byte) error {
	v, err := ParseType(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// Quality says how far a value can be trusted.
type Quality uint8

const (
	Good     Quality = iota // read successfully within the expected interval
	Stale                   // not refreshed within 3 × its poll interval
	Invalid                 // decode or range error
	CommLost                // the channel (or the device behind it) is down
)

var qualityNames = [...]string{"good", "stale", "invalid", "comm_lost"}

func (q Quality) String() string {
	if int(q) < len(qualityNames) {
		return qualityNames[q]
	}
	return "unknown"
}

// ParseQuality accepts the names String returns.
func ParseQuality(s string) (Quality, error) {
	for i, n := range qualityNames {
		if n == s {
			return Quality(i), nil
		}
	}
	return 0, fmt.Errorf("unknown quality %q", s)
}

// MarshalText writes the name.
func (q Quality) MarshalText() ([]byte, error) { return []byte(q.String()), nil }

// UnmarshalText accepts the names String returns.
func (q *Quality) UnmarshalText(b []byte) error {
	v, err := ParseQuality(string(b))
	if err != nil {
		return err
	}
	*q = v
	return nil
}

// ID identifies a point within one channel and type.
type ID = uint32

// Sample is one value of one point as a driver delivers it.
type Sample struct {
	ID      ID
	Value   float64 // engineering value: raw × scale + offset (reverse applied)
	Raw     float64 // the value as read from the device
	TS      int64   // Unix milliseconds of the sample
	Quality Quality
}

// FormatValue renders v as the shortest decimal that round-trips, without an
// exponent, which is how every value is stored in Redis.
func FormatValue(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// Engineering converts a raw device value into the engineering value. The result
// is rounded to 15 significant digits, the precision a float64 carries, so that
// 2296 × 0.1 is stored as 229.6 and not as 229.60000000000002.
func Engineering(raw, scale, offset float64, reverse bool) float64 {
	v := roundSignificant(raw*scale + offset)
	if reverse {
		if v != 0 {
			return 0
		}
		return 1
	}
	return v
}

func roundSignificant(v float64) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	r, err := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 15, 64), 64)
	if err != nil {
		return v
	}
	return r
}

// RawFromEngineering inverts Engineering for a command: the raw value to send to the
// device for engineering value v.
func RawFromEngineering(v, scale, offset float64, reverse bool) float64 {
	if reverse {
		if v != 0 {
			v = 0
		} else {
			v = 1
		}
	}
	if scale == 0 {
		return v - offset
	}
	return (v - offset) / scale
}
