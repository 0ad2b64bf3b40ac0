package voltctl

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
)

// originalFixture is the config.template folder of the original VoltageEMS (see
// its SOURCE.md). It has no point tables; the test adds some.
const originalFixture = "../../shared/config/testdata/original-voltageems"

// copyFixture copies the fixture into a new folder and adds point tables for
// channel 1 (with a stray file) and a folder of a channel that does not exist.
func copyFixture(t *testing.T) (dir string, added map[string]string) {
	t.Helper()
	dir = t.TempDir()
	err := filepath.WalkDir(originalFixture, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(originalFixture, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), data, 0o644)
	})
	if err != nil {
		t.Fatalf("copy the fixture: %v", err)
	}
	added = map[string]string{
		"comsrv/1/telemetry.csv":                 pointHeader + "1,dc_voltage,0.1,0,V,0,float\n2,ac_power,1,0,kW,0,float\n",
		"comsrv/1/mapping/telemetry_mapping.csv": "point_id,slave_id,function_code,register_address,data_type,byte_order,bit_position\n1,1,3,100,uint16,AB,\n2,1,3,101,float32,ABCD,\n",
	}
	for name, content := range added {
		writeFile(t, filepath.Join(dir, name), content)
	}
	writeFile(t, filepath.Join(dir, "comsrv/1/notes.txt"), "not a table")
	writeFile(t, filepath.Join(dir, "comsrv/9/telemetry.csv"), pointHeader)
	return dir, added
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestImportOriginalFixture(t *testing.T) {
	src, added := copyFixture(t)
	dst := filepath.Join(t.TempDir(), "site")
	r := run(t, "import", "original", src, dst, "--site-id", "plant-7")
	if r.code != 0 {
		t.Fatalf("want exit 0 (imported and valid), got %v", r)
	}

	comsrvYAML := filepath.Join(src, "comsrv", "comsrv.yaml")
	for _, want := range []string{
		filepath.Join(src, "global.yaml") + ":5:3: redis.url → site.yaml redis.url",
		filepath.Join(src, "global.yaml") + ":6:3: dropped redis.pool_size",
		filepath.Join(src, "global.yaml") + ":9:1: dropped api",
		comsrvYAML + ":13:7: channel 1: dropped parameters.connect_timeout_ms",
		comsrvYAML + ":14:7: channel 1: parameters.read_timeout_ms → timeout_ms",
		comsrvYAML + ":15:5: channel 1: dropped logging",
		comsrvYAML + ":46:7: channel 3: dropped parameters.retry_interval_ms",
		comsrvYAML + ":54:15: channel 4: protocol di_do → gpio",
		comsrvYAML + ":57:7: channel 4: parameters.driver → backend",
		comsrvYAML + ":58:7: channel 4: parameters.gpio_base_path → sysfs_root",
		comsrvYAML + ":59:7: channel 4: parameters.di_poll_interval_ms → poll_interval_ms",
		comsrvYAML + ":70:7: channel 5: parameters.device → interface",
		comsrvYAML + ":75:7: channel 5: dropped parameters.rx_poll_interval_ms",
		filepath.Join(src, "comsrv", "1", "notes.txt") + ": not imported: not a CSV file",
		filepath.Join(src, "comsrv", "9") + ": not imported: not the folder of a channel",
		filepath.Join(src, "comsrv", "2") + ": channel 2: no point tables",
		filepath.Join(src, "modsrv", "rules") + ": not imported",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Count(r.stdout, "dropped logging:") != 5 || strings.Count(r.stdout, "→ timeout_ms") != 4 {
		t.Errorf("want 5 dropped logging blocks and 4 read_timeout_ms renamed:\n%s", r.stdout)
	}

	if !strings.Contains(r.stdout, "config OK") {
		t.Errorf("the imported site does not validate:\n%s", r.stdout)
	}

	// The CSVs are copied byte for byte, the stray file and folder are not.
	for name, content := range added {
		got, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil || !bytes.Equal(got, []byte(content)) {
			t.Errorf("%s: copied %q, %v", name, got, err)
		}
	}
	for _, name := range []string{"comsrv/1/notes.txt", "comsrv/9"} {
		if _, err := os.Stat(filepath.Join(dst, name)); err == nil {
			t.Errorf("%s was copied", name)
		}
	}

	// What was written loads and says what the report says.
	cfg, err := config.Load(dst)
	if err != nil {
		t.Fatalf("the imported site does not load: %v", err)
	}
	if cfg.Site.Site.ID != "plant-7" || cfg.Site.Redis.URL != "redis://127.0.0.1:6379" || cfg.Site.Logging.Level != "info" {
		t.Errorf("site.yaml: %+v", cfg.Site)
	}
	if len(cfg.Channels) != 5 {
		t.Fatalf("%d channels, want 5", len(cfg.Channels))
	}
	ch1, ch4 := cfg.Channel(1), cfg.Channel(4)
	if ch1.Name != "PCS#1" || ch1.Description != "变流器 #1" || !ch1.Enabled || len(ch1.Points[point.Telemetry]) != 2 || ch1.Points[point.Telemetry][1].Modbus == nil {
		t.Errorf("channel 1: %+v", ch1)
	}
	var p1 config.ModbusTCPParams
	if err := ch1.DecodeParameters(&p1); err != nil || p1.Host != "192.168.1.10" || p1.Port != 502 || p1.TimeoutMS != 3000 {
		t.Errorf("channel 1 parameters %+v: %v", p1, err)
	}
	if ch4.Protocol != config.ProtocolGPIO || ch4.Enabled || ch4.Parameters["sysfs_root"] != "/sys/class/gpio" || ch4.Parameters["backend"] != "sysfs" {
		t.Errorf("channel 4: %+v", ch4)
	}
	if keys := paramKeys(cfg.Channel(3)); !slices.Equal(keys, []string{"baud_rate", "data_bits", "device", "parity", "stop_bits", "timeout_ms"}) {
		t.Errorf("channel 3 parameters %v", keys)
	}
}

func paramKeys(ch *config.Channel) []string {
	var keys []string
	for k := range ch.Parameters {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestImportRefusesToOverwrite(t *testing.T) {
	src, _ := copyFixture(t)
	dst := t.TempDir()
	writeFile(t, filepath.Join(dst, "site.yaml"), "site: {id: keep-me}\n")

	r := run(t, "import", "original", src, dst)
	if r.code != ExitFailure || !strings.Contains(r.stderr, "nothing written") || !strings.Contains(r.stderr, filepath.Join(dst, "site.yaml")) {
		t.Fatalf("want a refusal naming site.yaml, got %v", r)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "site.yaml")); string(got) != "site: {id: keep-me}\n" {
		t.Errorf("site.yaml changed: %q", got)
	}
	if _, err := os.Stat(filepath.Join(dst, "comsrv")); err == nil {
		t.Error("other files were written although one existed")
	}

	r = run(t, "import", "original", src, dst, "--force")
	if r.code != 0 || !strings.Contains(r.stdout, "overwrote "+filepath.Join(dst, "site.yaml")) {
		t.Fatalf("--force: %v", r)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "site.yaml")); !strings.Contains(string(got), "imported-site") {
		t.Errorf("site.yaml not overwritten: %q", got)
	}
}

func TestImportNeedsTheChannels(t *testing.T) {
	src := writeFiles(t, map[string]string{"global.yaml": "redis: {url: redis://10.0.0.5:6379}\n"})
	dst := filepath.Join(t.TempDir(), "out")
	r := run(t, "import", "original", src, dst)
	if r.code != ExitFailure || !strings.Contains(r.stderr, "comsrv.yaml") {
		t.Fatalf("want a failure naming comsrv.yaml, got %v", r)
	}
	if _, err := os.Stat(dst); err == nil {
		t.Error("DST was created although nothing could be imported")
	}
}
