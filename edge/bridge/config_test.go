package bridge

import (
	"errors"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/tools/sitetest"
)

func loadTestSite(t *testing.T) *config.Config {
	t.Helper()
	dir, _ := sitetest.Write(t, virtualSite, "redis://127.0.0.1:1/0")
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Without uplink.yaml every T and S point, every instance measurement and the
// alarms go up, and nothing can be commanded from the cloud.
func TestMissingFileGivesDefaults(t *testing.T) {
	c, err := LoadConfig(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	sel := newSelector(siteID, c.Uplink)
	for _, key := range []string{"comsrv:1:T", "comsrv:7:S", "inst:3:M"} {
		if r := sel.route(key); !r.whole {
			t.Errorf("default selection does not send all of %s", key)
		}
	}
	for _, key := range []string{"comsrv:1:C", "comsrv:1:A", "inst:3:A", "something:else"} {
		if r := sel.route(key); len(r.rules) > 0 {
			t.Errorf("default selection sends %s", key)
		}
	}
	if !c.Uplink.AlarmsEnabled() || len(c.Downlink.Allow) != 0 || c.Downlink.allowsPoint(1, point.Adjustment, 1) {
		t.Errorf("defaults = %+v", c)
	}
	if c.Stream.DuplicateWindow().Seconds() != DefaultDuplicateWindowS || c.Stream.MaxBytes() != DefaultMaxMB<<20 || c.Uplink.Window != DefaultWindow {
		t.Errorf("stream defaults = %+v window %d", c.Stream, c.Uplink.Window)
	}
}

// The shipped example (config/edge/uplink.yaml of the repository) loads against
// the example site.
func TestExampleFileLoads(t *testing.T) {
	dir := filepath.Join("..", "..", "config")
	site, err := config.Load(dir)
	if err != nil {
		t.Fatalf("example site: %v", err)
	}
	if _, err := os.Stat(ConfigPath(dir)); err != nil {
		t.Fatalf("example uplink.yaml: %v", err)
	}
	if _, err := LoadConfig(dir, site); err != nil {
		t.Fatal(err)
	}
}

func TestConfigParses(t *testing.T) {
	site := loadTestSite(t)
	c, errs := ParseConfig("uplink.yaml", []byte(`
uplink:
  channels:
    - {channels: [1, 2], types: [YC, signal], deadband: 0.5, sample_ms: 1000}
  instances:
    - {instances: [5], points: [1, 2]}
  alarms: false
  window: 100
stream: {max_age_h: 24, max_mb: 512, duplicate_window_s: 300}
downlink:
  default_wait_ms: 1000
  max_wait_ms: 2000
  allow:
    - {channel: 1, type: YT, points: [1, 2]}
    - {channel: 1, type: C, all: true}
    - {instance: 5, actions: [charge]}
`), site)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if c.Uplink.AlarmsEnabled() || c.Uplink.Window != 100 || c.Stream.MaxAgeH != 24 || c.Downlink.MaxWaitMS != 2000 {
		t.Errorf("config = %+v", c)
	}
	d := &c.Downlink
	for _, ok := range []bool{
		d.allowsPoint(1, point.Adjustment, 2), d.allowsPoint(1, point.Control, 1), !d.allowsPoint(1, point.Adjustment, 3),
		!d.allowsPoint(2, point.Adjustment, 1), d.allowsAction(5, "charge"), !d.allowsAction(5, "discharge"), !d.allowsAction(6, "charge"),
	} {
		if !ok {
			t.Errorf("allow-list decisions wrong: %+v", d.Allow)
			break
		}
	}
}

// Every problem is reported at its file:line:col with what is wrong.
func TestConfigErrorsArePositioned(t *testing.T) {
	site := loadTestSite(t)
	for _, c := range []struct{ src, want string }{
		{"uplink:\n  chanels: []\n", "uplink.yaml:2:3: unknown key"},
		{"uplink:\n  channels:\n    - {types: [C]}\n", `uplink.yaml:3:16: uplink.channels[0].types: "C": only T and S go up`},
		{"uplink:\n  channels:\n    - {channels: [9]}\n", "uplink.yaml:3:19: uplink.channels[0].channels: no channel 9"},
		{"uplink:\n  channels:\n    - {deadband: -1}\n", "uplink.yaml:3:18: uplink.channels[0].deadband: want a finite number >= 0"},
		{"uplink:\n  instances:\n    - {sample_ms: -5}\n", "uplink.yaml:3:19: uplink.instances[0].sample_ms: want >= 0"},
		{"uplink:\n  window: -1\n", "uplink.yaml:2:11: uplink.window"},
		{"stream:\n  max_mb: -1\n", "uplink.yaml:2:11: stream.max_mb"},
		{"stream:\n  max_age_h: 1\n  duplicate_window_s: 7200\n", "uplink.yaml:3:23: stream.duplicate_window_s: longer than stream.max_age_h"},
		{"downlink:\n  default_wait_ms: 9000\n  max_wait_ms: 100\n", "uplink.yaml:2:20: downlink.default_wait_ms: 9000 is above"},
		{"downlink:\n  allow:\n    - {channel: 1, type: A}\n", "uplink.yaml:3:17: downlink.allow[0]: list the allowed points"},
		{"downlink:\n  allow:\n    - {channel: 1, type: T, points: [1]}\n", "uplink.yaml:3:26: downlink.allow[0].type: want C or A"},
		{"downlink:\n  allow:\n    - {channel: 3, type: A, points: [1]}\n", "uplink.yaml:3:17: downlink.allow[0].channel: no channel 3"},
		{"downlink:\n  allow:\n    - {channel: 1, type: A, points: [7]}\n", "uplink.yaml:3:38: downlink.allow[0].points: channel 1 has no A point 7"},
		{"downlink:\n  allow:\n    - {channel: 1, instance: 5, actions: [x]}\n", "uplink.yaml:3:30: downlink.allow[0]: give either channel"},
		{"downlink:\n  allow:\n    - {instance: 5}\n", "uplink.yaml:3:18: downlink.allow[0]: list the allowed actions"},
		{"downlink:\n  allow:\n    - {all: true}\n", "uplink.yaml:3:7: downlink.allow[0]: give channel"},
		{"uplink: [1, 2]\n", "uplink.yaml:1:9"},
		{"uplink:\n  channels:\n    - {channels: [one]}\n", "uplink.yaml:3:19"},
	} {
		_, errs := ParseConfig("uplink.yaml", []byte(c.src), site)
		var got []string
		for _, e := range errs {
			got = append(got, e.Error())
		}
		if len(got) == 0 || !strings.HasPrefix(got[0], c.want) {
			t.Errorf("%q:\n got %q\nwant %q", c.src, got, c.want)
		}
	}
}

// LoadConfig answers a bad file with a *config.LoadError naming the file.
func TestLoadConfigReportsTheFile(t *testing.T) {
	dir := t.TempDir()
	path := ConfigPath(dir)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("stream: {max_mb: x}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig(dir, nil)
	var le *config.LoadError
	if !errors.As(err, &le) || !strings.HasPrefix(le.Errors[0].Error(), path+":1:") {
		t.Errorf("err = %v, want a LoadError at %s:1", err, path)
	}
}

// FuzzParseConfig: no input panics the loader, and an accepted file is usable.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"", "uplink: {alarms: false}\n", modbusUplink,
		"uplink:\n  channels:\n    - {channels: [1], types: [T], points: [1], deadband: 1, sample_ms: 10}\n",
		"downlink:\n  allow:\n    - {channel: 1, type: A, points: [1]}\n    - {instance: 2, all: true}\n",
		"stream: {max_age_h: 1, max_mb: 1, duplicate_window_s: 60}\n", "uplink: &a [*a]\n", "{",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		c, errs := ParseConfig("uplink.yaml", src, nil)
		for _, e := range errs {
			if e.Msg == "" || e.Pos.File != "uplink.yaml" {
				t.Fatalf("error without message or file: %+v", e)
			}
		}
		if len(errs) > 0 {
			return
		}
		if c.Uplink.Window <= 0 || c.Stream.MaxMB <= 0 || c.Stream.DuplicateWindowS <= 0 || c.Downlink.MaxWaitMS <= 0 {
			t.Fatalf("accepted config without its defaults: %+v", c)
		}
		sel := newSelector(siteID, c.Uplink)
		sel.route("comsrv:1:T")
		sel.route("inst:1:M")
	})
}

