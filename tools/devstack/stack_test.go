package devstack

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"golang.org/x/crypto/bcrypt"

	"github.com/voltageems/voltage/shared/service"
)

func TestWorkspaceRootHoldsGoWork(t *testing.T) {
	root, err := WorkspaceRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Fatalf("workspace root %s: %v", root, err)
	}
}

func TestFreeAddrIsBelowTheEphemeralRange(t *testing.T) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		low, _ = strconv.Atoi(strings.Fields(string(b))[0])
	}
	addr := FreeAddr()
	port, err := strconv.Atoi(Port(addr))
	if err != nil || !strings.HasPrefix(addr, "127.0.0.1:") || port >= low {
		t.Fatalf("FreeAddr %q: want a loopback port below %d", addr, low)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("FreeAddr %s is not free: %v", addr, err)
	}
	defer ln.Close()
	if got := AddrOrFree(addr); got == addr {
		t.Fatalf("AddrOrFree(%s) returned the taken address", addr)
	}
	if free := FreeAddr(); AddrOrFree(free) != free {
		t.Fatalf("AddrOrFree(%s) did not keep the free address", free)
	}
}

func TestWaitTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := WaitTCP(context.Background(), addr, time.Second); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if err := WaitTCP(context.Background(), addr, 100*time.Millisecond); err == nil {
		t.Fatal("WaitTCP on a closed port succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WaitTCP(ctx, addr, time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitTCP after cancel: %v", err)
	}
}

// notReadyFor answers 503 to the first n requests, then hands on to next.
func notReadyFor(n int32, next http.HandlerFunc) http.HandlerFunc {
	var calls atomic.Int32
	return func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= n {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		next(w, r)
	}
}

func TestWaitHTTPAndHubTrustKeyWaitForTheHub(t *testing.T) {
	hub := httptest.NewServer(notReadyFor(2, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/trust-key" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"public_key":"hub-key"}`))
	}))
	defer hub.Close()
	addr := strings.TrimPrefix(hub.URL, "http://")
	key, err := HubTrustKey(context.Background(), addr, 10*time.Second)
	if err != nil || key != "hub-key" {
		t.Fatalf("HubTrustKey: %q, %v", key, err)
	}
	if err := WaitHTTP(context.Background(), hub.URL+"/trust-key", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := WaitHTTP(context.Background(), hub.URL+"/missing", 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("WaitHTTP on a 404: %v", err)
	}
}

func TestWaitEdgeReadyListsTheServices(t *testing.T) {
	edge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
		case "/status":
			w.Write([]byte(`{"services":{"comsrv":{"http":"127.0.0.1:6001"},"apigateway":{"http":"127.0.0.1:6005"}}}`))
		default:
			http.NotFound(w, r)
		}
	}))
	edge.Config.Handler = notReadyFor(3, edge.Config.Handler.ServeHTTP)
	defer edge.Close()
	services, err := WaitEdgeReady(context.Background(), strings.TrimPrefix(edge.URL, "http://"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(services) != 2 || services["comsrv"] != "127.0.0.1:6001" || services["apigateway"] != "127.0.0.1:6005" {
		t.Fatalf("services %v", services)
	}
	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "comsrv not ready", http.StatusServiceUnavailable)
	}))
	defer notReady.Close()
	if _, err := WaitEdgeReady(context.Background(), strings.TrimPrefix(notReady.URL, "http://"), 300*time.Millisecond); err == nil ||
		!strings.Contains(err.Error(), "503") {
		t.Fatalf("WaitEdgeReady on an appliance that is never ready: %v", err)
	}
}

