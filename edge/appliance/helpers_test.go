package appliance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/voltageems/voltage/edge/appliance"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/testharness"
)

const siteID = "site-a"

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// writeSite writes a site folder: one virtual channel (10) whose telemetry point 1
// is a constant 42, every listener on a free port, and natsYAML as site.yaml's nats
// section ("" for none).
func writeSite(t *testing.T, redisURL, natsYAML string) string {
	t.Helper()
	dir := t.TempDir()
	site := "site: {id: " + siteID + ", name: Site A}\n" +
		"redis: {url: " + redisURL + "}\n" +
		"listen: {" + listenAnywhere() + "}\n"
	if natsYAML != "" {
		site += "nats: " + natsYAML + "\n"
	}
	files := map[string]string{
		"site.yaml": site,
		"comsrv/channels.yaml": `channels:
  - id: 10
    name: site_controls
    protocol: virtual
    enabled: true
    parameters:
      poll_interval_ms: 50
      generators:
        - {type: T, point: 1, kind: constant, value: 42}
`,
		"comsrv/10/telemetry.csv": "point_id,signal_name,scale,offset,unit,reverse,data_type,description\n1,test_signal,1,0,,0,float,constant\n",
	}
	for name, content := range files {
		writeFile(t, filepath.Join(dir, name), content)
	}
	return dir
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

func loadSite(t *testing.T, dir string) *config.Config {
	t.Helper()
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatalf("load test site: %v", err)
	}
	return cfg
}

// startHub starts a plain nats-server with a leaf-node listener, as the cloud hub
// is, on leafPort (-1 for a free one); it returns the server and the leaf URL.
func startHub(t *testing.T, leafPort int) (*testharness.NATS, string) {
	t.Helper()
	var opts *server.Options
	hub := testharness.StartNATS(t, func(o *server.Options) {
		o.ServerName = "hub"
		o.LeafNode.Host = "127.0.0.1"
		o.LeafNode.Port = leafPort
		opts = o
	})
	// nats-server wrote the bound port back into the options during Start.
	return hub, "nats-leaf://127.0.0.1:" + strconv.Itoa(opts.LeafNode.Port)
}

// edgeServices are the services an appliance runs, in the order it reports them.
var edgeServices = []string{"comsrv", "modsrv", "hissrv", "rulesrv", "alarmsrv", "apigateway", "netsrv"}

// listenAnywhere is site.yaml's listen map with every service on a free port.
func listenAnywhere() string {
	var b strings.Builder
	for i, name := range edgeServices {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(name + `: "127.0.0.1:0"`)
	}
	return b.String()
}

// runningAppliance is an appliance started by one test.
type runningAppliance struct {
	appliance.Endpoints
	t    *testing.T
	stop func() (error, time.Duration) // cancels Run, returns its result and how long it took
}

func startAppliance(t *testing.T, cfg appliance.Config) *runningAppliance {
	t.Helper()
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	if cfg.NATSStoreDir == "" {
		cfg.NATSStoreDir = t.TempDir()
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = 50 * time.Millisecond
	}
	cfg.Log = testLogger()
	started := make(chan appliance.Endpoints, 1)
	cfg.Started = func(e appliance.Endpoints) { started <- e }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- appliance.Run(ctx, cfg) }()

	a := &runningAppliance{t: t}
	stopped := false
	a.stop = func() (error, time.Duration) {
		if stopped {
			return nil, 0
		}
		stopped = true
		begin := time.Now()
		cancel()
		select {
		case err := <-done:
			return err, time.Since(begin)
		case <-time.After(10 * time.Second):
			return fmt.Errorf("appliance did not stop within 10 s"), time.Since(begin)
		}
	}
	t.Cleanup(func() {
		if err, _ := a.stop(); err != nil {
			t.Errorf("stop appliance: %v", err)
		}
	})
	select {
	case a.Endpoints = <-started:
	case err := <-done:
		stopped = true
		cancel()
		t.Fatalf("appliance stopped at start: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("appliance did not start within 20 s")
	}
	return a
}

func (a *runningAppliance) get(path string) (int, []byte) {
	a.t.Helper()
	return httpGet(a.t, "http://"+a.HTTP.String()+path)
}

func httpGet(t *testing.T, u string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp.StatusCode, body
}

func (a *runningAppliance) status() appliance.Status {
	a.t.Helper()
	code, body := a.get("/status")
	if code != http.StatusOK {
		a.t.Fatalf("GET /status = %d %s", code, body)
	}
	var st appliance.Status
	if err := json.Unmarshal(body, &st); err != nil {
		a.t.Fatalf("decode /status %s: %v", body, err)
	}
	return st
}

// hostOf is the host:port of a URL such as nats://127.0.0.1:4222.
func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}
