package voltsim

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
)

// ProfileKind names how a point's engineering value evolves with the simulation
// clock.
type ProfileKind string

// Profile kinds. Powers share one unit per site (kW by convention) and follow the
// point tables of the demo site: battery power and setpoints are positive while
// discharging, meter power is positive while the site imports.
const (
	ProfileFixed           ProfileKind = "fixed"            // Value, until written
	ProfilePV              ProfileKind = "pv"               // daytime sine × Rated, ±2 % noise, curtailed by pv_limit
	ProfilePVLimit         ProfileKind = "pv_limit"         // written % of rated; clamps the channel's PV
	ProfileLoad            ProfileKind = "load"             // daily consumption curve × Rated, ±2 % noise
	ProfileBatterySetpoint ProfileKind = "battery_setpoint" // fixed; the battery follows it
	ProfileBatteryPower    ProfileKind = "battery_power"    // the channel's battery power (+ discharge)
	ProfileSOC             ProfileKind = "soc"              // falls with discharge over Capacity
	ProfileMeterPower      ProfileKind = "meter_power"      // Σ load − Σ PV − Σ battery (+ import), with noise
	ProfileVoltage         ProfileKind = "voltage"          // Value ± 0.5 %
	ProfileFrequency       ProfileKind = "frequency"        // Value ± 0.02
	ProfileTemperature     ProfileKind = "temperature"      // Value + 5 over the day, slow
)

var profileKinds = []ProfileKind{
	ProfileFixed, ProfilePV, ProfilePVLimit, ProfileLoad, ProfileBatterySetpoint, ProfileBatteryPower, ProfileSOC,
	ProfileMeterPower, ProfileVoltage, ProfileFrequency, ProfileTemperature,
}

// Profile is the behaviour of one point.
type Profile struct {
	Kind ProfileKind
	// Value is the fixed value (fixed, battery_setpoint), the initial state of
	// charge in % (soc), the initial PV limit in % of rated (pv_limit, 100) or the
	// nominal value (voltage, frequency, temperature).
	Value float64
	// Rated is the peak power of a PV point (reached at 12:00 sim time) or of a
	// load point (reached at 13:00).
	Rated float64
	// Capacity is the battery capacity of a soc point, in power unit × hours.
	Capacity float64
}

// Defaults of the profile parameters.
const (
	defaultPVRated         = 100.0 // kW
	defaultLoadRated       = 50.0  // kW, a load point
	defaultPVLimit         = 100.0 // %, not curtailed
	defaultBatteryCapacity = 200.0 // kWh
	defaultSOC             = 50.0  // %
	defaultPhaseVoltage    = 230.0
	defaultLineVoltage     = 400.0
	defaultDCVoltage       = 750.0 // battery pack or DC bus
	defaultCellVoltage     = 3.3   // one lithium cell
	defaultFrequency       = 50.0
	defaultTemperature     = 25.0
	defaultPowerFactor     = 0.98
)

// withDefaults fills in the parameters a kind needs and that are not set; Value is
// left alone when valueSet (an override may start a battery at 0 %).
func (p Profile) withDefaults(name string, valueSet bool) Profile {
	switch p.Kind {
	case ProfilePV:
		if p.Rated == 0 {
			p.Rated = defaultPVRated
		}
	case ProfileLoad:
		if p.Rated == 0 {
			p.Rated = defaultLoadRated
		}
	case ProfilePVLimit:
		if !valueSet {
			p.Value = defaultPVLimit
		}
	case ProfileSOC:
		if p.Capacity == 0 {
			p.Capacity = defaultBatteryCapacity
		}
		if !valueSet {
			p.Value = defaultSOC
		}
	case ProfileVoltage:
		if !valueSet {
			switch {
			case strings.Contains(name, "cell"):
				p.Value = defaultCellVoltage
			case strings.Contains(name, "dc") || strings.Contains(name, "battery") || strings.Contains(name, "pack"):
				p.Value = defaultDCVoltage
			case isLineVoltage(name):
				p.Value = defaultLineVoltage
			default:
				p.Value = defaultPhaseVoltage
			}
		}
	case ProfileFrequency:
		if !valueSet {
			p.Value = defaultFrequency
		}
	case ProfileTemperature:
		if !valueSet {
			p.Value = defaultTemperature
		}
	}
	return p
}

// guessProfile picks a profile from the point's signal_name (English or Chinese, as
// in the original VoltageEMS tables). battery says the channel has a state-of-charge
// point; pvChannel that the channel's name says it is a PV inverter. S points and
// C/A points hold their value until written, but for a battery's power setpoint
// and a PV inverter's power limit.
func guessProfile(p *config.Point, battery, pvChannel bool) Profile {
	name := normalName(p.Name)
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(name, s) {
				return true
			}
		}
		return false
	}
	// A limit named for PV is the PV limit even on a hybrid inverter's channel;
	// other limits on a PV channel only when it has no battery.
	if p.Type == point.Adjustment && isPVLimitName(name) &&
		(has("pv", "solar", "光伏") || pvChannel && !battery) {
		return Profile{Kind: ProfilePVLimit}.withDefaults(name, false)
	}
	if p.Type == point.Adjustment && battery && isPowerName(name) {
		return Profile{Kind: ProfileBatterySetpoint}
	}
	if p.Type != point.Telemetry {
		return Profile{Kind: ProfileFixed}
	}
	var k ProfileKind
	switch {
	case isSOCName(name):
		k = ProfileSOC
	case has("temp", "温度"):
		k = ProfileTemperature
	case has("freq", "频率") || name == "f" || name == "hz":
		k = ProfileFrequency
	case has("factor", "cos_phi", "cosphi", "功率因数") || name == "pf":
		return Profile{Kind: ProfileFixed, Value: defaultPowerFactor}
	case has("reactive", "apparent", "无功", "视在") || name == "q" || name == "s":
		return Profile{Kind: ProfileFixed}
	case has("volt", "电压") || isVoltageSymbol(name):
		k = ProfileVoltage
	case isLoadName(name) && (isPowerName(name) || isPowerUnit(p.Unit) || name == "load"):
		k = ProfileLoad
	case isPowerName(name):
		switch {
		case battery:
			k = ProfileBatteryPower
		case pvChannel || has("pv", "solar", "光伏"):
			k = ProfilePV
		default:
			k = ProfileMeterPower
		}
	default:
		return Profile{Kind: ProfileFixed}
	}
	return Profile{Kind: k}.withDefaults(name, false)
}

