// Package service is what every service binary shares: the common flags, loading the
// site config with environment overrides, the logger, signal handling (SIGINT and
// SIGTERM stop, SIGHUP reloads), default listen addresses and the Redis heartbeat.
package service

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/obs"
)

// Version is the build version, set with -ldflags "-X .../shared/service.Version=...".
var Version = "dev"

// DefaultAddrs are the listen addresses of DESIGN §9. Internal services bind to
// loopback; only the gateway listens on every interface.
var DefaultAddrs = map[string]string{
	"comsrv":     "127.0.0.1:6001",
	"modsrv":     "127.0.0.1:6002",
	"rulesrv":    "127.0.0.1:6003",
	"hissrv":     "127.0.0.1:6004",
	"apigateway": ":6005",
	"netsrv":     "127.0.0.1:6006",
	"alarmsrv":   "127.0.0.1:6007",
	"edge":       "127.0.0.1:6000", // the edge appliance's own endpoints
}

// Env variables that override site.yaml (DESIGN §3).
const (
	EnvRedisURL = "VOLTAGE_REDIS_URL"
	EnvNATSURL  = "VOLTAGE_NATS_URL"
	EnvSiteID   = "VOLTAGE_SITE_ID"
	EnvHTTPAddr = "VOLTAGE_HTTP_ADDR"

	// EnvLeafRemote overrides nats.leaf_remote (the cloud hub an edge joins).
	EnvLeafRemote = "VOLTAGE_NATS_LEAF_REMOTE"
	// EnvListenPrefix + a service name in capitals (VOLTAGE_LISTEN_COMSRV)
	// overrides listen.{service}: how one process that runs several services, or
	// a dev stack next to other software, moves a single listener.
	EnvListenPrefix = "VOLTAGE_LISTEN_"
	// EnvEdgeServices lists the services the edge appliance runs in its own
	// process, comma-separated ("all" or unset: every one; "none": only NATS and
	// the bridge). The others run as their own binaries at their listen address.
	EnvEdgeServices = "VOLTAGE_EDGE_SERVICES"
)

// Flags are the flags every binary takes.
type Flags struct {
	ConfigDir string
	LogLevel  string
	LogFormat string
}

// ParseFlags parses the common flags from args (without the program name); usage
// and flag errors are printed to out. extra, when not nil, may register
// service-specific flags on the same set.
func ParseFlags(name string, args []string, out io.Writer, extra func(*flag.FlagSet)) (Flags, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	var f Flags
	fs.StringVar(&f.ConfigDir, "config", "./config", "site configuration folder")
	fs.StringVar(&f.LogLevel, "log-level", "", "log level: debug, info, warn, error (default: site.yaml logging.level, else info)")
	fs.StringVar(&f.LogFormat, "log-format", "", "log format: text or json (default: site.yaml logging.format, else text)")
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return f, nil
}

// LoadConfig loads the site folder and applies the environment overrides.
func LoadConfig(dir string) (*config.Config, error) {
	cfg, err := config.Load(dir)
	if err != nil {
		return nil, err
	}
	ApplyEnv(cfg)
	return cfg, nil
}

// ApplyEnv applies VOLTAGE_REDIS_URL, VOLTAGE_NATS_URL, VOLTAGE_SITE_ID,
// VOLTAGE_NATS_LEAF_REMOTE and VOLTAGE_LISTEN_{SERVICE}.
func ApplyEnv(cfg *config.Config) {
	if v := os.Getenv(EnvLeafRemote); v != "" {
		cfg.Site.NATS.LeafRemote = v
	}
	for name := range DefaultAddrs {
		if v := os.Getenv(EnvListenPrefix + strings.ToUpper(name)); v != "" {
			if cfg.Site.Listen == nil {
				cfg.Site.Listen = map[string]string{}
			}
			cfg.Site.Listen[name] = v
		}
	}
	if v := os.Getenv(EnvRedisURL); v != "" {
		cfg.Site.Redis.URL = v
	}
	if v := os.Getenv(EnvNATSURL); v != "" {
		cfg.Site.NATS.URL = v
	}
	if v := os.Getenv(EnvSiteID); v != "" {
		cfg.Site.Site.ID = v
	}
}

// HTTPAddr is the service's listen address: VOLTAGE_HTTP_ADDR, else site.yaml
// listen.{name}, else the default of DESIGN §9.
func HTTPAddr(cfg *config.Config, name string) string {
	if v := os.Getenv(EnvHTTPAddr); v != "" {
		return v
	}
	return cfg.Site.ListenAddr(name, DefaultAddrs[name])
}

// Env is what Main hands to a service.
type Env struct {
	Name      string
	ConfigDir string
	Config    *config.Config
	Log       *slog.Logger
	// Reload receives a value for every SIGHUP. The service reloads its config
	// (LoadConfig(ConfigDir)) and applies what changed.
	Reload <-chan struct{}
}

// ExitConfig is the exit code for invalid configuration or flags.
const ExitConfig = 2

// Main is the body of every service's main: it parses flags, loads the config
// (refusing to start on any error), builds the logger, and runs run until SIGINT or
// SIGTERM. It returns the process exit code.
func Main(name string, args []string, stderr io.Writer, run func(ctx context.Context, env Env) error) int {
	flags, err := ParseFlags(name, args, stderr, nil)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return ExitConfig
	}
	cfg, err := LoadConfig(flags.ConfigDir)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid configuration in %s:\n%v\n", name, flags.ConfigDir, err)
		return ExitConfig
	}
	level, format := cmp.Or(flags.LogLevel, cfg.Site.Logging.Level, "info"), cmp.Or(flags.LogFormat, cfg.Site.Logging.Format, "text")
	log, err := obs.NewLogger(stderr, level, format)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return ExitConfig
	}
	log = log.With("service", name)

	ctx, stop, reload := Signals(context.Background())
	defer stop()

	log.Info("starting", "version", Version, "site", cfg.Site.Site.ID, "config", flags.ConfigDir)
	start := time.Now()
	err = run(ctx, Env{Name: name, ConfigDir: flags.ConfigDir, Config: cfg, Log: log, Reload: reload})
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("stopped with error", "err", err)
		var ce *ConfigError
		if errors.As(err, &ce) {
			return ExitConfig
		}
		return 1
	}
	log.Info("stopped", "uptime", time.Since(start).Round(time.Millisecond))
	return 0
}

// Signals returns a context cancelled by SIGINT or SIGTERM and a channel that
// receives a value for every SIGHUP (coalesced while one is pending). stop releases
// the signals; until then SIGHUP no longer kills the process.
func Signals(parent context.Context) (ctx context.Context, stop func(), reload <-chan struct{}) {
	ctx, cancel := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	hups := make(chan struct{}, 1)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				select {
				case hups <- struct{}{}:
				default: // a reload is already pending
				}
			}
		}
	}()
	return ctx, func() {
		signal.Stop(hup)
		cancel()
		<-done
	}, hups
}

// ConfigError marks an error caused by configuration a service rejected after
// loading (e.g. a driver's parameters); Main exits with ExitConfig for it.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }
