package model

import (
	"testing"

	"github.com/voltageems/voltage/shared/config"
)

// demoSite is the repository's example site (config/).
const demoSite = "../../config"

func loadDemo(t *testing.T) *Model {
	t.Helper()
	chans, err := config.Load(demoSite)
	if err != nil {
		t.Fatalf("demo site channels: %v", err)
	}
	m, err := Load(demoSite, chans)
	if err != nil {
		t.Fatalf("demo site model:\n%v", err)
	}
	return m
}

func TestDemoSiteLoads(t *testing.T) {
	m := loadDemo(t)
	t.Log(m.Summary())
	if len(m.Products) != 10 || len(m.Instances) != 6 {
		t.Fatalf("%s; want 10 products and 6 instances", m.Summary())
	}
	st := m.InstanceByName("station")
	if st == nil || st.Properties["rated_power"] != 250.0 {
		t.Fatalf("station: %+v", st)
	}
	if pv := m.InstanceByName("pv1"); pv.Parent != st || pv.Properties["mppt_channels"] != 2 {
		t.Fatalf("pv1: parent %v, properties %v", pv.Parent, pv.Properties)
	}
	routes := m.MeasurementRoutes(1, 'T', 1)
	if len(routes) != 1 || routes[0].Instance.Name != "pv1" || routes[0].Point != 1 {
		t.Fatalf("routes of channel 1 T1: %+v", routes)
	}
	if rt := m.ActionRoute(4, 1); rt == nil || rt.Channel != 2 || rt.ChannelType != 'A' || rt.ChannelPoint != 1 {
		t.Fatalf("pcs1 action 1 route: %+v", rt)
	}
	if len(m.Order) != len(m.Calculations) {
		t.Fatalf("order has %d of %d calculations", len(m.Order), len(m.Calculations))
	}
	pos := map[string]int{}
	for i, c := range m.Order {
		pos[c.Name] = i
	}
	if !(pos["station_pv_power"] < pos["station_load_power"] && pos["station_load_power"] < pos["station_self_sufficiency"]) {
		t.Fatalf("order: %v", pos)
	}
	orphan := false // the virtual channel's test signal is read by no instance
	for _, p := range m.Report.UnroutedChannelPoints {
		if p.Channel == 1 || p.Channel == 2 || p.Channel == 3 {
			t.Errorf("channel point %+v of a modelled device is not routed", p)
		}
		orphan = orphan || p == ChannelPointRef{Channel: 10, Type: 'T', Point: 1, Name: "test_signal"}
	}
	if !orphan {
		t.Fatalf("channel 10's test signal is not reported: %+v", m.Report.UnroutedChannelPoints)
	}
	if len(m.Report.UnroutedActions) == 0 {
		t.Fatal("ess1's actions are not routed and not reported")
	}
}
