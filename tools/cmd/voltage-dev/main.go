// Command voltage-dev runs the whole local stack for development (`go tool task
// dev`): Redis (a redis-server from PATH with its data under .dev/, or an in-process
// fallback), the cloud hub, the device simulator and the edge appliance with every
// edge service, their logs interleaved and prefixed. Ctrl-C stops everything.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/service"
	"github.com/voltageems/voltage/shared/testharness"
)

func main() {
	var o options
	flag.StringVar(&o.configDir, "config", "./config", "site configuration folder")
	flag.StringVar(&o.stateDir, "dir", ".dev", "folder for binaries, Redis data, NATS stores")
	flag.Parse()
	o.preferDefaultPorts = true
	o.out = os.Stdout
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, log); err != nil {
		fmt.Fprintf(os.Stderr, "voltage-dev: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	configDir, stateDir string
	// preferDefaultPorts uses DESIGN's ports where they are free; tests take free
	// ports only.
	preferDefaultPorts bool
	out                io.Writer       // the children's prefixed logs
	ready              func(endpoints) // called once everything is started
}

// endpoints is where the running stack listens.
type endpoints struct {
	RedisURL, HubHTTP, HubNATS, HubLeaf, EdgeHTTP, EdgeNATS, SimControl string
	// Services are the edge services' own HTTP addresses, by name.
	Services map[string]string
	// AdminPassword is the admin password of the API gateway and of the cloud API.
	AdminPassword string
	SiteID        string
}

func run(ctx context.Context, o options, log *slog.Logger) error {
	site, err := config.Load(o.configDir)
	if err != nil {
		return fmt.Errorf("the site configuration in %s is invalid:\n%w", o.configDir, err)
	}
	ep := endpoints{SiteID: site.Site.Site.ID}
	root, err := workspaceRoot()
	if err != nil {
		return err
	}
	state, err := filepath.Abs(o.stateDir)
	if err != nil {
		return err
	}
	siteDir, err := filepath.Abs(o.configDir)
	if err != nil {
		return err
	}
	binDir := filepath.Join(state, "bin")
	fmt.Fprintln(os.Stderr, "building binaries into", binDir, "...")
	build := exec.CommandContext(ctx, "go", "build", "-o", binDir+string(filepath.Separator),
		"./tools/cmd/voltsim", "./edge/cmd/voltage-edge", "./cloud/cmd/voltage-cloud")
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	port := func(def string) string {
		if o.preferDefaultPorts {
			return addrOrFree(def)
		}
		return freeAddr()
	}

	st := &stack{log: log, out: o.out}
	defer st.stopAll()
	// One admin password for the site gateway and the cloud API, and the site's
	// leaf-node password at the hub: made once, kept under the state folder.
	if ep.AdminPassword, err = devSecret(filepath.Join(state, "admin-password")); err != nil {
		return err
	}
	sitePassword, err := devSecret(filepath.Join(state, "site-password"))
	if err != nil {
		return err
	}
	siteHash, err := bcrypt.GenerateFromPassword([]byte(sitePassword), bcrypt.DefaultCost)
	if err != nil {
		return err
	}

	if ep.RedisURL, err = st.startRedis(ctx, filepath.Join(state, "redis"), port("127.0.0.1:6379")); err != nil {
		return err
	}

	// The cloud hub.
	ep.HubNATS, ep.HubLeaf, ep.HubHTTP = port("127.0.0.1:4222"), port("127.0.0.1:7422"), port("127.0.0.1:7000")
	cloudDir := filepath.Join(state, "cloud")
	// The site joins with its own leaf credentials, as in production (docs/cloud.md);
	// only TLS is left out on this one machine.
	if err := writeFile(filepath.Join(cloudDir, "cloud.yaml"), fmt.Sprintf(
		"# written by voltage-dev\nnats: {client_addr: %q, leaf_addr: %q, store_dir: %q}\nhttp: {addr: %q}\n"+
			"sites:\n  - {id: %q, name: %q, leaf_password: %q}\n",
		ep.HubNATS, ep.HubLeaf, filepath.Join(cloudDir, "data"), ep.HubHTTP,
		ep.SiteID, site.Site.Site.Name, siteHash)); err != nil {
		return err
	}
	cloudEnv := []string{"VOLTAGE_ADMIN_PASSWORD=" + ep.AdminPassword}
	if err := st.start(ctx, "cloud", filepath.Join(binDir, "voltage-cloud"), cloudDir, cloudEnv, "--config", cloudDir); err != nil {
		return err
	}
	if err := waitTCP(ctx, ep.HubLeaf, 30*time.Second); err != nil { // the edge joins at once
		return fmt.Errorf("cloud hub: %w", err)
	}
	// The demo site lets the hub's users in (the fleet dashboard's drill-in): its
	// gateway trusts the hub's delegation key, as a site engineer would configure.
	trustKey, err := hubTrustKey(ctx, ep.HubHTTP, 60*time.Second)
	if err != nil {
		return err
	}

	// The simulated devices of the site.
	ep.SimControl = port("127.0.0.1:6090")
	if err := st.start(ctx, "voltsim", filepath.Join(binDir, "voltsim"), state, nil,
		"--config", siteDir, "--control", ep.SimControl); err != nil {
		return err
	}

	// The edge site: every edge service in one process, a leaf node of the hub.
	ep.EdgeHTTP, ep.EdgeNATS = port(service.DefaultAddrs["edge"]), port("127.0.0.1:4223")
	edgeDir := filepath.Join(state, "edge")
	if err := os.MkdirAll(edgeDir, 0o755); err != nil {
		return err
	}
	adminPassword := ep.AdminPassword
	env := []string{
		"VOLTAGE_ADMIN_PASSWORD=" + adminPassword,
		"VOLTAGE_REDIS_URL=" + ep.RedisURL,
		"VOLTAGE_HTTP_ADDR=" + ep.EdgeHTTP,
		"VOLTAGE_NATS_URL=nats://" + ep.EdgeNATS,
		"VOLTAGE_NATS_LEAF_REMOTE=nats-leaf://" + ep.SiteID + ":" + sitePassword + "@" + ep.HubLeaf,
		"VOLTAGE_CLOUD_TRUST_KEY=" + trustKey,
	}
	// Every service gets its DESIGN §9 port where it is free; the appliance runs those it has.
	for name, def := range service.DefaultAddrs {
		if name != "edge" {
			env = append(env, service.EnvListenPrefix+strings.ToUpper(name)+"="+port(loopback(def)))
		}
	}
	if err := st.start(ctx, "edge", filepath.Join(binDir, "voltage-edge"), edgeDir, env, "--config", siteDir); err != nil {
		return err
	}
	if ep.Services, err = edgeServices(ctx, ep.EdgeHTTP, 60*time.Second); err != nil {
		return err
	}
	var services strings.Builder
	for _, name := range slices.Sorted(maps.Keys(ep.Services)) {
		fmt.Fprintf(&services, "  %-16s http://%s   /healthz /readyz /metrics\n", name, ep.Services[name])
	}

	fmt.Fprintf(os.Stderr, `
VoltageEMS dev stack is running (Ctrl-C stops it):
  redis            %s
  cloud hub        http://%s/   fleet dashboard and API;  nats://%s (clients)  nats-leaf://%s (sites)
  edge appliance   http://%s/status   nats://%s
%s  voltsim control  http://%s/channels
Site HMI: http://%s/   Fleet dashboard: http://%s/ (the site's pages through the hub: #/sites/%s/overview)
The user admin has the password %s on the site and the cloud (kept in %s).
In another shell:
  export VOLTAGE_REDIS_URL=%s
  go run ./tools/cmd/voltctl status
  go run ./tools/cmd/voltctl point watch 1 T
  nats sub -s nats://%s 'ems.>'     (site heartbeats arriving at the hub)

`, ep.RedisURL, ep.HubHTTP, ep.HubNATS, ep.HubLeaf, ep.EdgeHTTP, ep.EdgeNATS, services.String(), ep.SimControl,
		ep.Services["apigateway"], ep.HubHTTP, ep.SiteID,
		adminPassword, filepath.Join(state, "admin-password"), ep.RedisURL, ep.HubNATS)
	if o.ready != nil {
		o.ready(ep)
	}

	select {
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "\nstopping ...")
		return nil
	case p := <-st.exited:
		return fmt.Errorf("%s exited: %v", p.name, p.err)
	}
}

