package service

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voltageems/voltage/shared/config"
)

// writeSite writes site.yaml into a fresh folder and returns the folder.
func writeSite(t *testing.T, siteYAML string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "site.yaml"), []byte(siteYAML), 0o644); err != nil {
		t.Fatalf("write site.yaml: %v", err)
	}
	return dir
}

// clearEnv makes the test independent of VOLTAGE_* variables set on the machine;
// t.Setenv restores them afterwards.
func clearEnv(t *testing.T) {
	for _, k := range []string{EnvRedisURL, EnvNATSURL, EnvSiteID, EnvHTTPAddr, EnvLeafRemote} {
		t.Setenv(k, "")
	}
	for name := range DefaultAddrs {
		t.Setenv(EnvListenPrefix+strings.ToUpper(name), "")
	}
}

func TestParseFlagsDefaults(t *testing.T) {
	f, err := ParseFlags("testsvc", nil, io.Discard, nil)
	if err != nil {
		t.Fatalf("ParseFlags(no args): %v", err)
	}
	// Empty log settings mean "take them from site.yaml", so they must stay empty here.
	if want := (Flags{ConfigDir: "./config"}); f != want {
		t.Errorf("defaults = %+v, want %+v", f, want)
	}
}

func TestParseFlagsValues(t *testing.T) {
	var extra int
	f, err := ParseFlags("testsvc",
		[]string{"--config", "/etc/voltage", "-log-level=debug", "--log-format", "json", "--workers", "4"}, io.Discard,
		func(fs *flag.FlagSet) { fs.IntVar(&extra, "workers", 1, "service-specific flag") })
	if err != nil {
		t.Fatalf("ParseFlags: %v", err)
	}
	if want := (Flags{ConfigDir: "/etc/voltage", LogLevel: "debug", LogFormat: "json"}); f != want {
		t.Errorf("flags = %+v, want %+v", f, want)
	}
	if extra != 4 {
		t.Errorf("service flag workers = %d, want 4", extra)
	}
}

func TestParseFlagsErrors(t *testing.T) {
	cases := []struct {
		args    []string
		mention string
	}{
		{[]string{"--bogus"}, "bogus"},
		{[]string{"--config"}, "config"}, // flag without its value
		{[]string{"--config", "dir", "stray"}, "stray"},
		{[]string{"stray", "--config", "dir"}, "stray"},
	}
	for _, c := range cases {
		_, err := ParseFlags("testsvc", c.args, io.Discard, nil)
		if err == nil {
			t.Errorf("ParseFlags(%q) succeeded, want an error", c.args)
			continue
		}
		if !strings.Contains(err.Error(), c.mention) {
			t.Errorf("ParseFlags(%q) error %q does not mention %q", c.args, err, c.mention)
		}
	}

	// Usage goes to the writer given, not to the process's stderr.
	var out bytes.Buffer
	if _, err := ParseFlags("testsvc", []string{"-h"}, &out, nil); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("ParseFlags(-h) error = %v, want flag.ErrHelp", err)
	}
	if !strings.Contains(out.String(), "-config") || !strings.Contains(out.String(), "-log-format") {
		t.Errorf("ParseFlags(-h) wrote %q, want the usage listing -config and -log-format", out.String())
	}
}

func TestApplyEnv(t *testing.T) {
	clearEnv(t)
	base := func() *config.Config {
		return &config.Config{Site: config.Site{
			Site:  config.SiteInfo{ID: "from-file"},
			Redis: config.Redis{URL: "redis://file:6379/0"},
			NATS:  config.NATS{URL: "nats://file:4222"},
		}}
	}

	cfg := base()
	ApplyEnv(cfg)
	if cfg.Site.Site.ID != "from-file" || cfg.Site.Redis.URL != "redis://file:6379/0" || cfg.Site.NATS.URL != "nats://file:4222" {
		t.Errorf("without the environment ApplyEnv changed the config: %+v", cfg.Site)
	}

	t.Setenv(EnvRedisURL, "redis://env:6380/1")
	t.Setenv(EnvNATSURL, "nats://env:4223")
	t.Setenv(EnvSiteID, "from-env")
	t.Setenv(EnvLeafRemote, "tls://hub.example:7422")
	t.Setenv(EnvListenPrefix+"COMSRV", "127.0.0.1:7101")
	cfg = base()
	ApplyEnv(cfg)
	if cfg.Site.NATS.LeafRemote != "tls://hub.example:7422" {
		t.Errorf("nats leaf remote = %q, want the %s value", cfg.Site.NATS.LeafRemote, EnvLeafRemote)
	}
	// base() has no listen map: ApplyEnv must create it rather than panic.
	if got := cfg.Site.Listen["comsrv"]; got != "127.0.0.1:7101" {
		t.Errorf("listen.comsrv = %q, want the %sCOMSRV value", got, EnvListenPrefix)
	}
	if cfg.Site.Redis.URL != "redis://env:6380/1" {
		t.Errorf("redis url = %q, want the %s value", cfg.Site.Redis.URL, EnvRedisURL)
	}
	if cfg.Site.NATS.URL != "nats://env:4223" {
		t.Errorf("nats url = %q, want the %s value", cfg.Site.NATS.URL, EnvNATSURL)
	}
	if cfg.Site.Site.ID != "from-env" {
		t.Errorf("site id = %q, want the %s value", cfg.Site.Site.ID, EnvSiteID)
	}
}

