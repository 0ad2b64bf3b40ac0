package hub_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voltageems/voltage/cloud/hub"
	"github.com/voltageems/voltage/shared/config"
)

func TestLoadKeyFigures(t *testing.T) {
	dir := writeCloudYAML(t, `key_figures: {soc: "inst:3:M:2", timezone: Europe/Berlin}
sites:
  - id: plant-1
    key_figures: {power: "comsrv:3:T:1", energy: "comsrv:3:T:8", pv: "off"}
`)
	c, err := hub.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.KeyFigures.SOC != "inst:3:M:2" || c.Sites[0].KeyFigures.Energy != "comsrv:3:T:8" {
		t.Errorf("loaded %+v / %+v", c.KeyFigures, c.Sites[0].KeyFigures)
	}

	dir = writeCloudYAML(t, `key_figures:
  power: inst:1:A:4
  timezone: Mars/Olympus
sites:
  - id: a
    key_figures: {soc: "12", sun: inst:1:M:1}
`)
	_, err = hub.Load(dir)
	var le *config.LoadError
	if !errors.As(err, &le) {
		t.Fatalf("Load = %v, want a *config.LoadError", err)
	}
	if len(le.Errors) != 1 || !strings.Contains(le.Errors[0].Error(), `unknown key "sun"`) {
		t.Errorf("unknown key: %v", err)
	}

	dir = writeCloudYAML(t, `key_figures:
  power: inst:1:A:4
  timezone: Mars/Olympus
sites:
  - id: a
    key_figures: {soc: "12"}
`)
	_, err = hub.Load(dir)
	if !errors.As(err, &le) {
		t.Fatalf("Load = %v, want a *config.LoadError", err)
	}
	want := []string{
		`cloud.yaml:2:10: key_figures.power: "inst:1:A:4": the hash must be`,
		`cloud.yaml:3:13: key_figures.timezone: `,
		`cloud.yaml:6:24: sites[0].key_figures.soc: want hash:point`,
	}
	if len(le.Errors) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(le.Errors), len(want), err)
	}
	for i, w := range want {
		if got := strings.TrimPrefix(le.Errors[i].Error(), dir+string(filepath.Separator)); !strings.HasPrefix(got, w) {
			t.Errorf("error %d = %q, want it to start with %q", i, got, w)
		}
	}
}
