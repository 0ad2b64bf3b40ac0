package hub

import (
	"path/filepath"
	"time"
)

// History backends.
const (
	HistoryEmbedded = "embedded" // hissrv's embedded store, one per site under history.dir
	HistoryInflux   = "influx"   // an InfluxDB 2 server, the site as its tag
	HistoryNone     = "none"     // no cloud history
)

// History is where the hub keeps every sourced change (hissrv's backends).
type History struct {
	// Backend is embedded (default), influx or none.
	Backend string `yaml:"backend"`
	// Dir holds the embedded stores, one folder per site; default {nats.store_dir}/history.
	Dir string `yaml:"dir"`
	// Retention of raw samples in the embedded store; default 30 days.
	Retention Duration `yaml:"retention"`
	Influx    Influx   `yaml:"influx"`
}

// Influx is the InfluxDB 2 server of the influx backend.
type Influx struct {
	URL    string `yaml:"url"`
	Org    string `yaml:"org"`
	Bucket string `yaml:"bucket"`
	// TokenEnv names the environment variable holding the API token (default
	// VOLTAGE_INFLUX_TOKEN): a token is a secret and does not belong in cloud.yaml.
	TokenEnv string `yaml:"token_env"`
}

// DefaultHistoryRetention is how long the embedded store keeps raw samples.
const DefaultHistoryRetention = 30 * 24 * time.Hour

func (h *History) applyDefaults(storeDir string) {
	if h.Backend == "" {
		h.Backend = HistoryEmbedded
	}
	if h.Dir == "" {
		if storeDir == "" {
			storeDir = DefaultStoreDir
		}
		h.Dir = filepath.Join(storeDir, "history")
	}
	if h.Retention.Duration == 0 {
		h.Retention.Duration = DefaultHistoryRetention
	}
	if h.Influx.TokenEnv == "" {
		h.Influx.TokenEnv = "VOLTAGE_INFLUX_TOKEN"
	}
}

func (v *validator) validateHistory(h *History) {
	switch h.Backend {
	case HistoryEmbedded, HistoryNone:
	case HistoryInflux:
		for key, val := range map[string]string{"url": h.Influx.URL, "org": h.Influx.Org, "bucket": h.Influx.Bucket} {
			if val == "" {
				v.add("$.history.influx", "history.influx.%s: required by the influx backend", key)
			}
		}
	default:
		v.add("$.history.backend", "history.backend: unknown backend %q (want embedded, influx or none)", h.Backend)
	}
	if h.Retention.Duration < 0 {
		v.add("$.history.retention", "history.retention: must be positive")
	}
}
