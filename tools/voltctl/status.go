package voltctl

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
)

var statusSpec = &spec{
	path:    "status",
	summary: "running services (heartbeats) and the state of every configured channel",
	json:    true,
	setup: func(*flag.FlagSet) func(context.Context, *env, []string) int {
		return func(ctx context.Context, e *env, args []string) int {
			if len(args) > 0 {
				return e.usage("unexpected arguments %q", args)
			}
			return status(ctx, e)
		}
	},
}

var channelsSpec = &spec{
	path:    "channels",
	summary: "the configured channels with their point counts and live state",
	json:    true,
	setup: func(*flag.FlagSet) func(context.Context, *env, []string) int {
		return func(ctx context.Context, e *env, args []string) int {
			if len(args) > 0 {
				return e.usage("unexpected arguments %q", args)
			}
			return channels(ctx, e)
		}
	},
}

// serviceRow is one running service instance, from its heartbeat hash.
type serviceRow struct {
	Name      string `json:"name"`
	Instance  string `json:"instance"`
	Version   string `json:"version"`
	PID       int64  `json:"pid"`
	Started   int64  `json:"started_ms"`
	Heartbeat int64  `json:"heartbeat_ms"`
}

// channelRow is a configured channel joined with comsrv:{ch}:status.
type channelRow struct {
	ID        uint32         `json:"id"`
	Name      string         `json:"name"`
	Protocol  string         `json:"protocol"`
	Enabled   bool           `json:"enabled"`
	Points    map[string]int `json:"points"` // by type letter
	State     string         `json:"state"`  // connecting/up/down; disabled; unknown when comsrv never wrote one
	LastOK    int64          `json:"last_ok_ms"`
	LastError string         `json:"last_error"`
	Polls     int64          `json:"polls"`
	Errors    int64          `json:"errors"`
	RTTus     int64          `json:"rtt_us"`
	Updated   int64          `json:"updated_ms"`
}

func status(ctx context.Context, e *env) int {
	s := e.loadSite()
	if code := e.connect(ctx, s); code != ExitOK {
		return code
	}
	defer s.close()
	services, err := readServices(ctx, s.rdb)
	if err != nil {
		return e.fail(ExitFailure, "%v", err)
	}
	var chans []channelRow
	if s.cfg == nil {
		e.note("channels not shown: the site config %s did not load: %s", e.globals.configDir, configNote(s.cfgErr))
	} else if chans, err = readChannels(ctx, s.rdb, s.cfg); err != nil {
		return e.fail(ExitFailure, "%v", err)
	}
	live := slices.ContainsFunc(chans, func(c channelRow) bool { return c.State != "unknown" && c.State != "disabled" })
	if live && !slices.ContainsFunc(services, func(r serviceRow) bool { return r.Name == "comsrv" }) {
		e.note("no comsrv heartbeat: channel states are the last comsrv wrote, not live")
	}
	if e.json {
		return e.writeJSON(struct {
			Redis    string       `json:"redis"`
			Services []serviceRow `json:"services"`
			Channels []channelRow `json:"channels"`
		}{redact(s.url), services, chans})
	}
	now := time.Now()
	fmt.Fprintf(e.stdout, "Redis %s\n\n", redact(s.url))
	if len(services) == 0 {
		fmt.Fprintln(e.stdout, "no services running (no heartbeat in Redis)")
	} else {
		tw := table(e.stdout)
		fmt.Fprintln(tw, "SERVICE\tINSTANCE\tVERSION\tUPTIME\tHEARTBEAT")
		for _, r := range services {
			uptime := "-"
			if r.Started > 0 {
				uptime = duration(now.Sub(time.UnixMilli(r.Started)))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Instance, orDash(r.Version), uptime, since(r.Heartbeat, now))
		}
		_ = tw.Flush()
	}
	if len(chans) > 0 {
		fmt.Fprintln(e.stdout)
		tw := table(e.stdout)
		fmt.Fprintln(tw, "CH\tNAME\tSTATE\tLAST OK\tPOLLS\tERRORS\tRTT\tLAST ERROR")
		for _, c := range chans {
			lastOK, rtt := "-", "-"
			if c.State != "disabled" && c.State != "unknown" {
				lastOK = since(c.LastOK, now)
				rtt = (time.Duration(c.RTTus) * time.Microsecond).String()
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", c.ID, c.Name, c.State, lastOK, c.Polls, c.Errors, rtt, orDash(c.LastError))
		}
		_ = tw.Flush()
	}
	return ExitOK
}

func channels(ctx context.Context, e *env) int {
	s := e.loadSite()
	if code := e.requireConfig(s); code != ExitOK {
		return code
	}
	if code := e.connect(ctx, s); code != ExitOK {
		return code
	}
	defer s.close()
	chans, err := readChannels(ctx, s.rdb, s.cfg)
	if err != nil {
		return e.fail(ExitFailure, "%v", err)
	}
	if e.json {
		return e.writeJSON(chans)
	}
	tw := table(e.stdout)
	fmt.Fprintln(tw, "ID\tNAME\tPROTOCOL\tENABLED\tT\tS\tC\tA\tSTATE")
	for _, c := range chans {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%t\t%d\t%d\t%d\t%d\t%s\n", c.ID, c.Name, c.Protocol, c.Enabled,
			c.Points["T"], c.Points["S"], c.Points["C"], c.Points["A"], c.State)
	}
	return flushed(e, tw.Flush())
}

