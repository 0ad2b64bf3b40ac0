package chaos

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/tools/devstack"
)

func TestTallyCountsLossDuplicatesAndAckedLoss(t *testing.T) {
	// Produced 101…110. The stream lost 103 (never read: the outage) and holds 105
	// twice (read again after a reconnect). History holds 105 twice as well (not
	// delivered twice), misses 107 (a loss), and holds 109 three times (one copy
	// delivered twice). The cloud holds 110, which the stream no longer holds:
	// Redis lost an acknowledged write.
	counts := map[string]Counts{
		"redis":   {101: 1, 102: 1, 104: 1, 105: 2, 106: 1, 107: 1, 108: 1, 109: 2},
		"history": {101: 1, 102: 1, 104: 1, 105: 2, 106: 1, 108: 1, 109: 3},
		"cloud":   {101: 1, 102: 1, 104: 1, 105: 2, 106: 1, 107: 1, 108: 1, 109: 2, 110: 1},
		"mqtt":    {},
	}
	rec := map[string]time.Duration{"redis": time.Second, "history": 2 * time.Second}
	sinks, acked := tally([]string{"redis", "history", "cloud", "mqtt"}, counts, rec, 100, 10)
	want := []SinkResult{
		{Sink: "redis", Got: 8, Duplicates: 2, Missing: 2, LostVsRedis: 0, Recovery: time.Second},
		{Sink: "history", Got: 7, Duplicates: 3, DupVsRedis: 1, Missing: 3, LostVsRedis: 1, Recovery: 2 * time.Second},
		{Sink: "cloud", Got: 9, Duplicates: 2, Missing: 1, LostVsRedis: 0, Recovery: -1},
		{Sink: "mqtt", Got: 0, Missing: 10, LostVsRedis: 8, Recovery: -1},
	}
	if len(sinks) != len(want) {
		t.Fatalf("got %d sinks", len(sinks))
	}
	for i := range want {
		if sinks[i] != want[i] {
			t.Errorf("%s: got %+v, want %+v", want[i].Sink, sinks[i], want[i])
		}
	}
	if acked != 1 {
		t.Errorf("acked lost %d, want 1 (110)", acked)
	}
	r := Result{Sinks: sinks, AckedLost: acked}
	if r.Lost() != 2 { // history's 107 and Redis's 110; MQTT is not durable at the subscriber
		t.Errorf("Lost() = %d, want 2", r.Lost())
	}
	var table strings.Builder
	WriteTable(&table, []Result{{Scenario: "x", Produced: 10, Sinks: sinks, AckedLost: acked}})
	if !strings.Contains(table.String(), "7 (+3 dup, 1 delivered twice)") || !strings.Contains(table.String(), "never") {
		t.Errorf("table:\n%s", table.String())
	}
}

func TestCountsKeepOnlyCountedValues(t *testing.T) {
	c := Counts{}
	for _, v := range []float64{0, -3, 2.5, 230.4, 7, 7, 7.0000001, 1e9} {
		c.add(v)
	}
	if len(c) != 2 || c[7] != 3 || c[1_000_000_000] != 1 {
		t.Errorf("counts %v", c)
	}
}

func TestPrepareSiteMakesAValidChaosSite(t *testing.T) {
	dst, err := PrepareSite(filepath.Join(repoRoot(t), "config"), t.TempDir(), "tcp://127.0.0.1:1", 100)
	if err != nil {
		t.Fatal(err)
	}
	site, err := config.Load(dst)
	if err != nil {
		t.Fatalf("the chaos site does not load: %v", err)
	}
	if site.Site.Site.ID == "" {
		t.Error("no site id")
	}
	chans, _ := os.ReadFile(filepath.Join(dst, "comsrv", "channels.yaml"))
	demo, _ := os.ReadFile(filepath.Join(repoRoot(t), "config", "comsrv", "channels.yaml"))
	ports := regexp.MustCompile(`port: (\d+)`)
	got, was := ports.FindAllStringSubmatch(string(chans), -1), ports.FindAllStringSubmatch(string(demo), -1)
	if strings.Count(string(chans), "poll_interval_ms: 100,") != 1 || len(got) != len(was) || len(got) == 0 {
		t.Errorf("channels.yaml: want the counter channel polled every 100 ms and %d ports:\n%s", len(was), chans)
	}
	for i := range min(len(got), len(was)) {
		if got[i][1] == was[i][1] {
			t.Errorf("channels.yaml: device %d kept the demo's port %s; want a free one", i+1, was[i][1])
		}
	}
	ns, _ := os.ReadFile(filepath.Join(dst, "netsrv", "netsrv.yaml"))
	if !strings.Contains(string(ns), "enabled: true\n    broker: tcp://127.0.0.1:1") {
		t.Errorf("netsrv.yaml: the local MQTT link is not enabled towards the test broker:\n%.600s", ns)
	}
}

