package apigateway

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/voltageems/voltage/shared/config"
)

// SettingsFile is the gateway's own configuration, relative to the site folder.
// It is optional: without it every setting has its default.
const SettingsFile = "apigateway/apigateway.yaml"

// EnvCloudTrustKey, when set, is cloud_trust.public_key (over the file's): how a
// deployment that writes no files (the dev stack, a container) trusts its hub.
const EnvCloudTrustKey = "VOLTAGE_CLOUD_TRUST_KEY"

// Settings are the gateway's security and HTTP settings (docs/apigateway.md).
type Settings struct {
	// AccessTTL is the life of an access token (default 15m, at most 1h).
	AccessTTL string `yaml:"access_ttl"`
	// RefreshTTL is the life of a refresh token (default 12h, at most 30 days).
	RefreshTTL string `yaml:"refresh_ttl"`
	// BcryptCost is the bcrypt work factor of stored passwords (default 12, 10..16).
	BcryptCost int `yaml:"bcrypt_cost"`
	// MinPasswordLength is the shortest password accepted (default 10).
	MinPasswordLength int           `yaml:"min_password_length"`
	Login             LoginSettings `yaml:"login"`
	CORS              CORSSettings  `yaml:"cors"`
	TLS               TLSSettings   `yaml:"tls"`
	// MaxBodyBytes bounds every request body (default 1 MiB).
	MaxBodyBytes int64      `yaml:"max_body_bytes"`
	WebSocket    WSSettings `yaml:"websocket"`
	// CloudTrust lets the users of one cloud hub in through its site API proxy
	// (cloudtrust.go). Default off.
	CloudTrust CloudTrustSettings `yaml:"cloud_trust"`

	cloud                          *cloudTrust // nil: no cloud tokens
	accessTTL, refreshTTL, lockout time.Duration
	wsFlush, wsWrite, wsHeartbeat  time.Duration
}

// WSSettings shape the WebSocket push (/ws).
type WSSettings struct {
	// MaxClients bounds concurrent WebSocket clients (default 1000).
	MaxClients int `yaml:"max_clients"`
	// FlushInterval is the least time between two change frames to one client
	// (default 0: a change leaves as soon as the client's writer is free, and the
	// changes that arrive while a frame is being written go together in the next).
	FlushInterval string `yaml:"flush_interval"`
	// WriteTimeout is how long one frame may take to leave; a client slower than
	// that is dropped (default 5s).
	WriteTimeout string `yaml:"write_timeout"`
	// Heartbeat is the interval of heartbeat frames and token checks (default 15s).
	Heartbeat string `yaml:"heartbeat"`
	// MaxPending bounds the distinct points waiting for one client, and
	// MaxEvents its queued events (alarms, command results, snapshots); a client
	// beyond either is dropped (defaults 100000 and 256).
	MaxPending int `yaml:"max_pending"`
	MaxEvents  int `yaml:"max_events"`
}

// LoginSettings throttle password guessing.
type LoginSettings struct {
	// MaxFailures is how many failed logins of one user lock it (default 5).
	MaxFailures int `yaml:"max_failures"`
	// Lockout is how long a locked user stays locked, and the window failures are
	// counted in (default 15m).
	Lockout string `yaml:"lockout"`
	// PerAddressPerMinute limits login attempts of one client address (default 30).
	PerAddressPerMinute int `yaml:"per_address_per_minute"`
}

// CORSSettings name the browser origins allowed to call the API. Empty: none (the
// web UI served from the same origin needs no CORS).
type CORSSettings struct {
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// TLSSettings switch the listener to HTTPS; both files or neither.
type TLSSettings struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// DefaultSettings are the settings without a file.
func DefaultSettings() Settings {
	s := Settings{}
	_ = s.validate("")
	return s
}

// LoadSettings reads dir/apigateway/apigateway.yaml when it exists. Errors name
// file, line and column.
func LoadSettings(dir string) (Settings, error) {
	var s Settings
	path := filepath.Join(dir, SettingsFile)
	src, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist) || dir == "":
		src = nil
	case err != nil:
		return s, fmt.Errorf("read %s: %w", path, err)
	}
	if src != nil {
		if perr := config.DecodeStrict(path, src, &s); perr != nil {
			return s, perr
		}
	}
	if v := os.Getenv(EnvCloudTrustKey); v != "" {
		s.CloudTrust.PublicKey, s.CloudTrust.PublicKeyFile = v, ""
	}
	if err := s.validate(path); err != nil {
		return s, err
	}
	return s, nil
}

