// Package chaos runs scripted faults against the whole local VoltageEMS stack
// (redis-server, mosquitto, the cloud hub, voltsim and the edge site, each a real
// process so that kill -9 is real; tools/devstack runs them) while counted
// producers set a telemetry point to 1, 2, 3, …, toggle an alarm signal and send
// commands. After each scenario it counts the sequence in every sink
// (voltage:changes, modsrv's instance, hissrv's history, the cloud history, an
// MQTT subscriber of a netsrv link), the commands from the API to the device and
// the alarm events from alarmsrv to the cloud, and reports what was lost,
// duplicated, and how long recovery took. docs/chaos.md describes the scenarios.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/voltageems/voltage/tools/devstack"
)

// Counter is the point the producer counts on: channel 1 (the demo PV inverter,
// Modbus TCP), telemetry point 5 (pv_total_energy, a uint32 register at scale 1,
// voltsim's "fixed" profile, so a pinned value stays and arrives as an integer).
const (
	CounterChannel = 1
	CounterType    = "T"
	CounterPoint   = 5
	counterHash    = "comsrv:1:T"
	counterField   = "5"
	counterName    = "comsrv:1:T:5"
	// counterInstance and counterMeasurement are where modsrv routes it: pv1's
	// total_energy.
	counterInstance    = 2
	counterMeasurement = "5"
)

// Options configure a Stack.
type Options struct {
	Root     string    // the repository (folder of go.work)
	StateDir string    // binaries, the site copy, Redis, hub and edge data
	Out      io.Writer // the children's prefixed logs (nil: discarded)
	// PollMS is the counter channel's poll interval (the producer must be slower).
	PollMS int
	// Layout is how the edge runs: LayoutAppliance (default: every edge service
	// inside voltage-edge, as `task dev` and most sites run it) or LayoutSplit
	// (voltage-edge holds only NATS and the bridge; each service is its own
	// process, so each can be killed alone).
	Layout Layout
	// Bin, when set, is a folder where Build put the binaries of this layout;
	// "" builds them into StateDir/bin.
	Bin string
	// Prepare, when set, may change the site copy (its folder) after PrepareSite
	// and before any process reads it: more channels for a soak, other limits.
	Prepare func(siteDir string) error
}

// Layout is how the edge site's processes are cut.
type Layout string

const (
	// LayoutAppliance runs every edge service inside voltage-edge.
	LayoutAppliance Layout = "appliance"
	// LayoutSplit runs voltage-edge with VOLTAGE_EDGE_SERVICES=none (the embedded
	// NATS server and the bridge) and each edge service as its own binary.
	LayoutSplit Layout = "split"
)

// EdgeServices are the edge services, in the order the split layout starts them;
// each is a process name of that layout.
var EdgeServices = []string{"comsrv", "modsrv", "hissrv", "rulesrv", "alarmsrv", "apigateway", "netsrv"}

// Stack is the running local stack. Its processes can be killed and restarted.
type Stack struct {
	opts  Options
	bin   string
	procs *devstack.Procs

	SiteID, SiteDir, AdminPassword string
	RedisAddr, MQTTAddr            string
	HubHTTP, HubLeaf, HubNATS      string
	EdgeHTTP, EdgeNATS, SimControl string
	Services                       map[string]string
	leaf                           *linkProxy
}

// Build builds the binaries a stack of layout runs into bin: voltsim, the
// appliance and the hub, and in the split layout every edge service.
func Build(ctx context.Context, root, bin string, layout Layout) error {
	pkgs := slices.Clone(devstack.StackPackages)
	if layout == LayoutSplit {
		for _, name := range EdgeServices {
			pkgs = append(pkgs, "./services/"+name+"/cmd/"+name)
		}
	}
	return devstack.Build(ctx, root, bin, pkgs...)
}

