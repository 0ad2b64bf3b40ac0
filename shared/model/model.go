// Package model is the thing model of a site (DESIGN §3, modsrv/): products
// (what kinds of things there are, with their properties, measurements and
// actions), instances (the things of this site), the routing between instance
// points and channel points, and the calculated measurements.
//
// Load reads modsrv/ of a site folder and checks it against the site's channels
// as a whole: every error is reported with file, line and column, and a caller
// gets a complete, consistent Model or none. modsrv runs the model; rulesrv,
// alarmsrv, the gateway and voltctl read it.
package model

import (
	"sort"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/expression"
	"github.com/voltageems/voltage/shared/point"
)

// Value types of properties and points.
const (
	TypeFloat  = "float"
	TypeInt    = "int"
	TypeBool   = "bool"
	TypeString = "string" // properties only
)

// Product is a thing model: the properties, measurements and actions every
// instance of it has.
type Product struct {
	ID          string        `yaml:"id" json:"id"`
	Name        string        `yaml:"name" json:"name"`
	Description string        `yaml:"description" json:"description,omitempty"`
	Parent      string        `yaml:"parent" json:"parent,omitempty"` // the product its instances hang under
	Properties  []PropertyDef `yaml:"properties" json:"properties"`
	// Measurements (M) are read from devices or calculated.
	Measurements []PointDef `yaml:"measurements" json:"measurements"`
	// Actions (A) are commands to the instance, routed to channel C/A points.
	Actions []PointDef `yaml:"actions" json:"actions"`

	BuiltIn bool            `yaml:"-" json:"built_in"`
	Pos     config.Position `yaml:"-" json:"-"`
}

// PropertyDef is a fixed attribute of an instance (rated power, model, ...).
type PropertyDef struct {
	Name        string `yaml:"name" json:"name"`
	Type        string `yaml:"type" json:"type"` // float (default), int, bool, string
	Unit        string `yaml:"unit" json:"unit,omitempty"`
	Default     any    `yaml:"default" json:"default,omitempty"`
	Description string `yaml:"description" json:"description,omitempty"`
}

// PointDef is a measurement or an action of a product.
type PointDef struct {
	ID          uint32   `yaml:"id" json:"id"`
	Name        string   `yaml:"name" json:"name"`
	Type        string   `yaml:"type" json:"type"` // float (default), int, bool
	Unit        string   `yaml:"unit" json:"unit,omitempty"`
	Description string   `yaml:"description" json:"description,omitempty"`
	Min         *float64 `yaml:"min" json:"min,omitempty"` // actions only
	Max         *float64 `yaml:"max" json:"max,omitempty"`
	Step        *float64 `yaml:"step" json:"step,omitempty"`
}

// Measurement returns the measurement with the id, or nil.
func (p *Product) Measurement(id uint32) *PointDef { return findPoint(p.Measurements, id) }

// Action returns the action with the id, or nil.
func (p *Product) Action(id uint32) *PointDef { return findPoint(p.Actions, id) }

// MeasurementByName returns the measurement with the name, or nil.
func (p *Product) MeasurementByName(name string) *PointDef {
	return findPointName(p.Measurements, name)
}

// ActionByName returns the action with the name, or nil.
func (p *Product) ActionByName(name string) *PointDef { return findPointName(p.Actions, name) }

// Property returns the property definition with the name, or nil.
func (p *Product) Property(name string) *PropertyDef {
	for i := range p.Properties {
		if p.Properties[i].Name == name {
			return &p.Properties[i]
		}
	}
	return nil
}

func findPoint(ps []PointDef, id uint32) *PointDef {
	for i := range ps {
		if ps[i].ID == id {
			return &ps[i]
		}
	}
	return nil
}

func findPointName(ps []PointDef, name string) *PointDef {
	for i := range ps {
		if ps[i].Name == name {
			return &ps[i]
		}
	}
	return nil
}

// Instance is one thing of the site.
type Instance struct {
	ID          uint32
	Name        string
	Product     *Product
	Parent      *Instance // nil at the top
	Description string
	// Properties holds every property that has a value (from instances.yaml or the
	// product's default): float64, int, bool or string.
	Properties map[string]any
	Pos        config.Position
}

// Route connects an instance point and a channel point: a measurement (M) read
// from a T/S point, or an action (A) written to a C/A point.
type Route struct {
	Instance     *Instance
	Kind         point.Type // 'M' for a measurement, 'A' for an action (the letters of the inst:{id}: keys)
	Point        uint32     // measurement or action id
	Channel      uint32
	ChannelType  point.Type
	ChannelPoint point.ID
	Description  string
	Pos          config.Position
}