func TestPrepareSiteRefusesADemoSiteItDoesNotKnow(t *testing.T) {
	src := t.TempDir()
	if err := devstack.WriteFile(filepath.Join(src, "comsrv", "channels.yaml"), "channels: []\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := PrepareSite(src, t.TempDir(), "tcp://127.0.0.1:1", 100); err == nil || !strings.Contains(err.Error(), "update tools/chaos") {
		t.Errorf("want an error naming what changed, got %v", err)
	}
}

func TestScenarioByName(t *testing.T) {
	for _, s := range Scenarios {
		got, ok := ScenarioByName(s.Name)
		if !ok || got.Name != s.Name || got.Inject == nil || got.Restore == nil || got.About == "" {
			t.Errorf("scenario %s incomplete", s.Name)
		}
	}
	if _, ok := ScenarioByName("nope"); ok {
		t.Error("unknown scenario found")
	}
}

func TestTallyCommands(t *testing.T) {
	// Commands 1–5 were accepted: 1 and 2 ran (2 twice), 3 failed at a dead
	// device, 4 expired, 5 is still pending. Command 6 was sent three times and
	// never accepted, but ran (the gateway queued it and died before answering).
	// The device also holds a write of value 99.9, which no command sent.
	accepted := map[int]string{1: "a", 2: "b", 3: "c", 4: "d", 5: "e"}
	outcomes := map[int]command.Status{1: command.OK, 2: command.OK, 3: command.Failed, 4: command.Expired, 5: command.Pending}
	writes := map[int]int{commandIndex(commandValue(1)): 1, commandIndex(commandValue(2)): 2,
		commandIndex(commandValue(6)): 1, commandIndex(99.9): 1}
	got := tallyCommands(accepted, 3, 8, outcomes, writes)
	want := CommandResult{Sent: 8, Accepted: 5, Refused: 3, OK: 2, Failed: 1, Expired: 1, Unfinished: 1,
		AtDevice: 2, Twice: 1, RanUnanswered: 1, Stray: 1}
	if got != want {
		t.Errorf("tallyCommands = %+v\nwant            %+v", got, want)
	}
	if got.Lost() != 1 {
		t.Errorf("Lost() = %d, want 1 (the pending command)", got.Lost())
	}
	// A command reported ok that the device never saw is lost too.
	if r := tallyCommands(map[int]string{1: "a"}, 0, 1, map[int]command.Status{1: command.OK}, nil); r.OKNotAtDevice != 1 || r.Lost() != 1 {
		t.Errorf("ok without a device write: %+v, Lost() = %d; want OKNotAtDevice 1, Lost 1", r, r.Lost())
	}
}

func TestCommandValuesRoundTrip(t *testing.T) {
	for k := 1; k <= 2*commandSpan; k++ {
		if i := commandIndex(commandValue(k)); i != k%commandSpan {
			t.Fatalf("command %d: value %v reads back as index %d, want %d", k, commandValue(k), i, k%commandSpan)
		}
		if v := commandValue(k); v < 0 || v > 100 {
			t.Fatalf("command %d: value %v outside pv_power_limit's 0–100", k, v)
		}
	}
}

func TestPlanGroupsScenariosByLayout(t *testing.T) {
	names := func(b Batch) (out []string) {
		for _, sc := range b.Scenarios {
			out = append(out, sc.Name)
		}
		return out
	}
	either := Scenario{Name: "either"}
	split := Scenario{Name: "split", Layout: LayoutSplit}
	appliance := Scenario{Name: "appliance", Layout: LayoutAppliance}
	cases := []struct {
		in   []Scenario
		want map[Layout][]string
	}{
		{[]Scenario{either}, map[Layout][]string{LayoutAppliance: {"either"}}},
		{[]Scenario{either, split}, map[Layout][]string{LayoutSplit: {"either", "split"}}},
		{[]Scenario{appliance, either, split}, map[Layout][]string{LayoutSplit: {"either", "split"}, LayoutAppliance: {"appliance"}}},
		{[]Scenario{appliance, either}, map[Layout][]string{LayoutAppliance: {"appliance", "either"}}},
	}
	for _, c := range cases {
		got := map[Layout][]string{}
		for _, b := range Plan(c.in) {
			got[b.Layout] = names(b)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Plan(%v) = %v, want %v", names(Batch{Scenarios: c.in}), got, c.want)
		}
	}
	// Every scenario of the suite lands in a batch of a layout it runs in.
	for _, b := range Plan(Scenarios) {
		for _, sc := range b.Scenarios {
			if sc.Layout != "" && sc.Layout != b.Layout {
				t.Errorf("%s needs the %s layout, planned on %s", sc.Name, sc.Layout, b.Layout)
			}
		}
	}
}