// Start builds the binaries (unless Options.Bin has them), prepares the site and
// starts every process.
func Start(ctx context.Context, o Options) (*Stack, error) {
	if o.PollMS <= 0 {
		o.PollMS = 100
	}
	switch o.Layout {
	case "":
		o.Layout = LayoutAppliance
	case LayoutAppliance, LayoutSplit:
	default:
		return nil, fmt.Errorf("layout %q: want %s or %s", o.Layout, LayoutAppliance, LayoutSplit)
	}
	s := &Stack{opts: o, procs: devstack.NewProcs(devstack.Options{Out: o.Out}), SiteID: "demo-site"}
	state, err := filepath.Abs(o.StateDir)
	if err != nil {
		return nil, err
	}
	s.bin = o.Bin
	if s.bin == "" {
		s.bin = filepath.Join(state, "bin")
		if err := Build(ctx, o.Root, s.bin, o.Layout); err != nil {
			return nil, err
		}
	}
	mosqBin, err := lookPath("mosquitto", "/usr/sbin", "/usr/local/sbin")
	if err != nil {
		return nil, errors.New("mosquitto is not on PATH or in /usr/sbin: install it with `apt-get install mosquitto`")
	}
	ok := false
	defer func() {
		if !ok {
			s.Stop()
		}
	}()

	// Redis with the AOF fsynced on every write: what Redis acknowledged survives kill -9.
	s.RedisAddr = devstack.FreeAddr()
	if _, err := devstack.StartRedis(ctx, s.procs, filepath.Join(state, "redis"), s.RedisAddr, "--appendfsync", "always"); err != nil {
		return nil, err
	}

	s.MQTTAddr = devstack.FreeAddr()
	mqDir := filepath.Join(state, "mosquitto")
	if err := devstack.WriteFile(filepath.Join(mqDir, "mosquitto.conf"), fmt.Sprintf(
		"listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n", devstack.Port(s.MQTTAddr))); err != nil {
		return nil, err
	}
	if _, err := s.procs.Start("mosquitto", mosqBin, mqDir, nil, "-c", filepath.Join(mqDir, "mosquitto.conf")); err != nil {
		return nil, err
	}
	if err := devstack.WaitTCP(ctx, s.MQTTAddr, 10*time.Second); err != nil {
		return nil, fmt.Errorf("mosquitto: %w; its last output:\n%s", err, s.procs.Proc("mosquitto").Tail())
	}

	if s.SiteDir, err = PrepareSite(filepath.Join(o.Root, "config"), filepath.Join(state, "site"), "tcp://"+s.MQTTAddr, o.PollMS); err != nil {
		return nil, err
	}
	if o.Prepare != nil {
		if err := o.Prepare(s.SiteDir); err != nil {
			return nil, fmt.Errorf("prepare the site copy: %w", err)
		}
	}
	if s.AdminPassword, err = devstack.Secret(); err != nil {
		return nil, err
	}
	sitePassword, err := devstack.Secret()
	if err != nil {
		return nil, err
	}

	s.HubNATS, s.HubLeaf, s.HubHTTP = devstack.FreeAddr(), devstack.FreeAddr(), devstack.FreeAddr()
	if _, err := devstack.StartHub(s.procs, filepath.Join(s.bin, devstack.CloudBinary), devstack.Hub{
		Dir: filepath.Join(state, "cloud"), ClientAddr: s.HubNATS, LeafAddr: s.HubLeaf, HTTPAddr: s.HubHTTP,
		AdminPassword: s.AdminPassword, SiteID: s.SiteID, SiteName: "chaos", SitePassword: sitePassword,
		BcryptCost: bcrypt.MinCost,
	}); err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx, "cloud"); err != nil {
		return nil, err
	}

	s.SimControl = devstack.FreeAddr()
	if _, err := s.procs.Start("voltsim", filepath.Join(s.bin, devstack.VoltsimBinary), state, nil,
		"--config", s.SiteDir, "--control", s.SimControl); err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx, "voltsim"); err != nil {
		return nil, err
	}

	// The edge's leaf link runs through a proxy the suite can cut.
	if s.leaf, err = startLinkProxy(s.HubLeaf); err != nil {
		return nil, fmt.Errorf("leaf link proxy: %w", err)
	}
	s.EdgeHTTP, s.EdgeNATS = devstack.FreeAddr(), devstack.FreeAddr()
	edgeDir := filepath.Join(state, "edge")
	edge := devstack.Edge{HTTPAddr: s.EdgeHTTP, NATSAddr: s.EdgeNATS, RedisURL: "redis://" + s.RedisAddr + "/0",
		AdminPassword: s.AdminPassword, SiteID: s.SiteID, SitePassword: sitePassword, HubLeaf: s.leaf.Addr(),
		Listen: devstack.ServiceListen(nil)}
	if o.Layout == LayoutSplit {
		// voltage-edge holds NATS and the bridge; it finds the services at their
		// VOLTAGE_LISTEN_* addresses, as a site with separate containers would.
		edge.InProcess = "none"
	}
	if _, err := devstack.StartEdge(s.procs, filepath.Join(s.bin, devstack.EdgeBinary), edgeDir, s.SiteDir, edge); err != nil {
		return nil, err
	}
	if o.Layout == LayoutSplit {
		s.Services = map[string]string{}
		for _, name := range EdgeServices {
			// The appliance's folder: each keeps its data in ./data/{name}.
			if _, err := devstack.StartEdgeService(s.procs, filepath.Join(s.bin, name), edgeDir, s.SiteDir, edge, name); err != nil {
				return nil, err
			}
			s.Services[name] = edge.Listen[name]
		}
	}
	// Ready: the appliance's /readyz covers every service, in process or not.
	services, err := devstack.WaitEdgeReady(ctx, s.EdgeHTTP, 90*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w; its last output:\n%s", err, s.procs.Proc("edge").Tail())
	}
	if o.Layout == LayoutAppliance {
		s.Services = services
	}
	ok = true
	return s, nil
}