// workspaceRoot is the folder of go.work, where the binaries' packages are found.
func workspaceRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOWORK").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOWORK: %w", err)
	}
	gowork := strings.TrimSpace(string(out))
	if gowork == "" || gowork == "off" {
		return "", errors.New("run voltage-dev inside the VoltageEMS repository (no go.work found)")
	}
	return filepath.Dir(gowork), nil
}

// addrOrFree returns addr when its port is free, else a free loopback port, so the
// stack runs next to a machine's own services.
func addrOrFree(addr string) string {
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		return addr
	}
	return freeAddr()
}

// freeAddr is a free loopback address for a process started later: below the
// ephemeral range, so no client socket takes it meanwhile.
func freeAddr() string {
	p, err := testharness.PortBelowEphemeral()
	if err != nil {
		return "127.0.0.1:0"
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

var errStopped = errors.New("stopped")

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
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
		select {
		case <-ctx.Done():
			return errStopped
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// loopback turns a listen-on-every-interface address (":6005") into a loopback one:
// the dev stack keeps everything on this machine.
func loopback(addr string) string {
	if strings.HasPrefix(addr, ":") {
		return "127.0.0.1" + addr
	}
	return addr
}

// edgeServices asks the running edge appliance where its services listen, waiting
// until it is ready.
func edgeServices(ctx context.Context, edgeHTTP string, timeout time.Duration) (map[string]string, error) {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for {
		var st struct {
			Services map[string]struct{ HTTP string } `json:"services"`
		}
		// /readyz answers 200 once every service runs and is ready; /status then
		// lists them all.
		resp, err := client.Get("http://" + edgeHTTP + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("not ready: %s", resp.Status)
			}
		}
		if err == nil {
			resp, err = client.Get("http://" + edgeHTTP + "/status")
		}
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		if err == nil && len(st.Services) > 0 {
			out := map[string]string{}
			for name, s := range st.Services {
				out[name] = s.HTTP
			}
			return out, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("edge appliance http://%s/status did not answer within %s: %v", edgeHTTP, timeout, err)
		}
		select {
		case <-ctx.Done():
			return nil, errStopped
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// hubTrustKey reads the cloud hub's delegation key (GET /trust-key), waiting while
// the hub opens its stores (503).
func hubTrustKey(ctx context.Context, hubHTTP string, timeout time.Duration) (string, error) {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		var body struct {
			PublicKey string `json:"public_key"`
		}
		resp, err := client.Get("http://" + hubHTTP + "/trust-key")
		if err == nil {
			if resp.StatusCode == http.StatusOK {
				err = json.NewDecoder(resp.Body).Decode(&body)
			} else {
				err = fmt.Errorf("answered %s", resp.Status)
			}
			resp.Body.Close()
			if err == nil && body.PublicKey != "" {
				return body.PublicKey, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("cloud hub http://%s/trust-key: no key within %s: %v", hubHTTP, timeout, err)
		}
		select {
		case <-ctx.Done():
			return "", errStopped
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// devSecret is a password of the dev stack (admin, site leaf): made up
// on the first run and kept in path, so it stays the same across restarts of the
// stack (whose Redis keeps the user) and is never a default.
func devSecret(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 12 {
		return strings.TrimSpace(string(b)), nil
	}
	buf := make([]byte, 12)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	pw := base64.RawURLEncoding.EncodeToString(buf)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	return pw, os.WriteFile(path, []byte(pw+"\n"), 0o600)
}
