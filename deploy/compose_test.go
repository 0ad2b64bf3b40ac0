package deploy_test

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/yaml"

	"github.com/voltageems/voltage/cloud/hub"
	"github.com/voltageems/voltage/services/hissrv"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/service"
)

// thirdPartyImages are the images compose pulls rather than builds: pinned tags,
// never latest.
var thirdPartyImages = map[string]bool{
	"redis:7.2-alpine":        true,
	"prom/prometheus:v2.53.2": true,
	"grafana/grafana:11.2.2":  true,
	"influxdb:2.7-alpine":     true,
}

// loadCompose loads compose files with the compose specification's own loader
// (schema validation, interpolation, consistency checks).
func loadCompose(t *testing.T, env map[string]string, profiles []string, files ...string) (*types.Project, error) {
	t.Helper()
	var cfs []types.ConfigFile
	for _, f := range files {
		abs, err := filepath.Abs(filepath.Join("compose", f))
		if err != nil {
			t.Fatal(err)
		}
		cfs = append(cfs, types.ConfigFile{Filename: abs, Content: readFile(t, abs)})
	}
	dir, _ := filepath.Abs("compose")
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{WorkingDir: dir, ConfigFiles: cfs, Environment: env},
		func(o *loader.Options) {
			o.SetProjectName("voltage", true)
			o.Profiles = profiles
		})
}

func TestComposeLoads(t *testing.T) {
	p, err := loadCompose(t, map[string]string{}, nil, "compose.yaml")
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	want := []string{"cloud", "edge", "grafana", "prometheus", "redis", "voltsim"}
	if got := p.ServiceNames(); !slices.Equal(sortedCopy(got), want) {
		t.Errorf("default services %v, want %v", got, want)
	}
	if _, ok := p.DisabledServices["influxdb"]; !ok {
		t.Error("influxdb is not an optional (profile) service")
	}
	checkProject(t, p)

	// The influx profile refuses to start without its secrets ...
	if _, err := loadCompose(t, map[string]string{}, []string{"influx"}, "compose.yaml", "compose.influx.yaml"); err == nil ||
		!strings.Contains(err.Error(), "VOLTAGE_INFLUX") {
		t.Errorf("influx profile without VOLTAGE_INFLUX_PASSWORD/TOKEN: %v, want a refusal naming them", err)
	}
	// ... and with them runs InfluxDB and points the edge's hissrv at it.
	p, err = loadCompose(t, map[string]string{"VOLTAGE_INFLUX_PASSWORD": "pw-for-test", "VOLTAGE_INFLUX_TOKEN": "token-for-test"},
		[]string{"influx"}, "compose.yaml", "compose.influx.yaml")
	if err != nil {
		t.Fatalf("influx profile: %v", err)
	}
	if _, err := p.GetService("influxdb"); err != nil {
		t.Fatal(err)
	}
	checkProject(t, p)
	edge, _ := p.GetService("edge")
	if v := edge.Environment["VOLTAGE_INFLUX_TOKEN_MAIN"]; v == nil || *v != "token-for-test" {
		t.Errorf("edge VOLTAGE_INFLUX_TOKEN_MAIN = %v", v)
	}
	hf, err := hissrv.ParseFile("compose/influx/hissrv.yaml", readFile(t, "compose/influx/hissrv.yaml"))
	if err != nil {
		t.Fatalf("compose/influx/hissrv.yaml: %v", err)
	}
	if len(hf.Influx) != 1 || !strings.HasPrefix(hf.Influx[0].URL, "http://influxdb:8086") {
		t.Errorf("compose/influx/hissrv.yaml influx = %+v, want the influxdb service", hf.Influx)
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// checkProject checks what the loader does not: images are built from this
// repository's Dockerfile for a binary of binaries.tsv or pinned third-party
// images, bind mounts name files of the repository, network_mode names a
// service, and the config folders mounted into the binaries load.
func checkProject(t *testing.T, p *types.Project) {
	t.Helper()
	root := repoRoot(t)
	bins := binaryByName(t)
	all := map[string]types.ServiceConfig{}
	for n, s := range p.Services {
		all[n] = s
	}
	for n, s := range p.DisabledServices {
		all[n] = s
	}
	for name, s := range all {
		binary := ""
		if s.Build != nil {
			if s.Build.Context != root {
				t.Errorf("%s: build context %s, want the repository root", name, s.Build.Context)
			}
			if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil || s.Build.Dockerfile != dockerfile2 {
				t.Errorf("%s: dockerfile %s: %v", name, s.Build.Dockerfile, err)
			}
			if a := s.Build.Args["BINARY"]; a != nil {
				binary = *a
			}
			b, ok := bins[binary]
			if !ok || b.Probe == "" {
				t.Errorf("%s: BINARY %q is not an image of deploy/binaries.tsv", name, binary)
			}
			if !strings.HasPrefix(s.Image, "voltageems/"+binary+":") {
				t.Errorf("%s: image %q, want voltageems/%s:VERSION", name, s.Image, binary)
			}
		} else if !thirdPartyImages[s.Image] {
			t.Errorf("%s: image %q is neither built here nor a pinned third-party image", name, s.Image)
		}
		if m, ok := strings.CutPrefix(s.NetworkMode, "service:"); ok {
			if _, exists := all[m]; !exists {
				t.Errorf("%s: network_mode names the unknown service %s", name, m)
			}
		}
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				if _, ok := p.Volumes[v.Source]; !ok {
					t.Errorf("%s: volume %s is not declared", name, v.Source)
				}
				continue
			}
			if !strings.HasPrefix(v.Source, root+string(filepath.Separator)) {
				t.Errorf("%s: bind mount %s is outside the repository", name, v.Source)
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s: bind mount source: %v", name, err)
			}
			if v.Target == "/etc/voltage" {
				checkMountedConfig(t, name, binary, v.Source)
			}
		}
	}
}