func flushed(e *env, err error) int {
	if err != nil {
		return e.fail(ExitFailure, "write output: %v", err)
	}
	return ExitOK
}

// readServices reads every heartbeat hash: one SCAN, then one pipeline.
func readServices(ctx context.Context, rdb redis.UniversalClient) ([]serviceRow, error) {
	var keys []string
	iter := rdb.ScanType(ctx, 0, keyspace.ServiceHeartbeatPattern, 100, "hash").Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("scan service heartbeats: %w", err)
	}
	pipe := rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HGetAll(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && len(keys) > 0 {
		return nil, fmt.Errorf("read service heartbeats: %w", err)
	}
	rows := make([]serviceRow, 0, len(keys))
	for i, k := range keys {
		h := cmds[i].Val()
		if len(h) == 0 {
			continue // expired between SCAN and HGETALL
		}
		name, instance, _ := keyspace.ParseServiceHeartbeat(k)
		rows = append(rows, serviceRow{Name: name, Instance: instance, Version: h["version"],
			PID: parseInt(h["pid"]), Started: parseInt(h["started"]), Heartbeat: parseInt(h["heartbeat"])})
	}
	slices.SortFunc(rows, func(a, b serviceRow) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Instance, b.Instance))
	})
	return rows, nil
}

// readChannels joins the configured channels with their status hashes, read in
// one pipeline.
func readChannels(ctx context.Context, rdb redis.UniversalClient, cfg *config.Config) ([]channelRow, error) {
	pipe := rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(cfg.Channels))
	for i, ch := range cfg.Channels {
		cmds[i] = pipe.HGetAll(ctx, keyspace.ChannelStatus(ch.ID))
	}
	if _, err := pipe.Exec(ctx); err != nil && len(cmds) > 0 {
		return nil, fmt.Errorf("read channel status: %w", err)
	}
	rows := make([]channelRow, len(cfg.Channels))
	for i, ch := range cfg.Channels {
		h := cmds[i].Val()
		r := channelRow{ID: ch.ID, Name: ch.Name, Protocol: ch.Protocol, Enabled: ch.Enabled, Points: map[string]int{},
			State: h["state"], LastOK: parseInt(h["last_ok"]), LastError: h["last_error"], Polls: parseInt(h["polls"]),
			Errors: parseInt(h["errors"]), RTTus: parseInt(h["rtt_us"]), Updated: parseInt(h["updated"])}
		for _, t := range point.Types {
			r.Points[t.String()] = len(ch.Points[t])
		}
		switch {
		case !ch.Enabled:
			r.State = "disabled" // a status hash left from when it ran would mislead
		case r.State == "":
			r.State = "unknown"
		}
		rows[i] = r
	}
	return rows, nil
}