// Layout is how the stack's edge runs.
func (s *Stack) Layout() Layout { return s.opts.Layout }

// Proc returns the named process ("redis", "mosquitto", "cloud", "voltsim",
// "edge", and in the split layout each of EdgeServices); nil when there is none.
func (s *Stack) Proc(name string) *devstack.Proc { return s.procs.Proc(name) }

// Stop ends every process, the last started first.
func (s *Stack) Stop() {
	s.procs.StopAll()
	if s.leaf != nil {
		s.leaf.Close()
	}
}

// CutLeaf closes the edge's leaf link to the hub and refuses it until HealLeaf;
// both ends keep running.
func (s *Stack) CutLeaf() { s.leaf.Cut() }

// HealLeaf lets the edge's leaf link through again.
func (s *Stack) HealLeaf() { s.leaf.Resume() }

// Kill sends SIGKILL and waits until the process is gone.
func (s *Stack) Kill(name string) error { return s.procs.Kill(name) }

// Restart starts a killed process again with its command line and waits until it
// serves.
func (s *Stack) Restart(ctx context.Context, name string) error {
	if err := s.procs.Restart(name); err != nil {
		return err
	}
	return s.waitReady(ctx, name)
}

// waitReady waits until the named process serves: its port accepts connections,
// or its HTTP readiness answers 200.
func (s *Stack) waitReady(ctx context.Context, name string) error {
	var err error
	switch name {
	case "redis":
		err = devstack.WaitTCP(ctx, s.RedisAddr, 30*time.Second)
	case "mosquitto":
		err = devstack.WaitTCP(ctx, s.MQTTAddr, 30*time.Second)
	case "cloud":
		err = devstack.WaitHTTP(ctx, "http://"+s.HubHTTP+"/trust-key", 60*time.Second)
	case "voltsim":
		err = devstack.WaitTCP(ctx, s.SimControl, 20*time.Second)
	case "edge":
		_, err = devstack.WaitEdgeReady(ctx, s.EdgeHTTP, 90*time.Second)
	default:
		addr, ok := s.Services[name]
		if !ok {
			return fmt.Errorf("no process %q", name)
		}
		err = devstack.WaitHTTP(ctx, "http://"+addr+"/readyz", 90*time.Second)
	}
	if err != nil {
		return fmt.Errorf("%s: %w; its last output:\n%s", name, err, s.procs.Proc(name).Tail())
	}
	return nil
}

