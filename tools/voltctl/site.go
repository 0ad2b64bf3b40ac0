package voltctl

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/redisx"
	"github.com/voltageems/voltage/shared/service"
)

// site is what a command knows about the site: its configuration (nil when the
// folder did not load, with the reason in cfgErr) and, once connected, its Redis.
type site struct {
	cfg    *config.Config
	cfgErr error
	url    string
	rdb    *redis.Client
}

// loadSite loads --config with the environment overrides. A folder that does not
// load is not an error yet: commands that can work without it (reading points with
// --redis) only lose names and units.
func (e *env) loadSite() *site {
	cfg, err := service.LoadConfig(e.globals.configDir)
	return &site{cfg: cfg, cfgErr: err}
}

// requireConfig reports a site folder that did not load and returns ExitUsage, or
// ExitOK when it loaded.
func (e *env) requireConfig(s *site) int {
	if s.cfg != nil {
		return ExitOK
	}
	return e.fail(ExitUsage, "invalid site configuration in %s:\n%v", e.globals.configDir, s.cfgErr)
}

// configNote is a one-line account of why the site folder did not load.
func configNote(err error) string {
	var le *config.LoadError
	if errors.As(err, &le) && len(le.Errors) > 1 {
		return fmt.Sprintf("%s (and %d more problems)", le.Errors[0], len(le.Errors)-1)
	}
	first, _, _ := strings.Cut(err.Error(), "\n")
	return first
}

// connect resolves the Redis URL (--redis, else $VOLTAGE_REDIS_URL, else
// site.yaml), connects and checks that Redis answers. It returns ExitOK, or the
// exit code after reporting the problem.
func (e *env) connect(ctx context.Context, s *site) int {
	var fromSite string
	if s.cfg != nil {
		fromSite = s.cfg.Site.Redis.URL
	}
	u := cmp.Or(e.globals.redisURL, os.Getenv(service.EnvRedisURL), fromSite)
	if u == "" {
		return e.fail(ExitUsage, "no Redis URL: the site config %s did not load (%s); give --redis URL or set %s",
			e.globals.configDir, configNote(s.cfgErr), service.EnvRedisURL)
	}
	rdb, err := redisx.Connect(ctx, u, redisx.WithClientName("voltctl"), failFast)
	if err != nil {
		return e.fail(ExitUsage, "%v", err)
	}
	if err := redisx.Ping(ctx, rdb); err != nil {
		_ = rdb.Close()
		return e.fail(ExitFailure, "cannot reach Redis at %s: %v", redact(u), err)
	}
	s.url, s.rdb = u, rdb
	return ExitOK
}

// failFast makes a Redis that does not answer an immediate error: an operator
// waiting at a prompt wants to hear it at once, and every voltctl command is a
// one-off that the operator repeats if they want.
func failFast(o *redis.Options) {
	o.MaxRetries = -1 // go-redis: -1 disables retries
	o.DialerRetries = 1
}

func (s *site) close() {
	if s.rdb != nil {
		_ = s.rdb.Close()
	}
}

// redact hides the password of a URL that is about to be printed.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(malformed URL)"
	}
	return u.Redacted()
}

// channel returns the configured channel with the id, or nil (also without config).
func (s *site) channel(id uint32) *config.Channel {
	if s.cfg == nil {
		return nil
	}
	return s.cfg.Channel(id)
}

// pointsOfChannel returns the channel's point table of type t; none for a nil channel.
func pointsOfChannel(c *config.Channel, t point.Type) []config.Point {
	if c == nil {
		return nil
	}
	return c.Points[t]
}
