package rulesrv_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voltageems/voltage/services/rulesrv"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
)

// The internal API: rules CRUD persisted to the rules folder (validated first,
// written atomically), enable/disable persisted in the file, dry run, execution
// log; errors as problem+json.
func TestRulesAPI(t *testing.T) {
	s := newStack(t, virtualSite)
	s.startRulesrv()
	file := filepath.Join(s.Dir, rulesrv.RulesFolder, "api1.yaml")

	var list []rulesrv.RuleView
	if code, body := s.call("GET", "/rules", "", &list); code != 200 || len(list) != 1 || list[0].ID != "probe" {
		t.Fatalf("GET /rules: %d %s", code, body)
	}
	rule := "id: api1\n# a comment that stays\ncondition: meter.active_power > 100\nactions:\n  - command: {channel: 1, type: A, point: 1, value: 9}\n    wait: false\n"
	if code, body := s.call("POST", "/rules", rule, nil); code != http.StatusCreated {
		t.Fatalf("POST /rules: %d %s", code, body)
	}
	if code, _ := s.call("POST", "/rules", rule, nil); code != http.StatusConflict {
		t.Fatalf("POST of an existing rule: %d, want 409", code)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != rule {
		t.Fatalf("file %q (%v)", b, err)
	}

	// An invalid rule is refused with its position; the file is left alone.
	code, body := s.call("PUT", "/rules/api1", "id: api1\ncondition: meter.nothing > 1\nactions:\n  - event: {name: x}\n", nil)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "api1.yaml:2:12") {
		t.Fatalf("PUT invalid: %d %s", code, body)
	}
	if b, _ := os.ReadFile(file); string(b) != rule {
		t.Fatalf("an invalid PUT changed the file: %q", b)
	}
	if code, _ := s.call("PUT", "/rules/api1", "{not yaml", nil); code != http.StatusUnprocessableEntity && code != http.StatusBadRequest {
		t.Fatalf("PUT garbage: %d", code)
	}

	// Disabled: persisted in the file (comments kept), and the rule does not fire.
	if code, body := s.call("POST", "/rules/api1/disable", "", nil); code != 200 {
		t.Fatalf("disable: %d %s", code, body)
	}
	b, _ := os.ReadFile(file)
	if !strings.Contains(string(b), "enabled: false") || !strings.Contains(string(b), "# a comment that stays") {
		t.Fatalf("file after disable: %s", b)
	}
	s.setInst(meter, point.Good, mGrid, 150)
	s.sync()
	if got := s.commands(1); len(got) != 0 {
		t.Fatalf("a disabled rule commanded %v", got)
	}
	var dry rulesrv.Evaluation
	if code, body := s.call("POST", "/rules/api1/dry-run", "", &dry); code != 200 || dry.Result != "fired" || !dry.DryRun || len(dry.Actions) != 1 || *dry.Actions[0].Value != 9 {
		t.Fatalf("dry run: %d %s", code, body)
	}
	if got := s.commands(1); len(got) != 0 {
		t.Fatalf("a dry run commanded %v", got)
	}
	// Right after a change reloads the rules, a dry run sees the live values:
	// the change is answered once the new engine has read its inputs.
	if code, body := s.call("POST", "/rules", "id: api2\ncondition: meter.active_power > 1000\nactions:\n  - event: {name: y}\n", nil); code != http.StatusCreated {
		t.Fatalf("POST api2: %d %s", code, body)
	}
	if code, body := s.call("POST", "/rules/api1/dry-run", "", &dry); code != 200 || dry.Result != "fired" {
		t.Fatalf("dry run right after a reload: %d %s", code, body)
	}
	// A rule that is not saved can be dry-run too.
	var dry2 rulesrv.Evaluation
	if code, body := s.call("POST", "/dry-run", "id: tryme\ncondition: meter.active_power > 100 and bat.soc > 1\nactions:\n  - event: {name: x}\n", &dry2); code != 200 || dry2.Result != "blocked" || !strings.Contains(dry2.Reason, "bat.soc has no value") {
		t.Fatalf("dry run of a body: %d %s", code, body)
	}
	if code, body := s.call("POST", "/dry-run", "id: tryme\ncondition: nope.x\nactions:\n  - event: {name: x}\n", nil); code != http.StatusUnprocessableEntity || !strings.Contains(body, "tryme.yaml:2:12") {
		t.Fatalf("dry run of an invalid body: %d %s", code, body)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, rulesrv.RulesFolder, "tryme.yaml")); !os.IsNotExist(err) {
		t.Fatalf("a dry run wrote a file: %v", err)
	}
	if code, body := s.call("POST", "/rules/api1/enable", "", nil); code != 200 {
		t.Fatalf("enable: %d %s", code, body)
	}
	s.waitCommands(1, 1)

	// JSON replaces the rule; the file is YAML.
	js := `{"id":"api1","condition":"meter.active_power > 200","actions":[{"command":{"channel":1,"type":"A","point":1,"value":3},"wait":false}]}`
	if code, body := s.call("PUT", "/rules/api1", js, nil); code != 200 {
		t.Fatalf("PUT JSON: %d %s", code, body)
	}
	if b, _ := os.ReadFile(file); strings.HasPrefix(strings.TrimSpace(string(b)), "{") || !strings.Contains(string(b), "meter.active_power > 200") {
		t.Fatalf("file after JSON PUT: %s", b)
	}
	var got rulesrv.RuleView
	if code, body := s.call("GET", "/rules/api1", "", &got); code != 200 || got.Definition == nil || got.Definition.Condition != "meter.active_power > 200" {
		t.Fatalf("GET: %d %s", code, body)
	}
	var ex struct {
		Last   map[string]any   `json:"last"`
		Events []map[string]any `json:"events"`
	}
	if code, body := s.call("GET", "/rules/api1/executions", "", &ex); code != 200 || len(ex.Events) == 0 || ex.Last["result"] == nil {
		t.Fatalf("executions: %d %s", code, body)
	}
	if code, _ := s.call("DELETE", "/rules/api1", "", nil); code != http.StatusNoContent {
		t.Fatalf("DELETE: %d", code)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("file after DELETE: %v", err)
	}
	for _, p := range []string{"/rules/api1", "/rules/nope/executions"} {
		if code, _ := s.call("GET", p, "", nil); code != http.StatusNotFound {
			t.Fatalf("GET %s: %d, want 404", p, code)
		}
	}
	if code, _ := s.call("POST", "/rules/nope/enable", "", nil); code != http.StatusNotFound {
		t.Fatalf("enable unknown: %d", code)
	}
	if code, _ := s.call("PUT", "/rules/Bad..id", "id: x", nil); code != http.StatusUnprocessableEntity {
		t.Fatalf("PUT bad id: %d", code)
	}
	audit, _ := s.RDB.XRange(context.Background(), keyspace.Audit, "-", "+").Result()
	var actions []string
	for _, m := range audit {
		actions = append(actions, fmt.Sprint(m.Values["action"], ":", m.Values["rule"]))
	}
	if strings.Join(actions, " ") != "rule_create:api1 rule_disable:api1 rule_create:api2 rule_enable:api1 rule_update:api1 rule_delete:api1" {
		t.Fatalf("audit:log %v", actions)
	}
	entries, _ := os.ReadDir(filepath.Dir(file))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Fatalf("temporary file left: %s", e.Name())
		}
	}
}
