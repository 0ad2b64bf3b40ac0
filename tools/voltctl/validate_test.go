package voltctl

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/model"
)

// exampleSite is the repository's demo site (config/ at the root).
const exampleSite = "../../config"

func TestConfigValidateExampleSite(t *testing.T) {
	cfg, err := config.Load(exampleSite)
	if err != nil {
		t.Fatalf("the example site does not load: %v", err)
	}
	points := 0
	for _, ch := range cfg.Channels {
		for _, ps := range ch.Points {
			points += len(ps)
		}
	}
	m, err := model.Load(exampleSite, cfg)
	if err != nil {
		t.Fatalf("the example site's model does not load: %v", err)
	}
	r := run(t, "config", "validate", "--config", exampleSite)
	want := "config OK: site demo-site, " + plural(len(cfg.Channels), "channel") + ", " + plural(points, "point") + "\n" +
		"model OK: " + m.Summary() + "\n" +
		"rulesrv OK\nalarmsrv OK\nhissrv OK\nnetsrv OK\napigateway OK\nedge OK\n"
	if r.code != ExitOK || r.stdout != want {
		t.Fatalf("want exit 0 and %q, got %v", want, r)
	}
	// The global flag before the command means the same.
	if r2 := run(t, "--config", exampleSite, "config", "validate"); r2.code != ExitOK || r2.stdout != want {
		t.Fatalf("global --config: %v", r2)
	}
}

func TestConfigValidateListsLoadErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"site.yaml": "site: {id: s1}\nlogging: {level: loud}\n",
		"comsrv/channels.yaml": `channels:
  - {id: 1, name: a, protocol: virtual, colour: red}
`,
		"comsrv/1/telemetry.csv": pointHeader + "1,x,abc,0,,0,float\n",
	})
	r := run(t, "config", "validate", "--config", dir)
	if r.code != ExitUsage {
		t.Fatalf("want exit 2, got %v", r)
	}
	for _, want := range []string{
		filepath.Join(dir, "site.yaml") + ":2:",
		filepath.Join(dir, "comsrv", "channels.yaml") + ":2:",
		filepath.Join(dir, "comsrv", "1", "telemetry.csv") + ":2:",
		"config invalid: 3 problems in " + dir,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
}

// Problems only a driver finds (parameters, an unavailable protocol) are placed
// in channels.yaml too.
func TestConfigValidateListsDriverErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"site.yaml": "site: {id: s1}\n",
		"comsrv/channels.yaml": `channels:
  - id: 1
    name: meter
    protocol: modbus_tcp
    parameters: {host: 10.0.0.1, prot: 502}
  - id: 2
    name: rtu
    protocol: iec104
  - id: 3
    name: fine
    protocol: virtual
`,
	})
	r := run(t, "config", "validate", "--config", dir)
	if r.code != ExitUsage {
		t.Fatalf("want exit 2, got %v", r)
	}
	chans := filepath.Join(dir, "comsrv", "channels.yaml")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("want two problems and the summary, got:\n%s", r.stdout)
	}
	if !strings.HasPrefix(lines[0], chans+":5:34: channel 1 (meter): parameters: unknown key \"prot\"") {
		t.Errorf("parameter problem: %q", lines[0])
	}
	if !strings.HasPrefix(lines[1], chans+":6:5: channel 2 (rtu): parameters: host is required") {
		t.Errorf("protocol problem: %q", lines[1])
	}
}

func TestHelpAndUsage(t *testing.T) {
	r := run(t, "help")
	if r.code != ExitOK || !strings.Contains(r.stdout, "point set CH TYPE ID VALUE") {
		t.Fatalf("help: %v", r)
	}
	for _, args := range [][]string{{"point", "get", "-h"}, {"help", "point", "get"}} {
		r = run(t, args...)
		if r.code != ExitOK || !strings.HasPrefix(r.stdout, "Usage: voltctl point get CH TYPE [ID...]") || !strings.Contains(r.stdout, "-json") {
			t.Errorf("%v: %v", args, r)
		}
	}
	for _, args := range [][]string{{}, {"frobnicate"}, {"point"}, {"point", "get"}, {"point", "get", "1", "X"}, {"status", "--bogus"}} {
		if r = run(t, args...); r.code != ExitUsage || r.stderr == "" {
			t.Errorf("%v: want exit 2 with a message, got %v", args, r)
		}
	}
	if r = run(t, "version"); r.code != ExitOK || !strings.HasPrefix(r.stdout, "voltctl ") {
		t.Errorf("version: %v", r)
	}
}

func TestParseArgsAcceptsFlagsAnywhereAndNegativeValues(t *testing.T) {
	fs := newFlagSet("t", new(strings.Builder))
	var j bool
	var timeout string
	fs.BoolVar(&j, "json", false, "")
	fs.StringVar(&timeout, "timeout", "", "")
	pos, err := parseArgs(fs, []string{"1", "A", "--json", "2", "-50", "--timeout", "5s", "--", "--x"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(pos, " "); got != "1 A 2 -50 --x" || !j || timeout != "5s" {
		t.Fatalf("positional %q json %v timeout %q", got, j, timeout)
	}
	pos, err = parseArgs(fs, []string{"--json=false", "status", "--timeout", "1s"}, true)
	if err != nil || strings.Join(pos, " ") != "status --timeout 1s" || j {
		t.Fatalf("firstOnly: %q %v json %v", pos, err, j)
	}
}

// The other services' files are checked as each service would on start, every
// problem with its position.
func TestConfigValidateChecksEveryService(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"site.yaml": "site: {id: s1}\n",
		"comsrv/channels.yaml": `channels:
  - {id: 1, name: a, protocol: virtual, parameters: {generators: [{type: T, point: 1, kind: constant, value: 1}]}}
`,
		"comsrv/1/telemetry.csv":    pointHeader + "1,x,1,0,,0,float\n",
		"rulesrv/rules/broken.yaml": "id: broken\ncondition: ch1.T1 >> 2\nactions:\n  - event: {name: x}\n",
		"alarmsrv/alarms.yaml":      "alarms:\n  - {id: a1, kind: nope}\n",
		"hissrv/hissrv.yaml":        "retention: forever\n",
		"netsrv/netsrv.yaml":        "links:\n  - {name: x, type: carrier-pigeon}\n",
	})
	r := run(t, "config", "validate", "--config", dir)
	if r.code != ExitUsage {
		t.Fatalf("want exit 2, got %v", r)
	}
	for _, want := range []string{
		"config OK",
		filepath.Join(dir, "rulesrv", "rules", "broken.yaml") + ":2:",
		"rulesrv invalid",
		filepath.Join(dir, "alarmsrv", "alarms.yaml") + ":2:",
		"alarmsrv invalid",
		filepath.Join(dir, "hissrv", "hissrv.yaml") + ":1:",
		"hissrv invalid",
		filepath.Join(dir, "netsrv", "netsrv.yaml") + ":2:",
		"netsrv invalid",
		"apigateway OK",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
}