// Measurement and Action are the two instance point kinds of a route.
const (
	Measurement point.Type = 'M'
	Action      point.Type = 'A'
)

// Calculation is a calculated measurement of an instance.
type Calculation struct {
	Name        string
	Instance    *Instance
	Point       uint32 // the measurement it writes
	Expression  string
	Description string
	Program     *expression.Program
	// Inputs are the instance measurements the expression reads, as Program.Inputs
	// names them.
	Inputs []PointRef
	Pos    config.Position
}

// PointRef names a point of an instance.
type PointRef struct {
	Instance uint32 `json:"instance"`
	Point    uint32 `json:"point"`
}

// ChannelPointRef names a point of a channel.
type ChannelPointRef struct {
	Channel uint32     `json:"channel"`
	Type    point.Type `json:"type"`
	Point   point.ID   `json:"point"`
	Name    string     `json:"name,omitempty"`
}

// Report lists what the model leaves unused. None of it stops a load, and none of
// it is silently ignored: modsrv logs it at start and serves it on /validation.
type Report struct {
	// UnroutedChannelPoints are T/S points of enabled channels no instance reads.
	UnroutedChannelPoints []ChannelPointRef `json:"unrouted_channel_points"`
	// UnroutedMeasurements have neither a route nor a calculation: they never get a value.
	UnroutedMeasurements []InstancePoint `json:"unrouted_measurements"`
	// UnroutedActions have no route: commanding them is rejected.
	UnroutedActions []InstancePoint `json:"unrouted_actions"`
	// Warnings are positioned remarks ("file:line:col: message").
	Warnings []string `json:"warnings"`
}

// InstancePoint names an instance point for reports.
type InstancePoint struct {
	Instance string `json:"instance"`
	Point    uint32 `json:"point"`
	Name     string `json:"name"`
}

// Model is everything loaded from a site's modsrv/ folder.
type Model struct {
	Dir          string
	Products     map[string]*Product
	Instances    []*Instance // by id
	Routes       []*Route    // in file order, instance by instance
	Calculations []*Calculation
	// Order is the calculations in topological order: every calculation comes after
	// those whose outputs it reads.
	Order  []*Calculation
	Report Report

	byID    map[uint32]*Instance
	byName  map[string]*Instance
	inputs  map[ChannelPointRef][]*Route // T/S channel point → measurement routes
	actions map[PointRef]*Route
	meas    map[PointRef]*Route
	calcOut map[PointRef]*Calculation
	// rejected names instances.yaml entries that were reported wrong.
	rejected map[string]bool
}

// Instance returns the instance with the id, or nil.
func (m *Model) Instance(id uint32) *Instance { return m.byID[id] }

// InstanceByName returns the instance with the name, or nil.
func (m *Model) InstanceByName(name string) *Instance { return m.byName[name] }

// MeasurementRoutes returns the routes that read the channel point.
func (m *Model) MeasurementRoutes(ch uint32, t point.Type, id point.ID) []*Route {
	return m.inputs[ChannelPointRef{Channel: ch, Type: t, Point: id}]
}

// MeasurementRoute returns the route feeding an instance measurement, or nil.
func (m *Model) MeasurementRoute(inst, id uint32) *Route {
	return m.meas[PointRef{inst, id}]
}

// ActionRoute returns the route of an instance action, or nil.
func (m *Model) ActionRoute(inst, id uint32) *Route { return m.actions[PointRef{inst, id}] }

// CalculationOf returns the calculation writing an instance measurement, or nil.
func (m *Model) CalculationOf(inst, id uint32) *Calculation { return m.calcOut[PointRef{inst, id}] }

// RoutedChannels lists the channels and types (T/S) measurement routes read, sorted.
func (m *Model) RoutedChannels() []ChannelPointRef {
	seen := map[ChannelPointRef]bool{}
	var out []ChannelPointRef
	for k := range m.inputs {
		c := ChannelPointRef{Channel: k.Channel, Type: k.Type}
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Channel != out[j].Channel {
			return out[i].Channel < out[j].Channel
		}
		return out[i].Type < out[j].Type
	})
	return out
}

// ProductIDs lists the product ids, sorted.
func (m *Model) ProductIDs() []string {
	ids := make([]string, 0, len(m.Products))
	for id := range m.Products {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
