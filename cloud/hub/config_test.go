package hub_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voltageems/voltage/cloud/hub"
	"github.com/voltageems/voltage/shared/config"
)

func writeCloudYAML(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, hub.FileName), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadDefaults(t *testing.T) {
	want := hub.Config{
		NATS:    hub.NATS{ClientAddr: hub.DefaultClientAddr, LeafAddr: hub.DefaultLeafAddr, StoreDir: hub.DefaultStoreDir},
		HTTP:    hub.HTTP{Addr: hub.DefaultHTTPAddr},
		Logging: hub.Logging{Level: "info", Format: "text"},
	}
	for name, dir := range map[string]string{
		"missing file": t.TempDir(),
		"empty file":   writeCloudYAML(t, ""),
		"comments":     writeCloudYAML(t, "# nothing set yet\n"),
	} {
		got, err := hub.Load(dir)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got.NATS != want.NATS || got.HTTP != want.HTTP || got.Logging != want.Logging || len(got.Sites) != 0 {
			t.Errorf("%s: got %+v, want %+v", name, got, want)
		}
	}
}

func TestLoadFull(t *testing.T) {
	dir := writeCloudYAML(t, `# the hub of the demo fleet
nats:
  client_addr: 127.0.0.1:14222
  leaf_addr: ":17422"
  store_dir: /var/lib/voltage/cloud
http: {addr: "0.0.0.0:7000"}
sites:
  - {id: demo-site, name: Demo site}
  - id: plant_2
logging: {level: debug, format: json}
`)
	got, err := hub.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.NATS.ClientAddr != "127.0.0.1:14222" || got.NATS.LeafAddr != ":17422" || got.NATS.StoreDir != "/var/lib/voltage/cloud" {
		t.Errorf("nats = %+v", got.NATS)
	}
	if got.HTTP.Addr != "0.0.0.0:7000" || got.Logging.Level != "debug" || got.Logging.Format != "json" {
		t.Errorf("http = %+v, logging = %+v", got.HTTP, got.Logging)
	}
	if len(got.Sites) != 2 || got.Sites[0] != (hub.Site{ID: "demo-site", Name: "Demo site"}) || got.Sites[1].ID != "plant_2" {
		t.Errorf("sites = %+v", got.Sites)
	}
}

func TestApplyEnv(t *testing.T) {
	cfg, err := hub.Load(writeCloudYAML(t, "http: {addr: 127.0.0.1:7000}\n"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("VOLTAGE_HTTP_ADDR", "127.0.0.1:7100")
	hub.ApplyEnv(&cfg)
	if cfg.HTTP.Addr != "127.0.0.1:7100" {
		t.Errorf("http.addr = %q, want the environment's", cfg.HTTP.Addr)
	}
}

// TestLoadErrors checks that each bad file is refused with the place and the cause.
func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name, file string
		want       []string // each error line, in order
	}{
		{"unknown key", "nats:\n  client_addr: 127.0.0.1:4222\n  leaf_port: 7422\n",
			[]string{`cloud.yaml:3:3: unknown key "leaf_port"`}},
		{"unknown top-level key", "http: {addr: 127.0.0.1:7000}\nsite: {id: x}\n",
			[]string{`cloud.yaml:2:1: unknown key "site"`}},
		{"wrong type", "sites: {id: a}\n",
			[]string{"cloud.yaml:1:"}},
		{"syntax", "nats: [\n",
			[]string{"cloud.yaml:1:"}},
		{"bad values, all reported in file order", `nats:
  client_addr: localhost
  leaf_addr: 127.0.0.1:99999
http:
  addr: 127.0.0.1:http
sites:
  - {id: a.b}
  - {id: ok}
  - {id: ok, name: again}
  - name: no id
logging: {level: loud}
`, []string{
			`cloud.yaml:2:16: nats.client_addr: want host:port, got "localhost"`,
			`cloud.yaml:3:14: nats.leaf_addr: port "99999" is not a number 0..65535`,
			`cloud.yaml:5:9: http.addr: port "http" is not a number 0..65535`,
			`cloud.yaml:7:10: sites[0].id: invalid site id: "a.b" has '.'`,
			`cloud.yaml:9:10: sites[2].id: "ok" is already sites[1]`,
			`cloud.yaml:10:5: sites[3].id: invalid site id: empty`,
			`cloud.yaml:11:18: logging.level: unknown level "loud"`,
		}},
		{"bad new sections", `nats:
  leaf_tls: {cert: /nonexistent/cert.pem, key: /nonexistent/key.pem}
streams:
  max_age: forever
  storage: tape
  max_bytes: -5
registry: {heartbeat_interval: -1s}
history: {backend: sqlite}
auth: {access_ttl: 1h, refresh_ttl: 1m}
sites:
  - {id: a, leaf_password: plain-text-secret}
`, []string{
			`cloud.yaml:2:13: nats.leaf_tls: load cert /nonexistent/cert.pem`,
			`cloud.yaml:4:12: streams.max_age: want a duration such as 5s or 720h, got "forever"`,
			`cloud.yaml:5:12: streams.storage: unknown storage "tape"`,
			`cloud.yaml:6:14: streams.max_bytes: want a number of bytes, or -1`,
			`cloud.yaml:7:32: registry.heartbeat_interval: must be positive`,
			`cloud.yaml:8:20: history.backend: unknown backend "sqlite"`,
			`cloud.yaml:9:37: auth.refresh_ttl: must not be shorter than auth.access_ttl`,
			`cloud.yaml:11:28: sites[0].leaf_password: want a bcrypt hash`,
		}},
		{"external nats with embedded settings", `nats:
  url: nats://nats.example:4222
  leaf_addr: 0.0.0.0:7422
sites:
  - {id: a, leaf_password: "$2a$10$abcdefghijklmnopqrstuuGz3ZxTL9l5mF7o3nQYwJ6zT5t0eM0Cy"}
`, []string{
			`cloud.yaml:3:14: nats.leaf_addr: not used with nats.url`,
			`cloud.yaml:5:28: sites[0].leaf_password: not used with nats.url`,
		}},
		{"tls without key", "nats:\n  leaf_tls: {cert: /x.pem}\n", []string{`cloud.yaml:2:13: nats.leaf_tls: cert and key are both required`}},
		{"influx without url", "history:\n  backend: influx\n  influx: {org: o, bucket: b}\n", []string{`cloud.yaml:3:11: history.influx.url: required`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeCloudYAML(t, c.file)
			_, err := hub.Load(dir)
			var le *config.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("Load = %v, want a *config.LoadError", err)
			}
			if len(le.Errors) != len(c.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(le.Errors), len(c.want), err)
			}
			for i, w := range c.want {
				got := strings.TrimPrefix(le.Errors[i].Error(), dir+string(filepath.Separator))
				if !strings.HasPrefix(got, w) {
					t.Errorf("error %d = %q, want it to start with %q", i, got, w)
				}
			}
		})
	}
}
