package model

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
)

// Files of modsrv/ in a site folder.
const (
	Folder           = "modsrv"
	ProductsFolder   = "products"
	InstancesFile    = "instances.yaml"
	InstancesFolder  = "instances"
	CalculationsFile = "calculations.yaml"
)

// Load reads modsrv/ of the site folder siteDir and checks it against the site's
// channels. A site without the folder has the built-in products and nothing
// else. On any error it returns a *config.LoadError listing every problem found,
// each positioned file:line:col, and no Model.
func Load(siteDir string, channels *config.Config) (*Model, error) {
	if channels == nil {
		channels = &config.Config{}
	}
	dir := filepath.Join(siteDir, Folder)
	l := &errList{}
	m := &Model{
		Dir:      dir,
		byID:     map[uint32]*Instance{},
		byName:   map[string]*Instance{},
		inputs:   map[ChannelPointRef][]*Route{},
		actions:  map[PointRef]*Route{},
		meas:     map[PointRef]*Route{},
		calcOut:  map[PointRef]*Calculation{},
		rejected: map[string]bool{},
	}
	m.Products = loadProducts(filepath.Join(dir, ProductsFolder), l)

	path := filepath.Join(dir, InstancesFile)
	if src, ok := readOptional(path, l); ok {
		m.Instances = loadInstances(path, src, m.Products, m.rejected, l)
	}
	for _, inst := range m.Instances {
		m.byID[inst.ID], m.byName[inst.Name] = inst, inst
	}
	m.loadRouting(filepath.Join(dir, InstancesFolder), channels, l)

	path = filepath.Join(dir, CalculationsFile)
	if src, ok := readOptional(path, l); ok {
		m.loadCalculations(path, src, l)
	}
	if err := l.result(siteDir); err != nil {
		return nil, err
	}
	m.report(channels)
	return m, nil
}

// readOptional reads a file that may be missing.
func readOptional(path string, l *errList) ([]byte, bool) {
	src, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, false
	case err != nil:
		l.add(config.Position{File: path}, "cannot read: %v", err)
		return nil, false
	}
	return src, true
}

// loadRouting reads instances/{name}/channel_routing.csv of every instance.
func (m *Model) loadRouting(dir string, chans *config.Config, l *errList) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return
	case err != nil:
		l.add(config.Position{File: dir}, "cannot read: %v", err)
		return
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if !e.IsDir() {
			m.Report.Warnings = append(m.Report.Warnings, path+": not read: the folder holds one folder per instance")
			continue
		}
		inst := m.byName[e.Name()]
		if inst == nil && m.rejected[e.Name()] {
			continue // its entry in instances.yaml is reported
		}
		if inst == nil {
			l.add(config.Position{File: path}, "folder of instance %q, which instances.yaml does not define", e.Name())
			continue
		}
		files, _ := os.ReadDir(path)
		for _, f := range files {
			if f.Name() != RoutingFile {
				m.Report.Warnings = append(m.Report.Warnings, filepath.Join(path, f.Name())+": not read: an instance folder holds "+RoutingFile)
			}
		}
		file := filepath.Join(path, RoutingFile)
		src, ok := readOptional(file, l)
		if !ok {
			continue
		}
		for _, rt := range parseRouting(file, src, inst, chans, l) {
			m.addRoute(rt)
		}
	}
}

func (m *Model) addRoute(rt *Route) {
	m.Routes = append(m.Routes, rt)
	ref := PointRef{rt.Instance.ID, rt.Point}
	if rt.Kind == Action {
		m.actions[ref] = rt
		return
	}
	m.meas[ref] = rt
	k := ChannelPointRef{Channel: rt.Channel, Type: rt.ChannelType, Point: rt.ChannelPoint}
	m.inputs[k] = append(m.inputs[k], rt)
}

// report lists what the model leaves unused.
func (m *Model) report(chans *config.Config) {
	r := &m.Report
	for _, ch := range chans.Channels {
		if !ch.Enabled {
			continue
		}
		for _, t := range []point.Type{point.Telemetry, point.Signal} {
			for _, p := range ch.Points[t] {
				if len(m.inputs[ChannelPointRef{Channel: ch.ID, Type: t, Point: p.ID}]) == 0 {
					r.UnroutedChannelPoints = append(r.UnroutedChannelPoints, ChannelPointRef{Channel: ch.ID, Type: t, Point: p.ID, Name: p.Name})
				}
			}
		}
	}
	for _, rt := range m.Routes {
		if ch := chans.Channel(rt.Channel); ch != nil && !ch.Enabled {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s: channel %d (%s) is disabled: %s %s of %s gets no value and cannot be commanded",
				rt.Pos, rt.Channel, ch.Name, kindName(rt.Kind), pointName(rt), rt.Instance.Name))
		}
	}
	for _, inst := range m.Instances {
		for _, d := range inst.Product.Measurements {
			ref := PointRef{inst.ID, d.ID}
			if m.meas[ref] == nil && m.calcOut[ref] == nil {
				r.UnroutedMeasurements = append(r.UnroutedMeasurements, InstancePoint{Instance: inst.Name, Point: d.ID, Name: d.Name})
			}
		}
		for _, d := range inst.Product.Actions {
			if m.actions[PointRef{inst.ID, d.ID}] == nil {
				r.UnroutedActions = append(r.UnroutedActions, InstancePoint{Instance: inst.Name, Point: d.ID, Name: d.Name})
			}
		}
	}
	sort.Strings(r.Warnings)
	if r.Warnings == nil {
		r.Warnings = []string{}
	}
}

// Summary is a one-line description for logs.
func (m *Model) Summary() string {
	return fmt.Sprintf("%d products, %d instances, %d routes, %d calculations", len(m.Products), len(m.Instances), len(m.Routes), len(m.Calculations))
}

func pointName(rt *Route) string {
	if rt.Kind == Action {
		return rt.Instance.Product.Action(rt.Point).Name
	}
	return rt.Instance.Product.Measurement(rt.Point).Name
}
