package gpio

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
)

// fakeSysfs builds a /sys/class/gpio look-alike: export and unexport files and,
// for each given number, gpioN/direction and gpioN/value.
func fakeSysfs(t *testing.T, lines map[int]string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "gpio")
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(root, 0o755))
	must(os.WriteFile(filepath.Join(root, "export"), nil, 0o644))
	must(os.WriteFile(filepath.Join(root, "unexport"), nil, 0o644))
	for n, v := range lines {
		dir := filepath.Join(root, "gpio"+itoa(n))
		must(os.MkdirAll(dir, 0o755))
		must(os.WriteFile(filepath.Join(dir, "direction"), []byte("in\n"), 0o644))
		must(os.WriteFile(filepath.Join(dir, "value"), []byte(v+"\n"), 0o644))
	}
	return root
}

func itoa(n int) string { return strconv.Itoa(n) }

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func loadChannel(t *testing.T, files map[string]string) *config.Channel {
	t.Helper()
	dir := t.TempDir()
	files["site.yaml"] = "site: {id: t}\n"
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &cfg.Channels[0]
}

type recorder struct {
	mu      sync.Mutex
	samples map[point.Type]map[point.ID]point.Sample
	fails   map[point.ID]point.Quality
}

func (r *recorder) Sample(t point.Type, s point.Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.samples[t] == nil {
		r.samples[t] = map[point.ID]point.Sample{}
	}
	r.samples[t][s.ID] = s
}

func (r *recorder) Fail(_ point.Type, id point.ID, q point.Quality, _ error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fails[id] = q
}

func TestSysfsInputsOutputsActiveLow(t *testing.T) {
	root := fakeSysfs(t, map[int]string{17: "1", 18: "1", 20: "1", 21: "0"})
	ch := loadChannel(t, map[string]string{
		"comsrv/channels.yaml":                 "channels:\n  - {id: 7, name: io, protocol: gpio, parameters: {backend: sysfs, sysfs_root: '" + root + "'}}\n",
		"comsrv/7/signal.csv":                  "point_id,signal_name,reverse\n1,door_closed,0\n2,estop_ok,1\n",
		"comsrv/7/mapping/signal_mapping.csv":  "point_id,gpio,chip,line\n1,17,gpiochip0,17\n2,18,,\n",
		"comsrv/7/control.csv":                 "point_id,signal_name,reverse,control_type,pulse_duration_ms\n1,fan,0,latching,\n2,alarm_lamp,1,latching,\n3,horn,0,pulse,50\n",
		"comsrv/7/mapping/control_mapping.csv": "point_id,gpio\n1,20\n2,21\n3,22\n",
	})
	d, err := New(ch, slog.New(slog.DiscardHandler), Sysfs{Root: root, ExportWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// gpio22 is not exported: the driver writes export and waits for the kernel,
	// which a fake tree has no kernel for. Play the kernel once the export is written.
	go func() {
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
			if b, _ := os.ReadFile(filepath.Join(root, "export")); string(b) == "22" {
				dir := filepath.Join(root, "gpio22")
				_ = os.MkdirAll(dir, 0o755)
				_ = os.WriteFile(filepath.Join(dir, "direction"), []byte("in\n"), 0o644)
				_ = os.WriteFile(filepath.Join(dir, "value"), []byte("0\n"), 0o644)
				return
			}
		}
	}()
	if err := d.Connect(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got := read(t, filepath.Join(root, "gpio17", "direction")); got != "in" {
		t.Errorf("input direction %q", got)
	}
	// Outputs keep their level when requested: gpio20 was high, gpio21 low.
	for n, want := range map[int]string{20: "high", 21: "low", 22: "low"} {
		if got := read(t, filepath.Join(root, "gpio"+itoa(n), "direction")); got != want {
			t.Errorf("gpio%d direction %q, want %q (keep the level)", n, got, want)
		}
	}

	sink := &recorder{samples: map[point.Type]map[point.ID]point.Sample{}, fails: map[point.ID]point.Quality{}}
	if err := d.Poll(ctx, sink); err != nil {
		t.Fatal(err)
	}
	if s := sink.samples[point.Signal][1]; s.Value != 1 || s.Raw != 1 {
		t.Errorf("door_closed %+v, want 1", s)
	}
	if s := sink.samples[point.Signal][2]; s.Value != 0 || s.Raw != 1 {
		t.Errorf("active-low estop_ok %+v, want value 0 from a high line", s)
	}
	if s := sink.samples[point.Control][2]; s.Value != 1 || s.Raw != 0 {
		t.Errorf("active-low alarm lamp read back %+v, want on (line low)", s)
	}

	fan, lamp, horn := ch.Point(point.Control, 1), ch.Point(point.Control, 2), ch.Point(point.Control, 3)
	if err := d.Write(ctx, fan, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(ctx, lamp, 0); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(root, "gpio20", "value")); got != "0" {
		t.Errorf("fan off: gpio20 = %s", got)
	}
	if got := read(t, filepath.Join(root, "gpio21", "value")); got != "1" {
		t.Errorf("active-low lamp off: gpio21 = %s, want 1 (high)", got)
	}
	if err := d.Write(ctx, horn, 1); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(root, "gpio22", "value")); got != "0" {
		t.Errorf("pulse output after the pulse: %s, want 0", got)
	}
	if err := d.Write(ctx, ch.Point(point.Signal, 1), 1); err == nil {
		t.Error("wrote an input")
	}

	// A line whose value file went away is comm_lost; the others still read.
	if err := os.Remove(filepath.Join(root, "gpio18", "value")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "gpio17", "value"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Poll(ctx, sink); err != nil {
		t.Fatal(err)
	}
	if sink.fails[2] != point.CommLost || sink.samples[point.Signal][1].Value != 0 {
		t.Errorf("after gpio18 vanished: fails %v, door %v", sink.fails, sink.samples[point.Signal][1])
	}
}

func TestExportThatNeverAppearsFails(t *testing.T) {
	root := fakeSysfs(t, nil)
	_, err := Sysfs{Root: root, ExportWait: 30 * time.Millisecond}.Input(config.GPIOMapping{GPIO: 5, Line: -1})
	if err == nil || !strings.Contains(err.Error(), "gpio5 did not appear") {
		t.Fatalf("error %v", err)
	}
	if got := read(t, filepath.Join(root, "export")); got != "5" {
		t.Fatalf("export holds %q, want 5", got)
	}
}

func TestCDevMissingChipIsAnError(t *testing.T) {
	_, err := CDev{Consumer: "test"}.Input(config.GPIOMapping{Chip: "gpiochip-none", Line: 3, GPIO: -1})
	if err == nil || !strings.Contains(err.Error(), "gpiochip-none") {
		t.Fatalf("error %v, want one naming the chip", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct{ params, mapping, want string }{
		"sysfs without gpio": {"{backend: sysfs}", "point_id,chip,line\n1,gpiochip0,3\n", "needs column gpio"},
		"cdev without chip":  {"{}", "point_id,gpio\n1,3\n", "needs columns chip and line"},
		"bad backend":        {"{backend: mmap}", "point_id,gpio\n1,3\n", "backend"},
	} {
		t.Run(name, func(t *testing.T) {
			ch := loadChannel(t, map[string]string{
				"comsrv/channels.yaml":                "channels:\n  - {id: 7, name: io, protocol: gpio, parameters: " + tc.params + "}\n",
				"comsrv/7/signal.csv":                 "point_id,signal_name\n1,x\n",
				"comsrv/7/mapping/signal_mapping.csv": tc.mapping,
			})
			_, err := New(ch, slog.New(slog.DiscardHandler), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