const dockerfile2 = "deploy/docker/Dockerfile"

// checkMountedConfig loads a config folder mounted at /etc/voltage the way the
// binary will.
func checkMountedConfig(t *testing.T, service, binary, dir string) {
	t.Helper()
	switch binary {
	case "voltage-cloud":
		if _, err := hub.Load(dir); err != nil {
			t.Errorf("%s: %s: %v", service, dir, err)
		}
	case "voltage-edge", "voltsim":
		if _, err := config.Load(dir); err != nil {
			t.Errorf("%s: %s: %v", service, dir, err)
		}
	default:
		t.Errorf("%s: no check for the config of %q", service, binary)
	}
}

// Prometheus scrapes, and Grafana reads, exactly where the edge's services listen
// in the compose stack.
func TestComposeMonitoringTargetsListen(t *testing.T) {
	p, err := loadCompose(t, map[string]string{}, nil, "compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// host:port → listening, from each service's VOLTAGE_HTTP_ADDR and VOLTAGE_LISTEN_*.
	listening := map[string]bool{"prometheus:9090": true, "localhost:9090": true}
	edge, _ := p.GetService("edge")
	for name := range service.DefaultAddrs {
		key := service.EnvListenPrefix + strings.ToUpper(name)
		if name == "edge" {
			key = service.EnvHTTPAddr
		}
		v := edge.Environment[key]
		if v == nil {
			t.Errorf("edge: %s is not set, so %s listens on loopback only", key, name)
			continue
		}
		host, port, err := net.SplitHostPort(*v)
		if err != nil || host != "0.0.0.0" {
			t.Errorf("edge: %s=%s, want 0.0.0.0:PORT", key, *v)
			continue
		}
		listening["edge:"+port] = true
	}
	cloudCfg, err := hub.Load("compose/cloud")
	if err != nil {
		t.Fatal(err)
	}
	if _, port, _ := net.SplitHostPort(cloudCfg.HTTP.Addr); port != "" {
		listening["cloud:"+port] = true
	}

	var prom struct {
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			StaticConfigs []struct {
				Targets []string          `json:"targets"`
				Labels  map[string]string `json:"labels"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(readFile(t, "prometheus/prometheus.yml"), &prom); err != nil {
		t.Fatal(err)
	}
	targets := 0
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				targets++
				if !listening[target] {
					t.Errorf("prometheus job %s scrapes %s, where nothing of the compose stack listens", sc.JobName, target)
				}
			}
		}
	}
	if targets < len(service.DefaultAddrs)+1 {
		t.Errorf("prometheus scrapes %d targets, want every edge service and the hub", targets)
	}

	var ds struct {
		Datasources []struct {
			UID string `json:"uid"`
			URL string `json:"url"`
		} `json:"datasources"`
	}
	if err := yaml.Unmarshal(readFile(t, "grafana/provisioning/datasources/voltage.yml"), &ds); err != nil {
		t.Fatal(err)
	}
	uids := map[string]bool{}
	for _, d := range ds.Datasources {
		u, err := url.Parse(d.URL)
		if err != nil || !listening[u.Host] {
			t.Errorf("grafana data source %s at %s: nothing listens there (%v)", d.UID, d.URL, err)
		}
		uids[d.UID] = true
	}
	if !uids["prometheus"] || !uids["history"] {
		t.Errorf("grafana data sources %v, want prometheus and history", uids)
	}
	if hissrvAddr := edge.Environment["VOLTAGE_LISTEN_HISSRV"]; hissrvAddr == nil || !strings.HasSuffix(*hissrvAddr, ":6004") {
		t.Errorf("the history data source needs hissrv on 6004 in the edge container")
	}
}

// The images' HEALTHCHECK asks the probe URL of binaries.tsv on 127.0.0.1; in the
// compose stack each binary listens there (and the Grafana provisioning reads the
// dashboards where compose mounts them).
func TestComposeHealthchecksAndProvisioning(t *testing.T) {
	p, err := loadCompose(t, map[string]string{}, nil, "compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bins := binaryByName(t)
	for name, s := range p.Services {
		if s.Build == nil {
			continue
		}
		b := bins[*s.Build.Args["BINARY"]]
		u, err := url.Parse(b.Probe)
		if err != nil {
			t.Fatal(err)
		}
		port := u.Port()
		var listen string
		switch b.Name {
		case "voltage-edge":
			listen = *s.Environment[service.EnvHTTPAddr]
		case "voltage-cloud":
			cfg, err := hub.Load("compose/cloud")
			if err != nil {
				t.Fatal(err)
			}
			listen = cfg.HTTP.Addr
		case "voltsim":
			if i := slices.Index(s.Command, "--control"); i >= 0 && i+1 < len(s.Command) {
				listen = s.Command[i+1]
			}
		default:
			t.Errorf("%s: no check for the probe of %s", name, b.Name)
			continue
		}
		host, lport, err := net.SplitHostPort(listen)
		if err != nil || lport != port || (host != "0.0.0.0" && host != "127.0.0.1" && host != "") {
			t.Errorf("%s: the image probes %s but %s listens on %q", name, b.Probe, b.Name, listen)
		}
	}

	var prov struct {
		Providers []struct {
			Options struct {
				Path string `json:"path"`
			} `json:"options"`
		} `json:"providers"`
	}
	if err := yaml.Unmarshal(readFile(t, "grafana/provisioning/dashboards/voltage.yml"), &prov); err != nil || len(prov.Providers) != 1 {
		t.Fatalf("dashboard provisioning: %v", err)
	}
	g, _ := p.GetService("grafana")
	dashboards, _ := filepath.Abs("grafana/dashboards")
	if !slices.ContainsFunc(g.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Source == dashboards && v.Target == prov.Providers[0].Options.Path
	}) {
		t.Errorf("grafana reads dashboards from %s, where compose does not mount deploy/grafana/dashboards", prov.Providers[0].Options.Path)
	}
}
