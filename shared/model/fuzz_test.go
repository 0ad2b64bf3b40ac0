package model

import (
	"testing"

	"github.com/voltageems/voltage/shared/config"
)

// fuzzSite loads baseSite once for a fuzz target.
func fuzzSite(f *testing.F) (*Model, *config.Config) {
	dir := writeSite(f, baseSite, nil)
	chans, err := config.Load(dir)
	if err != nil {
		f.Fatal(err)
	}
	m, err := Load(dir, chans)
	if err != nil {
		f.Fatal(err)
	}
	return m, chans
}

// FuzzRoutingCSV feeds arbitrary routing tables to the parser: it must never
// panic, and every route it accepts must point at existing points of matching
// kinds.
func FuzzRoutingCSV(f *testing.F) {
	m, chans := fuzzSite(f)
	inst := m.InstanceByName("pv1")
	f.Add([]byte(baseSite["modsrv/instances/pv1/channel_routing.csv"]))
	f.Add([]byte("\xEF\xBB\xBFchannel_id,channel_type,channel_point_id,instance_type,instance_point_id,description\n1,YC,1,measurement,active_power,\"a, b\"\n# comment\n\n"))
	f.Add([]byte("channel_id,channel_type,channel_point_id,instance_type,instance_point_id\n1,T,1,M,1\n1,T,1,M,1\n1,X,1,M,1\n\"unterminated"))
	f.Add([]byte("instance_point_id,instance_type,channel_point_id,channel_type,channel_id\nenable,A,1,C,1\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		l := &errList{}
		routes := parseRouting("channel_routing.csv", src, inst, chans, l)
		for _, rt := range routes {
			ch := chans.Channel(rt.Channel)
			if ch == nil || ch.Point(rt.ChannelType, rt.ChannelPoint) == nil {
				t.Fatalf("route to a missing channel point: %+v", rt)
			}
			switch rt.Kind {
			case Measurement:
				if inst.Product.Measurement(rt.Point) == nil || rt.ChannelType.Writable() {
					t.Fatalf("bad measurement route: %+v", rt)
				}
			case Action:
				if inst.Product.Action(rt.Point) == nil || !rt.ChannelType.Writable() {
					t.Fatalf("bad action route: %+v", rt)
				}
			default:
				t.Fatalf("route of kind %q", rt.Kind)
			}
		}
		for _, e := range l.errs {
			if e.Pos.File != "channel_routing.csv" {
				t.Fatalf("error without the file: %v", e)
			}
		}
	})
}

// FuzzCalculations feeds arbitrary calculations.yaml files (and so arbitrary
// expressions) to the loader: it must never panic, and a load without errors
// must have every calculation in a topological order.
func FuzzCalculations(f *testing.F) {
	base, _ := fuzzSite(f)
	f.Add([]byte(baseSite["modsrv/calculations.yaml"]))
	f.Add([]byte("calculations:\n  - {name: a, instance: station, measurement: soc, expression: 'station.load_power * 2'}\n  - {name: b, instance: station, measurement: load_power, expression: station.soc}\n"))
	f.Add([]byte("calculations:\n  - name: x\n    instance: pv1\n    measurement: 10\n    expression: |\n      pv1.active_power > 0\n        ? integrate(pv1.active_power) + moving_avg(pv1.dc_voltage, 60)\n        : rate(pv1.active_power) + deadband(pv1.active_power, 1)\n"))
	f.Add([]byte("calculations:\n  - {name: y, instance: station, measurement: pv_power, expression: 'sum(\"parent:station product:pv_inverter\", \"active_power\") / 0'}\n"))
	f.Add([]byte("calculations: [{name: z, instance: pv2, measurement: load_factor, expression: '1 % 0 + len([1]) + pv2.rated_power'}]"))
	f.Fuzz(func(t *testing.T, src []byte) {
		m := &Model{Products: base.Products, Instances: base.Instances, byID: base.byID, byName: base.byName,
			inputs: base.inputs, actions: base.actions, meas: base.meas, calcOut: map[PointRef]*Calculation{}, rejected: map[string]bool{}}
		l := &errList{}
		m.loadCalculations("calculations.yaml", src, l)
		if len(l.errs) > 0 {
			return
		}
		if len(m.Order) != len(m.Calculations) {
			t.Fatalf("%d calculations, %d in order, no error", len(m.Calculations), len(m.Order))
		}
		done := map[*Calculation]bool{}
		for _, c := range m.Order {
			for _, in := range c.Inputs {
				if d := m.calcOut[in]; d != nil && !done[d] {
					t.Fatalf("%s comes before %s, whose output it reads", c.Name, d.Name)
				}
			}
			done[c] = true
			inputs := make([]float64, len(c.Inputs))
			_, _ = c.Program.Eval(1, inputs) // must not panic
		}
	})
}
