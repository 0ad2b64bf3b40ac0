package deploy_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/voltageems/voltage/shared/service"
	"github.com/voltageems/voltage/shared/testharness"
)

// promtool checks the Prometheus config of the compose stack and the alert rules.
func TestPrometheusConfigAndRules(t *testing.T) {
	promtool := need(t, "promtool", "prometheus")
	rules, _ := filepath.Glob("prometheus/rules/*.yml")
	if len(rules) == 0 {
		t.Fatal("no alert rules in prometheus/rules")
	}
	run(t, ".", nil, promtool, append([]string{"check", "rules"}, rules...)...)
	// The config names the rules where compose mounts them; point it here.
	abs, _ := filepath.Abs("prometheus/rules")
	cfg := strings.ReplaceAll(string(readFile(t, "prometheus/prometheus.yml")), "/etc/prometheus/rules", abs)
	p := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, ".", nil, promtool, "check", "config", p)
	if !strings.Contains(out, "rule files found") || strings.Contains(out, " 0 rule files found") {
		t.Errorf("promtool found no rule files through the config:\n%s", out)
	}
	// And promtool does refuse a broken rule.
	bad := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(bad, []byte("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: rate(x[5m]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command(promtool, "check", "rules", bad).Run(); err == nil {
		t.Error("promtool accepted a broken rule")
	}
}

// query is one PromQL expression of a dashboard or rule file, and where it is.
type query struct {
	where, datasource, expr string
	// label, for a template variable's label_values, must exist on the result.
	label string
}

