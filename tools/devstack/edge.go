package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/voltageems/voltage/services/apigateway"
	"github.com/voltageems/voltage/shared/auth"
	"github.com/voltageems/voltage/shared/service"
)

// Edge is the edge site of a local stack: the edge appliance (voltage-edge, with
// its own NATS server, a leaf node of the cloud hub) running every edge service in
// process, or some of them as their own processes (StartEdgeService).
type Edge struct {
	// HTTPAddr serves the appliance's own endpoints (/readyz, /status); NATSAddr
	// is its NATS server.
	HTTPAddr, NATSAddr string
	RedisURL           string
	// AdminPassword is the password of the site gateway's user admin.
	AdminPassword string
	// SiteID and SitePassword are the leaf link's credentials at the hub, HubLeaf
	// the address it connects to (the hub's leaf port, or a proxy in front of it).
	SiteID, SitePassword, HubLeaf string
	// CloudTrustKey, when set, is the hub's delegation key the site gateway trusts.
	CloudTrustKey string
	// Listen is every edge service's listen address by name (ServiceListen); a
	// service without one gets a FreeAddr.
	Listen map[string]string
	// InProcess, when set, is which services the appliance runs in its own
	// process (service.EnvEdgeServices: "none" is only NATS and the bridge); the
	// others are started with StartEdgeService. "": every one.
	InProcess string
}

// ServiceListen picks a listen address for every edge service: pick gets the
// service's DESIGN §9 default in loopback form ("127.0.0.1:6005"). Nil pick:
// FreeAddr for every one.
func ServiceListen(pick func(defaultAddr string) string) map[string]string {
	if pick == nil {
		pick = func(string) string { return FreeAddr() }
	}
	listen := map[string]string{}
	for name, def := range service.DefaultAddrs {
		if name != "edge" {
			listen[name] = pick(loopback(def))
		}
	}
	return listen
}

// StartEdge starts bin (the voltage-edge binary) as the process "edge" in dir (its
// data folder) on the site configuration in siteDir. It does not wait:
// WaitEdgeReady does.
func StartEdge(procs *Procs, bin, dir, siteDir string, e Edge) (*Proc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("edge folder: %w", err)
	}
	env := e.env()
	if e.InProcess != "" {
		env = append(env, service.EnvEdgeServices+"="+e.InProcess)
	}
	return procs.Start("edge", bin, dir, env, "--config", siteDir)
}

// StartEdgeService starts bin, the binary of the edge service name (one the
// appliance does not run, Edge.InProcess), as the process name in dir, the
// appliance's folder (each service keeps its data in ./data/{name}). Its HTTP
// address is Edge.Listen[name], where the appliance finds it; it is ready when
// that answers /readyz (WaitHTTP).
func StartEdgeService(procs *Procs, bin, dir, siteDir string, e Edge, name string) (*Proc, error) {
	addr, ok := e.Listen[name]
	if !ok {
		return nil, fmt.Errorf("start %s: Edge.Listen has no address for it", name)
	}
	env := append(e.env(), service.EnvHTTPAddr+"="+addr) // the last value of a variable counts
	return procs.Start(name, bin, dir, env, "--config", siteDir)
}

// env is the environment of the appliance and its services: it overrides the
// addresses of site.yaml, so one machine holds the whole stack.
func (e Edge) env() []string {
	env := []string{
		auth.EnvAdminPassword + "=" + e.AdminPassword,
		service.EnvRedisURL + "=" + e.RedisURL,
		service.EnvHTTPAddr + "=" + e.HTTPAddr,
		service.EnvNATSURL + "=nats://" + e.NATSAddr,
		service.EnvLeafRemote + "=nats-leaf://" + e.SiteID + ":" + e.SitePassword + "@" + e.HubLeaf,
	}
	if e.CloudTrustKey != "" {
		env = append(env, apigateway.EnvCloudTrustKey+"="+e.CloudTrustKey)
	}
	// Every service gets an address; the appliance runs those it has and finds
	// the others there.
	for name := range service.DefaultAddrs {
		if name == "edge" {
			continue
		}
		addr, ok := e.Listen[name]
		if !ok {
			addr = FreeAddr()
		}
		env = append(env, service.EnvListenPrefix+strings.ToUpper(name)+"="+addr)
	}
	return env
}

// loopback turns a listen-on-every-interface address (":6005") into a loopback
// one: the local stack keeps everything on this machine.
func loopback(addr string) string {
	if strings.HasPrefix(addr, ":") {
		return "127.0.0.1" + addr
	}
	return addr
}

// WaitEdgeReady waits until the edge appliance at edgeHTTP is ready (/readyz 200:
// every service runs and is ready) and returns where its services listen, by name
// (from /status).
func WaitEdgeReady(ctx context.Context, edgeHTTP string, timeout time.Duration) (map[string]string, error) {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		services, err := edgeServices(client, edgeHTTP)
		if err == nil {
			return services, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("edge appliance http://%s not ready within %s: %v", edgeHTTP, timeout, err)
		}
		if err := Sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, fmt.Errorf("waiting for the edge appliance: %w", err)
		}
	}
}

func edgeServices(client *http.Client, edgeHTTP string) (map[string]string, error) {
	resp, err := client.Get("http://" + edgeHTTP + "/readyz")
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/readyz: not ready: %s", resp.Status)
	}
	if resp, err = client.Get("http://" + edgeHTTP + "/status"); err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st struct {
		Services map[string]struct{ HTTP string } `json:"services"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("/status: %w", err)
	}
	if len(st.Services) == 0 {
		return nil, fmt.Errorf("/status lists no services")
	}
	out := make(map[string]string, len(st.Services))
	for name, s := range st.Services {
		out[name] = s.HTTP
	}
	return out, nil
}
