// Package chaos runs scripted faults against the whole local VoltageEMS stack
// (redis-server, mosquitto, the cloud hub, voltsim and the edge appliance, each a
// real process so that kill -9 is real) while a counted producer sets a telemetry
// point to 1, 2, 3, … through voltsim's control API. After each scenario it counts
// the sequence in every sink (voltage:changes, hissrv's history, the cloud
// history, an MQTT subscriber of a netsrv link) and reports what was lost,
// duplicated, and how long recovery took. docs/chaos.md describes the scenarios.
package chaos

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/voltageems/voltage/shared/service"
	"github.com/voltageems/voltage/shared/testharness"
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
)

// Options configure a Stack.
type Options struct {
	Root     string    // the repository (folder of go.work)
	StateDir string    // binaries, the site copy, Redis, hub and edge data
	Out      io.Writer // the children's prefixed logs (nil: discarded)
	// PollMS is the counter channel's poll interval (the producer must be slower).
	PollMS int
}

// Stack is the running local stack. Its processes can be killed and restarted.
type Stack struct {
	opts  Options
	bin   string
	out   io.Writer
	outMu sync.Mutex

	SiteID, SiteDir, AdminPassword string
	RedisAddr, MQTTAddr            string
	HubHTTP, HubLeaf, HubNATS      string
	EdgeHTTP, EdgeNATS, SimControl string
	Services                       map[string]string
	procs                          map[string]*Proc
	leaf                           *linkProxy
	order                          []string
}

// Proc is one child process that can be killed and started again with the same
// command line.
type Proc struct {
	Name string
	bin  string
	args []string
	env  []string
	dir  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	tail []string // its last lines of output, for a failure message
}

// procTailLines is how much of a process's output a failure message shows.
const procTailLines = 15

// Tail is the process's last lines of output.
func (p *Proc) Tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