func (s *Settings) validate(path string) error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{path}, a...)...))
	}
	dur := func(name, v string, def, lo, hi time.Duration) time.Duration {
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < lo || d > hi {
			bad("%s: %q is not a duration between %s and %s", name, v, lo, hi)
			return def
		}
		return d
	}
	s.accessTTL = dur("access_ttl", s.AccessTTL, 15*time.Minute, 10*time.Second, time.Hour)
	s.refreshTTL = dur("refresh_ttl", s.RefreshTTL, 12*time.Hour, time.Minute, 30*24*time.Hour)
	s.lockout = dur("login.lockout", s.Login.Lockout, 15*time.Minute, time.Second, 24*time.Hour)
	s.wsFlush = dur("websocket.flush_interval", s.WebSocket.FlushInterval, 0, 0, 10*time.Second)
	s.wsWrite = dur("websocket.write_timeout", s.WebSocket.WriteTimeout, 5*time.Second, 100*time.Millisecond, time.Minute)
	s.wsHeartbeat = dur("websocket.heartbeat", s.WebSocket.Heartbeat, 15*time.Second, 100*time.Millisecond, 5*time.Minute)
	intDefault := func(name string, v *int, def, lo, hi int) {
		if *v == 0 {
			*v = def
		} else if *v < lo || *v > hi {
			bad("%s: %d is outside %d..%d", name, *v, lo, hi)
		}
	}
	intDefault("websocket.max_clients", &s.WebSocket.MaxClients, 1000, 1, 100_000)
	intDefault("websocket.max_pending", &s.WebSocket.MaxPending, 100_000, 100, 10_000_000)
	intDefault("websocket.max_events", &s.WebSocket.MaxEvents, 256, 8, 100_000)
	if s.BcryptCost == 0 {
		s.BcryptCost = 12
	} else if s.BcryptCost < 10 || s.BcryptCost > 16 {
		bad("bcrypt_cost: %d is outside 10..16", s.BcryptCost)
	}
	if s.MinPasswordLength == 0 {
		s.MinPasswordLength = 10
	} else if s.MinPasswordLength < 8 || s.MinPasswordLength > 72 {
		bad("min_password_length: %d is outside 8..72", s.MinPasswordLength)
	}
	if s.Login.MaxFailures == 0 {
		s.Login.MaxFailures = 5
	} else if s.Login.MaxFailures < 1 || s.Login.MaxFailures > 100 {
		bad("login.max_failures: %d is outside 1..100", s.Login.MaxFailures)
	}
	if s.Login.PerAddressPerMinute == 0 {
		s.Login.PerAddressPerMinute = 30
	} else if s.Login.PerAddressPerMinute < 1 {
		bad("login.per_address_per_minute: must be ≥ 1")
	}
	if s.MaxBodyBytes == 0 {
		s.MaxBodyBytes = 1 << 20
	} else if s.MaxBodyBytes < 1024 || s.MaxBodyBytes > 64<<20 {
		bad("max_body_bytes: %d is outside 1 KiB..64 MiB", s.MaxBodyBytes)
	}
	for _, o := range s.CORS.AllowedOrigins {
		if o == "*" || !(strings.HasPrefix(o, "http://") || strings.HasPrefix(o, "https://")) || strings.HasSuffix(o, "/") {
			bad("cors.allowed_origins: %q is not an origin like https://hmi.example (no wildcard, no path)", o)
		}
	}
	s.cloud = s.CloudTrust.validate(bad)
	if (s.TLS.CertFile == "") != (s.TLS.KeyFile == "") {
		bad("tls: cert_file and key_file go together")
	}
	return errors.Join(errs...)
}
