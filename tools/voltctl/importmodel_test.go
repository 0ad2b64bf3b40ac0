package voltctl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/model"
)

// The original's model folder becomes a modsrv/ folder that modsrv loads.
func TestImportOriginalModel(t *testing.T) {
	src, _ := copyFixture(t)
	routing := "channel_id,channel_type,channel_point_id,instance_type,instance_point_id,description\n1,T,2,M,1,AC power\n1,T,1,M,dc_voltage,\n"
	writeFile(t, filepath.Join(src, "modsrv/instances/pcs_01/channel_routing.csv"), routing)
	writeFile(t, filepath.Join(src, "modsrv/instances/pcs_01/notes.md"), "x")
	dst := filepath.Join(t.TempDir(), "site")
	r := run(t, "import", "original", src, dst)

	inst := filepath.Join(src, "modsrv", "instances.yaml")
	for _, want := range []string{
		inst + ":12:5: instance pcs_01: name \"PCS #1\" → description",
		inst + ":10:3: instance pcs_01: id 2 assigned",
		inst + ":10:3: instance pcs_01: dropped property rated_voltage: product pcs has no such property",
		inst + ":34:3: instance battery_01: product battery_pack → built-in battery",
		inst + ":46:3: instance diesel_gen_01: product diesel_generator → built-in genset",
		filepath.Join(src, "modsrv", "instances", "diesel_gen_01", "instance.yaml") + ": instance diesel_gen_01: merged into modsrv/instances.yaml",
		filepath.Join(src, "modsrv", "calculations.yaml") + ": not imported",
		filepath.Join(src, "modsrv", "instances", "pcs_01", "notes.md") + ": not imported",
		"model OK: 10 products, 4 instances, 2 routes, 0 calculations",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("report:\n%s", r.stdout)
	}

	got, err := os.ReadFile(filepath.Join(dst, "modsrv/instances/pcs_01/channel_routing.csv"))
	if err != nil || string(got) != routing {
		t.Fatalf("routing copied as %q, %v", got, err)
	}
	cfg, err := config.Load(dst)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(dst, cfg)
	if err != nil {
		t.Fatalf("the imported model does not load: %v", err)
	}
	gen := m.InstanceByName("diesel_gen_01")
	if gen == nil || gen.ID != 1 || gen.Product.ID != "genset" || gen.Properties["rated_power"] != 500.0 || gen.Description != "柴油发电机组 #1" {
		t.Fatalf("diesel_gen_01: %+v", gen)
	}
	pcs := m.InstanceByName("pcs_01")
	if pcs.ID != 2 || pcs.Description != "PCS #1" || m.MeasurementRoute(pcs.ID, 1) == nil {
		t.Fatalf("pcs_01: %+v", pcs)
	}
}

func TestImportedModelErrorsAreShown(t *testing.T) {
	src, _ := copyFixture(t)
	writeFile(t, filepath.Join(src, "modsrv/instances/pcs_01/channel_routing.csv"),
		"channel_id,channel_type,channel_point_id,instance_type,instance_point_id\n1,T,77,M,1\n")
	dst := filepath.Join(t.TempDir(), "site")
	r := run(t, "import", "original", src, dst)
	if r.code != ExitUsage || !strings.Contains(r.stdout, "channel_routing.csv:2:5: channel 1 (PCS#1) has no telemetry point 77") ||
		!strings.Contains(r.stdout, "model invalid: 1 problem") {
		t.Fatalf("want the routing error and exit 2, got %v", r)
	}
}

func TestIdentifier(t *testing.T) {
	for in, want := range map[string]string{"PCS-01": "pcs_01", "pv 1": "pv_1", "1st": "i_1st", "": "i_", "ok_name": "ok_name"} {
		if got := identifier(in); got != want {
			t.Errorf("identifier(%q) = %q, want %q", in, got, want)
		}
	}
}