// Start builds the binaries, prepares the site and starts every process.
func Start(ctx context.Context, o Options) (*Stack, error) {
	if o.PollMS <= 0 {
		o.PollMS = 100
	}
	s := &Stack{opts: o, out: o.Out, procs: map[string]*Proc{}, SiteID: "demo-site"}
	if s.out == nil {
		s.out = io.Discard
	}
	state, err := filepath.Abs(o.StateDir)
	if err != nil {
		return nil, err
	}
	s.bin = filepath.Join(state, "bin")
	build := exec.CommandContext(ctx, "go", "build", "-o", s.bin+string(filepath.Separator),
		"./tools/cmd/voltsim", "./edge/cmd/voltage-edge", "./cloud/cmd/voltage-cloud")
	build.Dir = o.Root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build: %w\n%s", err, out)
	}
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server is not on PATH: install it with `apt-get install redis-server`")
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
	s.RedisAddr = freeAddr()
	redisDir := filepath.Join(state, "redis")
	if err := os.MkdirAll(redisDir, 0o755); err != nil {
		return nil, err
	}
	if err := s.add(ctx, "redis", redisBin, redisDir, nil, "--port", port(s.RedisAddr), "--bind", "127.0.0.1",
		"--dir", redisDir, "--appendonly", "yes", "--appendfsync", "always", "--save", ""); err != nil {
		return nil, err
	}
	if err := waitTCP(ctx, s.RedisAddr, 10*time.Second); err != nil {
		return nil, fmt.Errorf("redis-server: %w; its last output:\n%s", err, s.procs["redis"].Tail())
	}

	s.MQTTAddr = freeAddr()
	mqDir := filepath.Join(state, "mosquitto")
	if err := writeFile(filepath.Join(mqDir, "mosquitto.conf"), fmt.Sprintf(
		"listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n", port(s.MQTTAddr))); err != nil {
		return nil, err
	}
	if err := s.add(ctx, "mosquitto", mosqBin, mqDir, nil, "-c", filepath.Join(mqDir, "mosquitto.conf")); err != nil {
		return nil, err
	}
	if err := waitTCP(ctx, s.MQTTAddr, 10*time.Second); err != nil {
		return nil, fmt.Errorf("mosquitto: %w; its last output:\n%s", err, s.procs["mosquitto"].Tail())
	}

	if s.SiteDir, err = PrepareSite(filepath.Join(o.Root, "config"), filepath.Join(state, "site"), "tcp://"+s.MQTTAddr, o.PollMS); err != nil {
		return nil, err
	}
	if s.AdminPassword, err = secret(); err != nil {
		return nil, err
	}
	sitePassword, err := secret()
	if err != nil {
		return nil, err
	}
	siteHash, err := bcrypt.GenerateFromPassword([]byte(sitePassword), bcrypt.MinCost)
	if err != nil {
		return nil, err
	}

	s.HubNATS, s.HubLeaf, s.HubHTTP = freeAddr(), freeAddr(), freeAddr()
	cloudDir := filepath.Join(state, "cloud")
	if err := writeFile(filepath.Join(cloudDir, "cloud.yaml"), fmt.Sprintf(
		"nats: {client_addr: %q, leaf_addr: %q, store_dir: %q}\nhttp: {addr: %q}\n"+
			"sites:\n  - {id: %q, name: chaos, leaf_password: %q}\n",
		s.HubNATS, s.HubLeaf, filepath.Join(cloudDir, "data"), s.HubHTTP, s.SiteID, siteHash)); err != nil {
		return nil, err
	}
	if err := s.add(ctx, "cloud", filepath.Join(s.bin, "voltage-cloud"), cloudDir,
		[]string{"VOLTAGE_ADMIN_PASSWORD=" + s.AdminPassword}, "--config", cloudDir); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, "http://"+s.HubHTTP+"/trust-key", 60*time.Second); err != nil {
		return nil, fmt.Errorf("cloud hub: %w", err)
	}

	s.SimControl = freeAddr()
	if err := s.add(ctx, "voltsim", filepath.Join(s.bin, "voltsim"), state, nil,
		"--config", s.SiteDir, "--control", s.SimControl); err != nil {
		return nil, err
	}
	if err := waitTCP(ctx, s.SimControl, 20*time.Second); err != nil {
		return nil, fmt.Errorf("voltsim: %w; its last output:\n%s", err, s.procs["voltsim"].Tail())
	}

	// The edge's leaf link runs through a proxy the suite can cut.
	if s.leaf, err = startLinkProxy(s.HubLeaf); err != nil {
		return nil, fmt.Errorf("leaf link proxy: %w", err)
	}
	s.EdgeHTTP, s.EdgeNATS = freeAddr(), freeAddr()
	edgeDir := filepath.Join(state, "edge")
	if err := os.MkdirAll(edgeDir, 0o755); err != nil {
		return nil, err
	}
	env := []string{
		"VOLTAGE_ADMIN_PASSWORD=" + s.AdminPassword,
		"VOLTAGE_REDIS_URL=redis://" + s.RedisAddr + "/0",
		"VOLTAGE_HTTP_ADDR=" + s.EdgeHTTP,
		"VOLTAGE_NATS_URL=nats://" + s.EdgeNATS,
		"VOLTAGE_NATS_LEAF_REMOTE=nats-leaf://" + s.SiteID + ":" + sitePassword + "@" + s.leaf.Addr(),
	}
	for name := range service.DefaultAddrs {
		if name != "edge" {
			env = append(env, service.EnvListenPrefix+strings.ToUpper(name)+"="+freeAddr())
		}
	}
	if err := s.add(ctx, "edge", filepath.Join(s.bin, "voltage-edge"), edgeDir, env, "--config", s.SiteDir); err != nil {
		return nil, err
	}
	if s.Services, err = s.edgeServices(ctx, 90*time.Second); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// Proc returns the named process ("redis", "mosquitto", "cloud", "voltsim", "edge").
func (s *Stack) Proc(name string) *Proc { return s.procs[name] }

// Stop ends every process, the last started first.
func (s *Stack) Stop() {
	for i := len(s.order) - 1; i >= 0; i-- {
		s.procs[s.order[i]].stop(5 * time.Second)
	}
	if s.leaf != nil {
		s.leaf.Close()
	}
}

// CutLeaf closes the edge's leaf link to the hub and refuses it until HealLeaf;
// both ends keep running.
func (s *Stack) CutLeaf() { s.leaf.Cut() }

// HealLeaf lets the edge's leaf link through again.
func (s *Stack) HealLeaf() { s.leaf.Resume() }

func (s *Stack) add(ctx context.Context, name, bin, dir string, env []string, args ...string) error {
	p := &Proc{Name: name, bin: bin, args: args, env: env, dir: dir}
	s.procs[name] = p
	s.order = append(s.order, name)
	return s.startProc(p)
}