func TestHTTPAddr(t *testing.T) {
	clearEnv(t)
	cfg := &config.Config{Site: config.Site{Listen: map[string]string{"comsrv": "127.0.0.1:7001"}}}

	if got := HTTPAddr(cfg, "modsrv"); got != "127.0.0.1:6002" {
		t.Errorf("HTTPAddr(modsrv) without listen entry = %q, want the default 127.0.0.1:6002", got)
	}
	if got := HTTPAddr(cfg, "apigateway"); got != ":6005" {
		t.Errorf("HTTPAddr(apigateway) = %q, want :6005 (the gateway listens on every interface)", got)
	}
	if got := HTTPAddr(cfg, "comsrv"); got != "127.0.0.1:7001" {
		t.Errorf("HTTPAddr(comsrv) = %q, want the site.yaml listen entry 127.0.0.1:7001", got)
	}
	// VOLTAGE_LISTEN_{SERVICE} lands in the listen map (via ApplyEnv) and so beats
	// site.yaml for that service only.
	t.Setenv(EnvListenPrefix+"COMSRV", "127.0.0.1:7101")
	ApplyEnv(cfg)
	if got := HTTPAddr(cfg, "comsrv"); got != "127.0.0.1:7101" {
		t.Errorf("HTTPAddr(comsrv) with %sCOMSRV set = %q, want 127.0.0.1:7101", EnvListenPrefix, got)
	}
	if got := HTTPAddr(cfg, "modsrv"); got != "127.0.0.1:6002" {
		t.Errorf("HTTPAddr(modsrv) = %q, want the default; only comsrv was overridden", got)
	}
	// VOLTAGE_HTTP_ADDR is the process's own address and beats everything.
	t.Setenv(EnvHTTPAddr, "127.0.0.1:9999")
	for _, name := range []string{"comsrv", "modsrv"} {
		if got := HTTPAddr(cfg, name); got != "127.0.0.1:9999" {
			t.Errorf("HTTPAddr(%s) with %s set = %q, want 127.0.0.1:9999", name, EnvHTTPAddr, got)
		}
	}
}

func TestLoadConfigValid(t *testing.T) {
	clearEnv(t)
	dir := writeSite(t, "site: {id: x}\nlisten: {comsrv: 127.0.0.1:7001}\n")
	cfg, err := LoadConfig(dir)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if cfg.Site.Site.ID != "x" {
		t.Errorf("site id = %q, want x", cfg.Site.Site.ID)
	}
	if got := HTTPAddr(cfg, "comsrv"); got != "127.0.0.1:7001" {
		t.Errorf("HTTPAddr(comsrv) = %q, want 127.0.0.1:7001", got)
	}

	// The environment is applied on top of the file.
	t.Setenv(EnvSiteID, "override")
	t.Setenv(EnvRedisURL, "redis://127.0.0.1:1/2")
	cfg, err = LoadConfig(dir)
	if err != nil {
		t.Fatalf("LoadConfig with environment: %v", err)
	}
	if cfg.Site.Site.ID != "override" || cfg.Site.Redis.URL != "redis://127.0.0.1:1/2" {
		t.Errorf("LoadConfig did not apply the environment: site %q, redis %q", cfg.Site.Site.ID, cfg.Site.Redis.URL)
	}
}

func TestLoadConfigInvalid(t *testing.T) {
	clearEnv(t)
	dir := writeSite(t, "site:\n  id: x\nredis:\n  url: http://nope\n")
	cfg, err := LoadConfig(dir)
	if err == nil {
		t.Fatalf("LoadConfig of an invalid site returned %+v", cfg)
	}
	if cfg != nil {
		t.Error("LoadConfig returned a config together with its error")
	}
	var le *config.LoadError
	if !errors.As(err, &le) {
		t.Errorf("error %v (%T) is not a *config.LoadError", err, err)
	}
	if want := filepath.Join(dir, "site.yaml") + ":4:"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name %s", err, want)
	}

	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("LoadConfig of a missing folder succeeded")
	}
}