// fakeBinary writes a shell script that stands in for a stack binary.
func fakeBinary(t *testing.T, script string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fake")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestStartHubWritesItsConfiguration(t *testing.T) {
	s := newProcs(t, Options{})
	h := Hub{Dir: t.TempDir(), ClientAddr: "127.0.0.1:14222", LeafAddr: "127.0.0.1:17422", HTTPAddr: "127.0.0.1:17000",
		AdminPassword: "admin-secret", SiteID: "demo-site", SiteName: "Demo \"site\"", SitePassword: "leaf-secret",
		BcryptCost: bcrypt.MinCost}
	p, err := StartHub(s, fakeBinary(t, `echo "$(pwd) $* $VOLTAGE_ADMIN_PASSWORD"; exec sleep 30`), h)
	if err != nil {
		t.Fatal(err)
	}
	waitTail(t, p, h.Dir+" --config "+h.Dir+" admin-secret")
	if p.Name != "cloud" {
		t.Fatalf("hub process named %q", p.Name)
	}
	b, err := os.ReadFile(filepath.Join(h.Dir, "cloud.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		NATS struct {
			ClientAddr string `yaml:"client_addr"`
			LeafAddr   string `yaml:"leaf_addr"`
			StoreDir   string `yaml:"store_dir"`
		} `yaml:"nats"`
		HTTP  struct{ Addr string } `yaml:"http"`
		Sites []struct {
			ID           string `yaml:"id"`
			Name         string `yaml:"name"`
			LeafPassword string `yaml:"leaf_password"`
		} `yaml:"sites"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("cloud.yaml: %v\n%s", err, b)
	}
	if cfg.NATS.ClientAddr != h.ClientAddr || cfg.NATS.LeafAddr != h.LeafAddr || cfg.HTTP.Addr != h.HTTPAddr ||
		cfg.NATS.StoreDir != filepath.Join(h.Dir, "data") || len(cfg.Sites) != 1 ||
		cfg.Sites[0].ID != h.SiteID || cfg.Sites[0].Name != h.SiteName {
		t.Fatalf("cloud.yaml does not say what was asked:\n%s", b)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(cfg.Sites[0].LeafPassword), []byte(h.SitePassword)); err != nil {
		t.Fatalf("the site's leaf_password is not the hash of its password: %v", err)
	}
}

// envPrinter is a fake binary that prints its arguments and VOLTAGE_ environment.
const envPrinter = `echo "args $*"; env | grep ^VOLTAGE_ | sort; echo done; exec sleep 30`

func TestStartEdgeSetsTheApplianceEnvironment(t *testing.T) {
	s := newProcs(t, Options{TailLines: 50})
	e := Edge{HTTPAddr: "127.0.0.1:16000", NATSAddr: "127.0.0.1:14223", RedisURL: "redis://127.0.0.1:16379/0",
		AdminPassword: "admin-secret", SiteID: "demo-site", SitePassword: "leaf-secret", HubLeaf: "127.0.0.1:17422",
		CloudTrustKey: "hub-key", Listen: ServiceListen(func(def string) string { return def })}
	dir := filepath.Join(t.TempDir(), "edge")
	p, err := StartEdge(s, fakeBinary(t, envPrinter), dir, "/site", e)
	if err != nil {
		t.Fatal(err)
	}
	waitTail(t, p, "done")
	want := []string{
		"args --config /site",
		"VOLTAGE_ADMIN_PASSWORD=admin-secret",
		"VOLTAGE_REDIS_URL=redis://127.0.0.1:16379/0",
		"VOLTAGE_HTTP_ADDR=127.0.0.1:16000",
		"VOLTAGE_NATS_URL=nats://127.0.0.1:14223",
		"VOLTAGE_NATS_LEAF_REMOTE=nats-leaf://demo-site:leaf-secret@127.0.0.1:17422",
		"VOLTAGE_CLOUD_TRUST_KEY=hub-key",
		"VOLTAGE_LISTEN_APIGATEWAY=127.0.0.1:6005", // ":6005" in loopback form
	}
	for name, def := range service.DefaultAddrs {
		if name != "edge" && !strings.HasPrefix(def, ":") {
			want = append(want, "VOLTAGE_LISTEN_"+strings.ToUpper(name)+"="+def)
		}
	}
	tail := p.Tail()
	for _, line := range want {
		if !strings.Contains(tail, line+"\n") {
			t.Errorf("the appliance's environment lacks %s:\n%s", line, tail)
		}
	}
	for _, unwanted := range []string{"VOLTAGE_LISTEN_EDGE", "VOLTAGE_EDGE_SERVICES"} {
		if strings.Contains(tail, unwanted) {
			t.Errorf("the appliance got %s:\n%s", unwanted, tail)
		}
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("edge folder: %v", err)
	}
}

func TestSplitEdgeServicesGetTheirOwnAddress(t *testing.T) {
	s := newProcs(t, Options{TailLines: 50})
	e := Edge{HTTPAddr: "127.0.0.1:16000", NATSAddr: "127.0.0.1:14223", Listen: ServiceListen(nil), InProcess: "none"}
	dir := t.TempDir()
	appliance, err := StartEdge(s, fakeBinary(t, envPrinter), dir, "/site", e)
	if err != nil {
		t.Fatal(err)
	}
	comsrv, err := StartEdgeService(s, fakeBinary(t, envPrinter), dir, "/site", e, "comsrv")
	if err != nil {
		t.Fatal(err)
	}
	waitTail(t, appliance, "done")
	waitTail(t, comsrv, "done")
	if tail := appliance.Tail(); !strings.Contains(tail, "VOLTAGE_EDGE_SERVICES=none\n") ||
		!strings.Contains(tail, "VOLTAGE_HTTP_ADDR=127.0.0.1:16000\n") {
		t.Fatalf("the appliance of a split site:\n%s", tail)
	}
	own := "VOLTAGE_HTTP_ADDR=" + e.Listen["comsrv"] + "\n"
	if tail := comsrv.Tail(); comsrv.Name != "comsrv" || !strings.Contains(tail, own) ||
		strings.Contains(tail, "VOLTAGE_HTTP_ADDR=127.0.0.1:16000") || strings.Contains(tail, "VOLTAGE_EDGE_SERVICES") {
		t.Fatalf("comsrv on its own: want only %q:\n%s", own, tail)
	}
	// ServiceListen(nil) takes free ports (FreeAddr's are 10000 and up), not the defaults.
	for name, def := range service.DefaultAddrs {
		if addr, ok := e.Listen[name]; name != "edge" && (!ok || !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, def)) {
			t.Errorf("%s: listen address %q, want a free loopback port", name, addr)
		}
	}
	if _, err := StartEdgeService(s, fakeBinary(t, envPrinter), dir, "/site", e, "nosuchsrv"); err == nil {
		t.Fatal("StartEdgeService of a service without a listen address succeeded")
	}
}

func TestStartRedis(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is needed: apt-get install redis-server")
	}
	s := newProcs(t, Options{})
	addr := FreeAddr()
	dir := filepath.Join(t.TempDir(), "redis")
	p, err := StartRedis(context.Background(), s, dir, addr, "--appendfsync", "always")
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "redis" {
		t.Fatalf("redis process named %q", p.Name)
	}
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("CONFIG GET appendfsync\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	n, err := c.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), "always") {
		t.Fatalf("CONFIG GET appendfsync: %q, %v", buf[:n], err)
	}

	t.Setenv("PATH", t.TempDir())
	if _, err := StartRedis(context.Background(), NewProcs(Options{}), dir, FreeAddr()); !errors.Is(err, ErrNoRedisServer) {
		t.Fatalf("StartRedis without redis-server: %v", err)
	}
}