// PrepareSite copies the demo site (src) to dst with every device on a free port,
// the counter channel polled every pollMS, and netsrv's "local" MQTT link enabled
// towards broker.
func PrepareSite(src, dst, broker string, pollMS int) (string, error) {
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		return devstack.WriteFile(filepath.Join(dst, rel), string(b))
	})
	if err != nil {
		return "", fmt.Errorf("copy the demo site: %w", err)
	}
	chans := filepath.Join(dst, "comsrv", "channels.yaml")
	b, err := os.ReadFile(chans)
	if err != nil {
		return "", err
	}
	s := regexp.MustCompile(`port: 150\d\d\b`).ReplaceAllStringFunc(string(b), func(demo string) string {
		for {
			// Never the demo's own port: `task dev` may be running on it.
			if p := "port: " + devstack.Port(devstack.FreeAddr()); p != demo {
				return p
			}
		}
	})
	s = strings.ReplaceAll(s, "/tmp/voltage-demo/", filepath.Join(dst, "gpio")+"/")
	s = regexp.MustCompile(`"239\.64\.142\.206:150\d\d"`).ReplaceAllString(s, `"239.64.142.206:`+devstack.Port(devstack.FreeAddr())+`"`)
	// The counter channel (the first one) polls fast, so each counted value is seen.
	first := strings.Index(s, "poll_interval_ms: 1000")
	if first < 0 {
		return "", errors.New("demo channels.yaml: channel 1 has no poll_interval_ms: 1000 any more; update tools/chaos")
	}
	s = s[:first] + "poll_interval_ms: " + strconv.Itoa(pollMS) + s[first+len("poll_interval_ms: 1000"):]
	if err := os.WriteFile(chans, []byte(s), 0o644); err != nil {
		return "", err
	}
	// The counted alarm: a digital rule on the toggled signal, flapping
	// suppression off (the signal toggles on purpose, several times a second).
	al := filepath.Join(dst, "alarmsrv", "alarms.yaml")
	if b, err = os.ReadFile(al); err != nil {
		return "", err
	}
	a := regexp.MustCompile(`(?m)^flapping: \{[^}]*\}`).ReplaceAllString(string(b), "flapping: {transitions: 0}")
	if a == string(b) || !strings.Contains(a, "\nalarms:\n") {
		return "", errors.New("demo alarms.yaml: no top-level flapping or alarms any more; update tools/chaos")
	}
	if err := os.WriteFile(al, []byte(strings.TrimRight(a, "\n")+"\n"+alarmRuleYAML), 0o644); err != nil {
		return "", err
	}
	// The model sink: modsrv routes the counter to pv1's total_energy.
	routing := filepath.Join(dst, "modsrv", "instances", "pv1", "channel_routing.csv")
	if b, err = os.ReadFile(routing); err != nil {
		return "", err
	}
	if !strings.Contains(string(b), fmt.Sprintf("\n%d,%s,%d,M,%s,", CounterChannel, CounterType, CounterPoint, counterMeasurement)) {
		return "", errors.New("demo modsrv routing of pv1 no longer maps the counter point to measurement 5; update tools/chaos")
	}
	ns := filepath.Join(dst, "netsrv", "netsrv.yaml")
	b, err = os.ReadFile(ns)
	if err != nil {
		return "", err
	}
	n := strings.Replace(string(b), "enabled: false\n    broker: tcp://127.0.0.1:1883", "enabled: true\n    broker: "+broker, 1)
	if n == string(b) {
		return "", errors.New("demo netsrv.yaml: the \"local\" MQTT link changed; update tools/chaos")
	}
	return dst, os.WriteFile(ns, []byte(n), 0o644)
}

func lookPath(name string, dirs ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}