func isSOCName(name string) bool {
	return strings.Contains(name, "soc") || strings.Contains(name, "state_of_charge") ||
		strings.Contains(name, "state of charge") || strings.Contains(name, "荷电")
}

func isPowerName(name string) bool {
	return strings.Contains(name, "power") || strings.Contains(name, "功率") ||
		name == "p" || strings.HasPrefix(name, "p_") || strings.HasSuffix(name, "_p")
}

// isLoadName says a point measures the site's consumption: load, consumption,
// 负荷, 负载 — but not an energy counter, a factor or an overload.
func isLoadName(name string) bool {
	hasAny := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(name, s) {
				return true
			}
		}
		return false
	}
	return hasAny("load", "consumption", "负荷", "负载", "用电") &&
		!hasAny("energy", "kwh", "factor", "overload", "rate", "电量", "过载")
}

// isPowerUnit says a unit is one of active power.
func isPowerUnit(unit string) bool {
	switch strings.ToLower(strings.TrimSpace(unit)) {
	case "w", "kw", "mw":
		return true
	}
	return false
}

// isPVLimitName says an adjustment point limits a PV inverter's active power:
// power_limit, pv_power_limit, curtailment, 限功率 — not a reactive power,
// current or voltage limit.
func isPVLimitName(name string) bool {
	if strings.Contains(name, "reactive") || strings.Contains(name, "current") ||
		strings.Contains(name, "volt") || strings.Contains(name, "无功") {
		return false
	}
	return strings.Contains(name, "limit") || strings.Contains(name, "curtail") || strings.Contains(name, "限")
}

func isVoltageSymbol(name string) bool {
	switch name {
	case "u", "v", "ua", "ub", "uc", "uab", "ubc", "uca", "va", "vb", "vc":
		return true
	}
	return false
}

func isLineVoltage(name string) bool {
	for _, s := range []string{"line", "uab", "ubc", "uca", "线电压"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

func isPVChannel(ch *config.Channel) bool {
	n := strings.ToLower(ch.Name + " " + ch.Description)
	return strings.Contains(n, "pv") || strings.Contains(n, "solar") || strings.Contains(n, "光伏")
}

// ProfileOverride replaces the guessed profile of one point.
type ProfileOverride struct {
	Channel  uint32   `yaml:"channel"`
	Type     string   `yaml:"type"` // T/S/C/A, YC/YX/YK/YT or the long name
	Point    uint32   `yaml:"point"`
	Profile  string   `yaml:"profile"`
	Value    *float64 `yaml:"value"`
	Rated    float64  `yaml:"rated"`
	Capacity float64  `yaml:"capacity"`
}

// profileFile is the layout of a profile override file.
type profileFile struct {
	Points []ProfileOverride `yaml:"points"`
}

// LoadProfiles reads a profile override file:
//
//	points:
//	  - {channel: 3, type: T, point: 1, profile: pv, rated: 250}
//	  - {channel: 2, type: T, point: 4, profile: soc, capacity: 500, value: 80}
//	  - {channel: 2, type: A, point: 1, profile: battery_setpoint}
//	  - {channel: 1, type: A, point: 1, profile: pv_limit, value: 100}
//	  - {channel: 4, type: T, point: 2, profile: load, rated: 60}
//	  - {channel: 1, type: T, point: 9, profile: fixed, value: 42}
//
// Unknown keys are errors; the overrides are checked against the site config by New.
func LoadProfiles(path string) ([]ProfileOverride, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("profile overrides: %w", err)
	}
	var f profileFile
	dec := yaml.NewDecoder(bytes.NewReader(src), yaml.DisallowUnknownField())
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("profile overrides %s: %s", path, yaml.FormatError(err, false, true))
	}
	return f.Points, nil
}

// resolve checks an override and turns it into a point key and a profile whose
// defaults are still to be filled in (withDefaults, once the point is known).
func (o ProfileOverride) resolve() (pointKey, Profile, error) {
	t, err := point.ParseType(o.Type)
	if err != nil {
		return pointKey{}, Profile{}, fmt.Errorf("profile override for channel %d point %d: %w", o.Channel, o.Point, err)
	}
	k := ProfileKind(o.Profile)
	known := false
	for _, pk := range profileKinds {
		known = known || pk == k
	}
	if !known {
		return pointKey{}, Profile{}, fmt.Errorf("profile override for channel %d point %s%d: unknown profile %q (want one of %v)",
			o.Channel, t, o.Point, o.Profile, profileKinds)
	}
	if o.Rated < 0 || o.Capacity < 0 {
		return pointKey{}, Profile{}, fmt.Errorf("profile override for channel %d point %s%d: rated and capacity must not be negative", o.Channel, t, o.Point)
	}
	p := Profile{Kind: k, Rated: o.Rated, Capacity: o.Capacity}
	if o.Value != nil {
		p.Value = *o.Value
	}
	return pointKey{t, o.Point}, p, nil
}

// normalName is the form the heuristics match against.
func normalName(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
