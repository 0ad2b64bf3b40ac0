package hub_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/voltageems/voltage/cloud/hub"
	"github.com/voltageems/voltage/shared/auth"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/shared/uplink"
)

// TestSiteKeyFigures: the station's measurements a site sends up (the default
// key figure points) show in the site list, energy today integrated at the hub;
// and a site that sent nothing has none.
func TestSiteKeyFigures(t *testing.T) {
	t.Setenv(auth.EnvAdminPassword, adminPassword)
	s := startSecuredHub(t)
	a := startEdge(t, "a", s.leaf(t, "a"))
	s.waitLeafs(t, 1)

	// Ten minutes ago the station drew 60 kW, five minutes ago 120 kW; SOC 70 %,
	// PV 30 kW, grid 90 kW.
	t0 := time.Now().Add(-10 * time.Minute)
	inst := func(n int, ts time.Time, v string) {
		a.publish(subjects.InstanceUp("a", 1), uplink.MsgID("a", uplink.SourceChanges, fmt.Sprintf("%d-%d", ts.UnixMilli(), n)),
			fmt.Appendf(nil, `{"ts":%d,"v":{%s}}`, ts.UnixMilli(), v))
	}
	inst(0, t0, `"1":30,"3":90,"4":60,"6":70`)
	inst(1, t0.Add(5*time.Minute), `"4":120`)
	a.alarm("1-0", "raised", "temp:h", "active_unacked")
	waitCount(t, s.ClientURL, "a", 3, 30*time.Second)

	admin := s.client(t).login("admin", adminPassword)
	check := func() {
		t.Helper()
		testharness.Eventually(t, 15*time.Second, func() error {
			a.heartbeat()
			var sites struct{ Sites []hub.SiteSummary }
			admin.must(200, "GET", "/sites", nil, &sites)
			if len(sites.Sites) != 2 || sites.Sites[0].ID != "a" {
				return fmt.Errorf("sites = %+v", sites.Sites)
			}
			if sites.Sites[1].KeyFigures != nil {
				return fmt.Errorf("site b sent nothing, has key figures %+v", sites.Sites[1].KeyFigures)
			}
			st := sites.Sites[0]
			k := st.KeyFigures
			if k == nil || k.PowerKW == nil || *k.PowerKW != 120 || k.PVKW == nil || *k.PVKW != 30 || k.GridKW == nil || *k.GridKW != 90 ||
				k.SOC == nil || *k.SOC != 70 || k.EnergyTodayKWh == nil || k.EnergySource != "integrated" || !st.Online || st.Alarms != 1 {
				return fmt.Errorf("site a = %+v, key figures %+v", st, k)
			}
			// 60 kW for 5 min, then 120 kW held since; only what is after local midnight.
			y, m, d := time.Now().Date()
			midnight := time.Date(y, m, d, 0, 0, 0, 0, time.Local)
			since := func(from, to time.Time) float64 {
				if from.Before(midnight) {
					from = midnight
				}
				return max(to.Sub(from).Hours(), 0)
			}
			t1 := t0.Add(5 * time.Minute)
			want := 60*since(t0, t1) + 120*since(t1, time.Now())
			if math.Abs(*k.EnergyTodayKWh-want) > 120*5.0/3600 { // within 5 s of 120 kW
				return fmt.Errorf("energy today = %.3f kWh, want about %.3f", *k.EnergyTodayKWh, want)
			}
			return nil
		})
	}
	check()

}
