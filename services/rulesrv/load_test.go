package rulesrv_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voltageems/voltage/services/rulesrv"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/model"
)

// loadSite loads virtualSite with extra rule files, without Redis.
func loadSite(t testing.TB, extra files) (string, *config.Config, *model.Model) {
	t.Helper()
	dir := writeSite(t, merge(virtualSite, extra), "redis://127.0.0.1:1/0")
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return dir, cfg, m
}

// Every invalid rule file is reported with file:line:col and a message saying
// what is wrong; nothing loads.
func TestInvalidRulesArePositioned(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"unknown_key", "id: unknown_key\nconditon: meter.active_power > 1\nactions: []\n", "unknown_key.yaml:2:1:"},
		{"bad_expr", "id: bad_expr\ncondition: meter.active_power >\nactions:\n  - event: {name: x}\n", "bad_expr.yaml:2:"},
		{"no_instance", "id: no_instance\ncondition: nobody.power > 1\nactions:\n  - event: {name: x}\n", `no_instance.yaml:2:12: condition: nobody.power: no instance named "nobody"`},
		{"bad_for", "id: bad_for\ncondition: meter.active_power > 1\nfor: 5 minutes\nactions:\n  - event: {name: x}\n", "bad_for.yaml:3:6: for: want a duration"},
		{"bad_cron", "id: bad_cron\ntrigger: {cron: \"0 0 25 * * *\"}\nactions:\n  - event: {name: x}\n", "bad_cron.yaml:2:17: trigger.cron"},
		{"no_actions", "id: no_actions\ncondition: meter.active_power > 1\n", "no_actions.yaml:1:1: rule no_actions has no actions"},
		{"two_kinds", "id: two_kinds\ncondition: meter.active_power > 1\nactions:\n  - event: {name: x}\n    notify: {severity: info, title: t}\n", "two_kinds.yaml:4:5: an action is exactly one of"},
		{"read_only", "id: read_only\ncondition: meter.active_power > 1\nactions:\n  - command: {channel: 1, type: T, point: 1, value: 1}\n", "read_only.yaml:4:33: type \"T\""},
		{"no_point", "id: no_point\ncondition: meter.active_power > 1\nactions:\n  - command: {channel: 1, type: A, point: 9, value: 1}\n", "no_point.yaml:4:43: channel 1 has no adjustment point 9"},
		{"unrouted", "id: unrouted\ncondition: meter.active_power > 1\nactions:\n  - action: {instance: pcs, name: fault_reset, value: 1}\n", "action fault_reset of pcs is not routed"},
		{"bad_channel_ref", "id: bad_channel_ref\ncondition: ch1.T77 > 1\nactions:\n  - event: {name: x}\n", "bad_channel_ref.yaml:2:12: condition: ch1.T77: channel 1 has no telemetry point 77"},
		{"wrong_id", "id: other\ncondition: meter.active_power > 1\nactions:\n  - event: {name: x}\n", "wrong_id.yaml:1:5: rule id \"other\" differs from its file name"},
		{"cron_for", "id: cron_for\ntrigger: {cron: \"* * * * * *\"}\nfor: 1s\nactions:\n  - event: {name: x}\n", "cron_for.yaml:3:6: for does not apply to a cron rule"},
		{"bad_value", "id: bad_value\ncondition: meter.active_power > 1\nactions:\n  - command: {channel: 1, type: A, point: 1, value: \"meter.active_power * \"}\n", "bad_value.yaml:4:"},
		{"bool_value", "id: bool_value\ncondition: meter.active_power > 1\nactions:\n  - command: {channel: 1, type: C, point: 1, value: 5}\n", "a control point takes 0 or 1"},
		{"not_virtual", "id: not_virtual\ncondition: meter.active_power > 1\nactions:\n  - virtual: {channel: 1, type: A, point: 1, value: 1}\n", ""}, // channel 1 is virtual: valid
		{"bad_threshold", "id: bad_threshold\nthreshold: {value: bat.soc, above: 1, below: 2}\nactions:\n  - event: {name: x}\n", "give exactly one of above and below"},
		{"bad_on_change", "id: bad_on_change\ntrigger: {on_change: [bat.soc]}\ncondition: meter.active_power > 1\nactions:\n  - event: {name: x}\n", "bad_on_change.yaml:2:23: trigger.on_change: the rule does not read bat.soc"},
		{"bad_webhook", "id: bad_webhook\ncondition: meter.active_power > 1\nactions:\n  - webhook: {url: \"ftp://x\"}\n", "webhook.url"},
		{"bad_severity", "id: bad_severity\ncondition: meter.active_power > 1\nactions:\n  - notify: {severity: loud, title: t}\n", "notify.severity \"loud\""},
		{"block_expr", "id: block_expr\ncondition: |\n  meter.active_power > 1 and\n  bat.nothing > 2\nactions:\n  - event: {name: x}\n", "block_expr.yaml:4:3:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, cfg, m := loadSite(t, files{"rulesrv/rules/" + c.name + ".yaml": c.src})
			_, err := rulesrv.LoadRules(dir, cfg, m)
			if c.want == "" {
				if err != nil {
					t.Fatalf("valid rule refused: %v", err)
				}
				return
			}
			var le *config.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error %v (%T), want a *config.LoadError", err, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error:\n%v\nwant it to contain %q", err, c.want)
			}
			for _, pe := range le.Errors {
				if pe.Pos.Line == 0 || !strings.HasSuffix(pe.Pos.File, ".yaml") {
					t.Errorf("error without a line: %v", pe)
				}
			}
		})
	}
}

// Every problem of every file is reported at once, in file order.
func TestAllErrorsAtOnce(t *testing.T) {
	dir, cfg, m := loadSite(t, files{
		"rulesrv/rules/a.yaml": "id: a\ncondition: nobody.x > 1\nactions:\n  - event: {name: x}\n",
		"rulesrv/rules/b.yaml": "id: b\ncondition: meter.active_power > 1\nfor: soon\nactions:\n  - command: {channel: 5, type: A, point: 1, value: 1}\n",
	})
	_, err := rulesrv.LoadRules(dir, cfg, m)
	var le *config.LoadError
	if !errors.As(err, &le) || len(le.Errors) != 3 {
		t.Fatalf("errors: %v", err)
	}
	if !strings.Contains(le.Errors[0].Pos.File, "a.yaml") || !strings.Contains(le.Errors[2].Msg, "no channel 5") {
		t.Fatalf("order: %v", err)
	}
}

// The shipped templates load against the demo site.
func TestShippedTemplatesLoad(t *testing.T) {
	site := filepath.Join("..", "..", "config")
	cfg, err := config.Load(site)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rulesrv.Validate(cfg, site)
	if err != nil {
		t.Fatalf("shipped rules: %v", err)
	}
	for _, id := range []string{"peak_shaving", "soc_protection", "tou_charge", "tou_discharge", "zero_export"} {
		if rs.Rule(id) == nil {
			t.Errorf("template %s missing", id)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(site, rulesrv.RulesFolder))
	if len(entries) != len(rs.List) {
		t.Errorf("%d files, %d rules", len(entries), len(rs.List))
	}
}