// FuzzEncodeChange: the uplink's encoder writes valid JSON that decodes to the
// message it was given.
func FuzzEncodeChange(f *testing.F) {
	f.Add(int64(1_700_000_000_000), "1", 12.5, int64(0), "", "2", -1e-9)
	f.Add(int64(1), "10", 1e300, int64(5), "invalid", "x y", 0.0)
	f.Add(int64(-3), "a\"b", -0.0, int64(7), "comm_lost", "3", 123456789.125)
	f.Fuzz(func(t *testing.T, ts int64, id1 string, v1 float64, t1 int64, q1, id2 string, v2 float64) {
		if math.IsNaN(v1) || math.IsInf(v1, 0) || math.IsNaN(v2) || math.IsInf(v2, 0) || ts == 0 || !utf8.ValidString(id1) || !utf8.ValidString(q1) || !utf8.ValidString(id2) {
			return // statestore never writes these
		}
		m := statestore.Message{TS: ts, V: map[string]float64{id1: v1, id2: v2}}
		if t1 != 0 {
			m.T = map[string]int64{id1: t1}
		}
		if q1 != "" {
			m.Q = map[string]string{id1: q1}
		}
		data, err := encodeChange(&m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := statestore.DecodeMessage(data)
		if err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		if got.TS != m.TS || !maps.Equal(got.V, m.V) || !maps.Equal(got.T, m.T) || !maps.Equal(got.Q, m.Q) {
			t.Fatalf("%s decodes to %+v, want %+v", data, got, m)
		}
	})
}