func (s *Stack) startProc(p *Proc) error {
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Dir = p.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			s.outMu.Lock()
			fmt.Fprintf(s.out, "%-9s| %s\n", p.Name, sc.Text())
			s.outMu.Unlock()
			p.mu.Lock()
			p.tail = append(p.tail, sc.Text())
			if len(p.tail) > procTailLines {
				p.tail = p.tail[len(p.tail)-procTailLines:]
			}
			p.mu.Unlock()
		}
		_ = cmd.Wait()
		close(done)
	}()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	return nil
}

// Kill sends SIGKILL and waits until the process is gone.
func (s *Stack) Kill(name string) error {
	p := s.procs[name]
	if p == nil {
		return fmt.Errorf("no process %q", name)
	}
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %s: %w", name, err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s did not exit within 10 s of SIGKILL", name)
	}
}

// Restart starts a killed process again with its command line and waits until it
// serves (its port accepts connections).
func (s *Stack) Restart(ctx context.Context, name string) error {
	p := s.procs[name]
	if p == nil {
		return fmt.Errorf("no process %q", name)
	}
	if err := s.startProc(p); err != nil {
		return err
	}
	switch name {
	case "redis":
		return waitTCP(ctx, s.RedisAddr, 30*time.Second)
	case "mosquitto":
		return waitTCP(ctx, s.MQTTAddr, 30*time.Second)
	case "cloud":
		return waitHTTP(ctx, "http://"+s.HubHTTP+"/trust-key", 60*time.Second)
	case "edge":
		_, err := s.edgeServices(ctx, 90*time.Second)
		return err
	case "voltsim":
		return waitTCP(ctx, s.SimControl, 20*time.Second)
	}
	return nil
}

func (p *Proc) stop(timeout time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
	}
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
		return writeFile(filepath.Join(dst, rel), string(b))
	})
	if err != nil {
		return "", fmt.Errorf("copy the demo site: %w", err)
	}
	chans := filepath.Join(dst, "comsrv", "channels.yaml")
	b, err := os.ReadFile(chans)
	if err != nil {
		return "", err
	}
	s := regexp.MustCompile(`port: 150\d\d\b`).ReplaceAllStringFunc(string(b), func(string) string {
		return "port: " + port(freeAddr())
	})
	s = strings.ReplaceAll(s, "/tmp/voltage-demo/", filepath.Join(dst, "gpio")+"/")
	s = regexp.MustCompile(`"239\.64\.142\.206:150\d\d"`).ReplaceAllString(s, `"239.64.142.206:`+port(freeAddr())+`"`)
	// The counter channel (the first one) polls fast, so each counted value is seen.
	first := strings.Index(s, "poll_interval_ms: 1000")
	if first < 0 {
		return "", errors.New("demo channels.yaml: channel 1 has no poll_interval_ms: 1000 any more; update tools/chaos")
	}
	s = s[:first] + "poll_interval_ms: " + strconv.Itoa(pollMS) + s[first+len("poll_interval_ms: 1000"):]
	if err := os.WriteFile(chans, []byte(s), 0o644); err != nil {
		return "", err
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

func (s *Stack) edgeServices(ctx context.Context, timeout time.Duration) (map[string]string, error) {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		var st struct {
			Services map[string]struct{ HTTP string } `json:"services"`
		}
		resp, err := client.Get("http://" + s.EdgeHTTP + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("not ready: %s", resp.Status)
			}
		}
		if err == nil {
			if resp, err = client.Get("http://" + s.EdgeHTTP + "/status"); err == nil {
				err = json.NewDecoder(resp.Body).Decode(&st)
				resp.Body.Close()
			}
		}
		if err == nil && len(st.Services) > 0 {
			out := map[string]string{}
			for name, sv := range st.Services {
				out[name] = sv.HTTP
			}
			return out, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("edge appliance not ready within %s: %v", timeout, err)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
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

// freeAddr is a free loopback address for a process started later: below the
// ephemeral range, so no client socket of a busy machine takes it meanwhile.
func freeAddr() string {
	p, err := testharness.PortBelowEphemeral()
	if err != nil {
		return "127.0.0.1:0"
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}

func secret() (string, error) {
	buf := make([]byte, 12)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(buf), nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func waitTCP(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not accept connections within %s: %w", addr, timeout, err)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("answered %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not OK within %s: %v", url, timeout, err)
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}