type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Panels     []panel
	Templating struct {
		List []struct {
			Name       string     `json:"name"`
			Type       string     `json:"type"`
			Datasource datasource `json:"datasource"`
			Query      struct {
				Query string `json:"query"`
			} `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int        `json:"id"`
	Title      string     `json:"title"`
	Type       string     `json:"type"`
	Datasource datasource `json:"datasource"`
	GridPos    struct{ X, Y, W, H int }
	Targets    []struct {
		Datasource datasource `json:"datasource"`
		Expr       string     `json:"expr"`
		RefID      string     `json:"refId"`
	} `json:"targets"`
}

// dashboardQueries reads every dashboard and checks its shape: unique uid,
// panels with ids, sizes and known data sources, every variable used defined.
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	files, _ := filepath.Glob("grafana/dashboards/*.json")
	if len(files) < 3 {
		t.Fatalf("want the site overview, service health and link health dashboards, found %v", files)
	}
	known := map[string]bool{"prometheus": true, "history": true}
	uids := map[string]string{}
	var out []query
	for _, f := range files {
		var d dashboard
		if err := json.Unmarshal(readFile(t, f), &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
			t.Errorf("%s: uid %q title %q with %d panels", f, d.UID, d.Title, len(d.Panels))
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s share the uid %s", f, other, d.UID)
		}
		uids[d.UID] = f
		vars := map[string]bool{"__rate_interval": true, "__interval": true, "__range": true}
		for _, v := range d.Templating.List {
			vars[v.Name] = true
			if !known[v.Datasource.UID] {
				t.Errorf("%s: variable %s uses unknown data source %q", f, v.Name, v.Datasource.UID)
			}
			expr, label, err := templateQuery(v.Query.Query)
			if err != nil {
				t.Errorf("%s: variable %s: %v", f, v.Name, err)
				continue
			}
			out = append(out, query{f + " variable " + v.Name, v.Datasource.UID, expr, label})
		}
		ids := map[int]bool{}
		for _, p := range d.Panels {
			where := fmt.Sprintf("%s panel %d %q", f, p.ID, p.Title)
			if ids[p.ID] || p.ID == 0 || p.GridPos.W == 0 || p.GridPos.H == 0 || p.Type == "" || len(p.Targets) == 0 {
				t.Errorf("%s: duplicate or missing id, size, type or targets", where)
			}
			ids[p.ID] = true
			if !known[p.Datasource.UID] {
				t.Errorf("%s: unknown data source %q", where, p.Datasource.UID)
			}
			for _, tg := range p.Targets {
				if tg.Datasource.UID != p.Datasource.UID || tg.Expr == "" || tg.RefID == "" {
					t.Errorf("%s target %s: data source %q, expr %q", where, tg.RefID, tg.Datasource.UID, tg.Expr)
				}
				out = append(out, query{where, p.Datasource.UID, tg.Expr, ""})
			}
		}
		for _, q := range out {
			if !strings.HasPrefix(q.where, f) {
				continue
			}
			for _, m := range regexp.MustCompile(`\$\{?([a-zA-Z_]+)`).FindAllStringSubmatch(q.expr, -1) {
				if !vars[m[1]] {
					t.Errorf("%s: uses $%s, which the dashboard does not define", q.where, m[1])
				}
			}
		}
	}
	return out
}

// ruleQueries reads the expressions of the alert rules.
func ruleQueries(t *testing.T) []query {
	t.Helper()
	var out []query
	files, _ := filepath.Glob("prometheus/rules/*.yml")
	for _, f := range files {
		var rf struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Alert string `json:"alert"`
					Expr  string `json:"expr"`
				} `json:"rules"`
			} `json:"groups"`
		}
		if err := yaml.Unmarshal(readFile(t, f), &rf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				out = append(out, query{f + " alert " + r.Alert, "prometheus", r.Expr, ""})
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no alert rules")
	}
	return out
}

func TestDashboardsAreValid(t *testing.T) {
	for _, q := range dashboardQueries(t) {
		if _, err := selectors(q.expr); err != nil {
			t.Errorf("%s: %v", q.where, err)
		}
	}
}

// scrapeLabels are the labels Prometheus adds when it scrapes (prometheus.yml
// static labels and its own job/instance); a service need not export them.
var scrapeLabels = map[string]bool{"job": true, "instance": true, "site": true, "service": true}

// synthesized are series Prometheus makes itself.
var synthesized = map[string]bool{"up": true}

// exposition is what one scrape of /metrics held: metric name → label names.
type exposition map[string]map[string]bool

var sampleRe = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? `)
var labelNameRe = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"`)

func scrape(url string) (exposition, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s %v", url, resp.Status, err)
	}
	out := exposition{}
	for _, l := range strings.Split(string(b), "\n") {
		m := sampleRe.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if out[m[1]] == nil {
			out[m[1]] = map[string]bool{}
		}
		for _, lm := range labelNameRe.FindAllStringSubmatch(m[3], -1) {
			out[m[1]][lm[1]] = true
		}
	}
	return out, nil
}

// historyNames asks hissrv's Prometheus-compatible API which series names it
// holds and which labels voltage_point has.
func historyNames(base string) (exposition, error) {
	var names struct {
		Data []string `json:"data"`
	}
	if err := getJSON(base+"/api/v1/label/__name__/values", &names); err != nil {
		return nil, err
	}
	out := exposition{}
	for _, n := range names.Data {
		var series struct {
			Data []map[string]string `json:"data"`
		}
		if err := getJSON(base+"/api/v1/series?match[]="+n+"&start="+strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10), &series); err != nil {
			return nil, err
		}
		out[n] = map[string]bool{}
		for _, s := range series.Data {
			for k := range s {
				out[n][k] = true
			}
		}
	}
	return out, nil
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s %s", url, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// missing lists what the queries read that the exposition does not have.
func missing(queries []query, have exposition) []string {
	var out []string
	for _, q := range queries {
		sels, err := selectors(q.expr)
		if err != nil {
			out = append(out, q.where+": "+err.Error())
			continue
		}
		for _, s := range sels {
			if synthesized[s.metric] {
				continue
			}
			labels, ok := have[s.metric]
			if !ok {
				out = append(out, fmt.Sprintf("%s: metric %s", q.where, s.metric))
				continue
			}
			for _, l := range append(slices.Clone(s.labels), q.label) {
				if l != "" && !labels[l] && !scrapeLabels[l] {
					out = append(out, fmt.Sprintf("%s: label %s of %s", q.where, l, s.metric))
				}
			}
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func TestMissingReportsUnknownMetricsAndLabels(t *testing.T) {
	have := exposition{"a_total": {"channel": true}}
	got := missing([]query{
		{"q1", "prometheus", `rate(a_total{channel="1", site="x"}[5m])`, ""},
		{"q2", "prometheus", `b_total`, ""},
		{"q3", "prometheus", `a_total{link="x"}`, ""},
		{"q4", "prometheus", `up == 0`, ""},
		{"q5", "prometheus", `a_total`, "point"},
	}, have)
	want := []string{"q2: metric b_total", "q3: label link of a_total", "q5: label point of a_total"}
	if !slices.Equal(got, want) {
		t.Errorf("missing = %v, want %v", got, want)
	}
}

// Every metric and label the dashboards and alert rules read is exported by the
// real binaries: the edge appliance (with voltsim's devices and a Mosquitto for
// its netsrv link, against a real Redis) and the cloud hub it joins, scraped
// live; the history queries are asked of the appliance's hissrv.
func TestDashboardsAndRulesUseExportedMetrics(t *testing.T) {
	queries := append(dashboardQueries(t), ruleQueries(t)...)
	var promQueries, historyQueries []query
	for _, q := range queries {
		if q.datasource == "history" {
			historyQueries = append(historyQueries, q)
		} else {
			promQueries = append(promQueries, q)
		}
	}
	if len(historyQueries) == 0 {
		t.Fatal("no dashboard reads the history data source")
	}

	edgeBin := testharness.BuildBinary(t, "../edge/cmd/voltage-edge")
	cloudBin := testharness.BuildBinary(t, "../cloud/cmd/voltage-cloud")
	simBin := testharness.BuildBinary(t, "../tools/cmd/voltsim")
	rdb := testharness.StartRedis(t)
	mqtt := testharness.StartMosquitto(t)

	free := func() string { return "127.0.0.1:" + strconv.Itoa(testharness.FreePort(t)) }
	work := t.TempDir()
	site := liveSite(t, work, mqtt.URL())

	// The cloud hub.
	cloudDir := filepath.Join(work, "cloud")
	cloudHTTP, leaf := free(), free()
	writeFile(t, filepath.Join(cloudDir, "cloud.yaml"), fmt.Sprintf("nats: {client_addr: %q, leaf_addr: %q, store_dir: %q}\nhttp: {addr: %q}\n",
		free(), leaf, filepath.Join(cloudDir, "data"), cloudHTTP))
	startBinary(t, cloudDir, nil, "http://"+cloudHTTP+"/readyz", cloudBin, "--config", cloudDir)

	// The site's devices, then the edge appliance joining the hub.
	simControl := free()
	startBinary(t, work, nil, "http://"+simControl+"/channels", simBin, "--config", site, "--control", simControl)
	targets := map[string]string{"edge": free()}
	env := []string{
		service.EnvRedisURL + "=" + rdb.URL(),
		service.EnvHTTPAddr + "=" + targets["edge"],
		service.EnvNATSURL + "=nats://" + free(),
		service.EnvLeafRemote + "=nats-leaf://" + leaf,
		"VOLTAGE_ADMIN_PASSWORD=deploy-test-password",
	}
	for name := range service.DefaultAddrs {
		if name != "edge" {
			targets[name] = free()
			env = append(env, service.EnvListenPrefix+strings.ToUpper(name)+"="+targets[name])
		}
	}
	edgeDir := filepath.Join(work, "edge")
	if err := os.MkdirAll(edgeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	startBinary(t, edgeDir, env, "http://"+targets["edge"]+"/healthz", edgeBin, "--config", site)
	targets["cloud"] = cloudHTTP

	// The link-health panels and alerts read error counters, and the overview alarm
	// events, which exist once something happened: make the grid meter answer with
	// exceptions, cut the feeder meters' link, and raise the PCS fault signal
	// (alarm pcs1_fault of the demo site, no on-delay).
	for ch, fault := range map[int]string{3: `{"mode":"exception"}`, 5: `{"mode":"drop"}`} {
		simRequest(t, http.MethodPost, fmt.Sprintf("http://%s/channels/%d/faults", simControl, ch), fault)
	}
	simRequest(t, http.MethodPut, "http://"+simControl+"/channels/2/points/S/2", `{"value":1}`)

	var last []string
	testharness.Eventually(t, 120*time.Second, func() error {
		have := exposition{}
		for name, addr := range targets {
			e, err := scrape("http://" + addr + "/metrics")
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			for m, l := range e {
				if have[m] == nil {
					have[m] = map[string]bool{}
				}
				for k := range l {
					have[m][k] = true
				}
			}
		}
		hist, err := historyNames("http://" + targets["hissrv"])
		if err != nil {
			return fmt.Errorf("history: %w", err)
		}
		last = append(missing(promQueries, have), missing(historyQueries, hist)...)
		if len(last) > 0 {
			return fmt.Errorf("not exported (yet):\n  %s", strings.Join(last, "\n  "))
		}
		return nil
	})
}

// liveSite copies the demo site (./config) into dir/site with free ports for its
// simulated devices, its GPIO folder inside dir, and its MQTT link enabled towards
// broker, and returns the folder.
func liveSite(t *testing.T, dir, broker string) string {
	t.Helper()
	site := filepath.Join(dir, "site")
	run(t, ".", nil, "cp", "-R", filepath.Join(repoRoot(t), "config"), site)
	ch := filepath.Join(site, "comsrv/channels.yaml")
	src := string(readFile(t, ch))
	ports := map[string]string{}
	src = regexp.MustCompile(`\b150[0-9][0-9]\b`).ReplaceAllStringFunc(src, func(p string) string {
		if ports[p] == "" {
			ports[p] = strconv.Itoa(testharness.FreePort(t))
		}
		return ports[p]
	})
	src = strings.ReplaceAll(src, "/tmp/voltage-demo/", filepath.Join(dir, "gpio")+"/")
	writeFile(t, ch, src)
	ns := filepath.Join(site, "netsrv/netsrv.yaml")
	links := string(readFile(t, ns))
	if !strings.Contains(links, "enabled: false") || !strings.Contains(links, "broker: tcp://127.0.0.1:1883") {
		t.Fatalf("%s changed: this test enables its first link and points it at a test broker", ns)
	}
	links = strings.Replace(links, "enabled: false", "enabled: true", 1)
	links = strings.Replace(links, "broker: tcp://127.0.0.1:1883", "broker: "+broker, 1)
	writeFile(t, ns, links)
	return site
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

// startBinary starts a binary in dir and waits until ready answers 2xx; it is
// stopped when the test ends. Its output goes to a log file quoted on failure.
func startBinary(t *testing.T, dir string, env []string, ready string, bin string, args ...string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), filepath.Base(bin)+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logFile.Close()
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("%s exited (%v) before %s answered:\n%s", bin, err, ready, readFile(t, logPath))
		default:
		}
		resp, err := http.Get(ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s did not answer 2xx within 60s (%v):\n%s", bin, ready, err, readFile(t, logPath))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func simRequest(t *testing.T, method, url, body string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("voltsim %s %s: %s %s", method, url, resp.Status, b)
	}
}
