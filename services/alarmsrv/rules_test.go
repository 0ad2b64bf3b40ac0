package alarmsrv

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/model"
)

// Every problem of a rules file is reported at file:line:col.
func TestRulesErrorsArePositioned(t *testing.T) {
	site := testSite(t)
	cases := []struct {
		name, src, want string
	}{
		{"unknown key", "alarms:\n  - id: a\n    kind: limit\n    chanel: 1\n", "alarms.yaml:4:5: unknown key"},
		{"bad kind", "alarms:\n  - id: a\n    kind: threshold\n", `alarms.yaml:3:11: alarm rule a: kind "threshold"`},
		{"missing point", "alarms:\n  - id: a\n    kind: limit\n    channel: 1\n    type: T\n    point: 9\n    limits: {h: {value: 1}}\n",
			"alarms.yaml:6:12: alarm rule a: channel 1 (dev) has no T point 9"},
		{"unknown channel", "alarms:\n  - {id: a, kind: comm_loss, channel: 7}\n", "alarms.yaml:2:39: alarm rule a: no channel 7"},
		{"limits out of order", "alarms:\n  - id: a\n    kind: limit\n    channel: 1\n    type: T\n    point: 1\n    limits:\n      h: {value: 10}\n      l: {value: 20}\n",
			"alarms.yaml:8:8: alarm rule a: limits must rise"},
		{"bad severity", "alarms:\n  - id: a\n    kind: limit\n    channel: 1\n    type: T\n    point: 1\n    limits:\n      h: {value: 10, severity: urgent}\n",
			`alarms.yaml:8:32: alarm rule a: severity "urgent"`},
		{"bad duration", "alarms:\n  - {id: a, kind: digital, channel: 1, type: S, point: 1, state: 1, on_delay: soon}\n",
			`alarms.yaml:2:79: on_delay "soon"`},
		{"duplicate id", "alarms:\n  - {id: a, kind: comm_loss, channel: 1}\n  - {id: a, kind: comm_loss, channel: 1}\n",
			`alarms.yaml:3:10: alarm rule id "a" is also used`},
		{"no source", "alarms:\n  - {id: a, kind: stale, timeout: 1s}\n", "alarms.yaml:2:5: alarm rule a: name the source"},
		{"digital on telemetry", "alarms:\n  - {id: a, kind: digital, channel: 1, type: T, point: 1, state: 1}\n", "alarm rule a: a digital rule watches a signal"},
		{"stale without timeout", "alarms:\n  - {id: a, kind: stale, channel: 1, type: T, point: 1}\n", "a stale rule needs timeout"},
		{"expression without model", "alarms:\n  - {id: a, kind: expression, expression: 'x.y > 1'}\n", "no thing model"},
		{"instance without model", "alarms:\n  - {id: a, kind: limit, instance: pv1, measurement: p, limits: {h: {value: 1}}}\n", "no thing model"},
		{"bad webhook", "notifications:\n  - {name: w, type: webhook, url: 'ftp://x'}\nalarms: []\n", `alarms.yaml:2:35: notification channel w: url "ftp://x"`},
		{"email without smtp", "notifications:\n  - {name: m, type: email, to: [a@b]}\nalarms: []\n", "an email channel needs smtp"},
		{"quiet hours", "notifications:\n  - {name: w, type: webhook, url: 'http://x', quiet_hours: {from: '25:00', to: '06:00'}}\nalarms: []\n", "quiet_hours.from"},
		{"flapping", "flapping: {transitions: 1}\nalarms: []\n", "alarms.yaml:1:25: flapping.transitions"},
		{"syntax", "alarms:\n  - id: [\n", "alarms.yaml:"},
		{"two errors", "alarms:\n  - {id: a, kind: rate, channel: 1, type: T, point: 1}\n  - {id: b, kind: limit, channel: 1, type: T, point: 1}\n",
			"alarms.yaml:2:5: alarm rule a: a rate rule needs rate > 0 (units per second)\nalarms.yaml:3:5: alarm rule b: a limit rule needs limits"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseRules("alarms.yaml", []byte(c.src), site, nil)
			if err == nil {
				t.Fatal("accepted")
			}
			var le *config.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error %T %v, want *config.LoadError", err, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, c.want)
			}
		})
	}
}

// The shipped example site's rules load against its channels and model.
func TestShippedRulesLoad(t *testing.T) {
	dir := filepath.Join("..", "..", "config")
	site, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(dir, site)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := LoadRules(dir, site, m)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, r := range rs.Rules {
		kinds[r.Kind] = true
	}
	for _, k := range Kinds {
		if !kinds[k] {
			t.Errorf("the example has no %s rule", k)
		}
	}
	if len(rs.Channels) == 0 || rs.FlapCount == 0 {
		t.Error("the example configures no channel or no flapping")
	}
}

func TestMissingRulesFileIsEmpty(t *testing.T) {
	rs, err := LoadRules(t.TempDir(), nil, nil)
	if err != nil || len(rs.Rules) != 0 {
		t.Fatalf("%v %v", rs, err)
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"alarmsrv/alarms.yaml": "# nothing yet\n"})
	if _, err := LoadRules(dir, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "alarmsrv", "alarms.yaml"), 0); err == nil && os.Getuid() != 0 {
		if _, err := LoadRules(dir, nil, nil); err == nil || !strings.Contains(err.Error(), "cannot read") {
			t.Fatalf("unreadable file: %v", err)
		}
	}
}

func FuzzParseRules(f *testing.F) {
	seeds := []string{
		tempHigh,
		"alarms:\n  - {id: fault, kind: digital, channel: 1, type: S, point: 1, state: 1}\n",
		"flapping: {transitions: 3, window: 10s}\nnotifications:\n  - {name: w, type: webhook, url: 'http://x', rate_limit: {count: 1, per: 1s}}\nalarms: []\n",
		"alarms:\n  - {id: s, kind: stale, channel: 1, type: T, point: 3, timeout: 30s, on_delay: 1s}\n",
		"alarms: &a [*a]\n",
		"",
	}
	if b, err := os.ReadFile(filepath.Join("..", "..", "config", "alarmsrv", "alarms.yaml")); err == nil {
		seeds = append(seeds, string(b))
	}
	for _, s := range seeds {
		f.Add(s)
	}
	site := testSite(&testing.T{})
	f.Fuzz(func(t *testing.T, src string) {
		rs, err := ParseRules("alarms.yaml", []byte(src), site, nil)
		if err == nil && rs == nil {
			t.Fatal("no rules and no error")
		}
		if err != nil {
			var le *config.LoadError
			if !errors.As(err, &le) || len(le.Errors) == 0 {
				t.Fatalf("error %T %v is not a positioned LoadError", err, err)
			}
			return
		}
		// Valid rules run without panicking.
		ev := newEvaluator(rs, nil, nowFunc)
		for _, h := range ev.hashes() {
			for f := range ev.fields[h] {
				ev.sample(h, f, 1, 0, 1, nowFunc())
			}
		}
	})
}
