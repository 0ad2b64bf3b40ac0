package hissrv_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/services/hissrv"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/service"
)

func TestMissingFileGivesTheDefaults(t *testing.T) {
	f, err := hissrv.LoadFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if f.DataDir != hissrv.DefaultDataDir || !*f.Embedded.Enabled || !*f.Embedded.SyncWAL || len(f.Influx) != 0 ||
		f.Embedded.Retention.Age.D() != 30*24*time.Hour || len(f.Embedded.Tiers) != 2 ||
		f.Embedded.Tiers[0].Width.D() != time.Minute || f.Embedded.Tiers[1].Width.D() != time.Hour ||
		f.BatchSize != 1000 || f.Spool.Threshold != 0.5 {
		t.Errorf("defaults: %+v", f)
	}
}

func TestShippedExampleLoads(t *testing.T) {
	src, err := os.ReadFile("../../config/hissrv/hissrv.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, err := hissrv.ParseFile("config/hissrv/hissrv.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	if f.Embedded.Retention.Size.N() != 10<<30 || f.Spool.MaxBytes.N() != 512<<20 {
		t.Errorf("example: %+v", f)
	}
}

func TestFullFileLoads(t *testing.T) {
	src := `
data_dir: /var/lib/voltage/hissrv
batch_size: 2000
spool: {threshold: 0.6, max_bytes: 1GiB, max_age: 7d}
embedded:
  sync_wal: false
  retention: {age: 90d, size: 20GB}
  grace: 5m
  tiers:
    - {name: 5m, width: 5m, retention: {age: 2y}}
    - {name: 1d, width: 1d}
influx:
  - {name: main, url: "https://influx.example:8086", org: o, bucket: b, token_file: /etc/voltage/influx.token, gzip: false, timeout: 30s}
`
	f, err := hissrv.ParseFile("hissrv.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if f.Spool.MaxBytes.N() != 1<<30 || f.Spool.MaxAge.D() != 7*24*time.Hour || f.Embedded.Retention.Size.N() != 20e9 ||
		f.Embedded.Tiers[1].Width.D() != 24*time.Hour || *f.Influx[0].Gzip || f.Influx[0].Measurement != "voltage_point" ||
		f.Influx[0].BatchSize != 5000 || *f.Embedded.SyncWAL {
		t.Errorf("parsed: %+v", f)
	}
}

// TestMalformedConfigIsRefusedWithPositions checks each mistake is named at its
// file:line:col.
func TestMalformedConfigIsRefusedWithPositions(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"unknown key", "batch_size: 10\nbatchsize: 20\n", "hissrv.yaml:2:1: unknown key"},
		{"misspelled nested key", "spool:\n  treshold: 0.5\n", "hissrv.yaml:2:3: unknown key"},
		{"wrong type", "batch_size: many\n", "hissrv.yaml:1:13"},
		{"bad duration", "embedded:\n  grace: soon\n", "hissrv.yaml:2:10"},
		{"bad size", "spool: {max_bytes: 12 apples}\n", "max_bytes"},
		{"threshold out of range", "spool:\n  threshold: 1.5\n", "hissrv.yaml:2:14: spool.threshold 1.5"},
		{"batch too big", "batch_size: 1000000\n", "hissrv.yaml:1:13: batch_size 1000000"},
		{"tier not a multiple", "embedded:\n  tiers:\n    - {name: 1m, width: 1m}\n    - {name: 90s, width: 90s}\n", "hissrv.yaml:4:26: tier 90s: width 1m30s must be a multiple"},
		{"tier twice", "embedded:\n  tiers:\n    - {name: 1m, width: 1m}\n    - {name: 1m, width: 1h}\n", "hissrv.yaml:4:14: tier \"1m\" is listed twice"},
		{"tier bad name", "embedded:\n  tiers:\n    - {name: One Minute, width: 1m}\n", "tier name \"One Minute\""},
		{"influx without url", "influx:\n  - {name: main, org: o, bucket: b}\n", "hissrv.yaml:2:5: influx main: url \"\""},
		{"influx no bucket", "influx:\n  - {name: main, url: \"http://x:1\", org: o}\n", "bucket is required"},
		{"influx both tokens", "influx:\n  - {name: m, url: \"http://x:1\", org: o, bucket: b, token: t, token_file: f}\n", "give token or token_file"},
		{"influx twice", "influx:\n  - {name: m, url: \"http://x:1\", org: o, bucket: b}\n  - {name: m, url: \"http://y:1\", org: o, bucket: b}\n", "listed twice"},
		{"no backend", "embedded: {enabled: false}\n", "no backend"},
		{"two documents", "batch_size: 1\n---\nbatch_size: 2\n", "hissrv.yaml"},
		{"not a mapping", "- 1\n- 2\n", "hissrv.yaml:1:1"},
	}
	for _, c := range cases {
		_, err := hissrv.ParseFile("hissrv.yaml", []byte(c.src))
		var le *config.LoadError
		if !errors.As(err, &le) {
			t.Errorf("%s: error %v, want a *config.LoadError", c.name, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %q does not contain %q", c.name, err, c.want)
		}
	}
}

// TestRunRefusesABadFileAsConfigError: the binary exits 2 for it (service.Main).
func TestRunRefusesABadFileAsConfigError(t *testing.T) {
	s := newSite(t, "spool: {threshold: 7}\n", 0)
	err := hissrv.Run(context.Background(), hissrv.Config{Site: s.cfg, ConfigDir: s.dir, HTTPAddr: "127.0.0.1:0", DataDir: s.data})
	var ce *service.ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), filepath.Join(s.dir, hissrv.ConfigFile)+":1:20") {
		t.Fatalf("Run: %v, want a positioned *service.ConfigError", err)
	}
}
