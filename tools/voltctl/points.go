package voltctl

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
)

var pointGetSpec = &spec{
	path:    "point get",
	args:    "CH TYPE [ID...]",
	summary: "current values of a channel's points (all of the type without ids)",
	detail: `
TYPE is T/S/C/A, YC/YX/YK/YT or telemetry/signal/control/adjustment, in any case.
Names and units come from the point table in --config. AGE is how long ago the
value was sampled; RAW is the value as read from the device. Exit code 1 when a
requested point is neither configured nor in Redis.`,
	json: true,
	setup: func(*flag.FlagSet) func(context.Context, *env, []string) int {
		return pointGet
	},
}

// pointRow is one point's state as stored in the channel's hashes.
type pointRow struct {
	Channel uint32       `json:"channel"`
	Type    point.Type   `json:"type"`
	ID      point.ID     `json:"id"`
	Name    string       `json:"name"`
	Value   *json.Number `json:"value"` // null: no value in Redis
	Unit    string       `json:"unit"`
	Quality string       `json:"quality"` // "" when there is no value
	TS      int64        `json:"ts"`
	Raw     *json.Number `json:"raw"`
}

// pointArgs parses CH TYPE [ID...].
func pointArgs(args []string) (ch uint32, t point.Type, ids []point.ID, err error) {
	if len(args) < 2 {
		return 0, 0, nil, fmt.Errorf("want a channel id and a point type")
	}
	if ch, err = parseChannel(args[0]); err != nil {
		return 0, 0, nil, err
	}
	if t, err = point.ParseType(args[1]); err != nil {
		return 0, 0, nil, err
	}
	for _, a := range args[2:] {
		id, err := parsePointID(a)
		if err != nil {
			return 0, 0, nil, err
		}
		ids = append(ids, id)
	}
	return ch, t, ids, nil
}

func pointGet(ctx context.Context, e *env, args []string) int {
	ch, t, ids, err := pointArgs(args)
	if err != nil {
		return e.usage("%v", err)
	}
	s := e.loadSite()
	if s.cfg == nil {
		e.note("names and units not shown: the site config %s did not load: %s", e.globals.configDir, configNote(s.cfgErr))
	}
	if code := e.connect(ctx, s); code != ExitOK {
		return code
	}
	defer s.close()
	cc := s.channel(ch)
	rows, err := readPoints(ctx, s.rdb, ch, t, ids, cc)
	if err != nil {
		return e.fail(ExitFailure, "%v", err)
	}
	if len(rows) == 0 {
		return e.fail(ExitFailure, "channel %d has no %s points (none configured, none in Redis)", ch, t.Name())
	}
	var unknown []point.ID
	for _, r := range rows {
		if r.Value == nil && cc.Point(t, r.ID) == nil {
			unknown = append(unknown, r.ID)
		}
	}
	code := ExitOK
	if e.json {
		code = e.writeJSON(rows)
	} else {
		now := time.Now()
		tw := table(e.stdout)
		fmt.Fprintln(tw, "ID\tNAME\tVALUE\tUNIT\tQUALITY\tAGE\tRAW")
		for _, r := range rows {
			age := "-"
			if r.Value != nil {
				age = since(r.TS, now)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, orDash(r.Name), numText(r.Value), orDash(r.Unit), orDash(r.Quality), age, numText(r.Raw))
		}
		code = flushed(e, tw.Flush())
	}
	if len(unknown) > 0 {
		return e.fail(ExitFailure, "channel %d has no %s point %v: not configured in %s and no value in Redis", ch, t.Name(), unknown, e.globals.configDir)
	}
	return code
}

func numText(n *json.Number) string {
	if n == nil {
		return "-"
	}
	return n.String()
}

// readPoints reads the values, timestamps, raw values and qualities of the points
// in one pipeline. Without ids it reads the points of the channel's table in cc,
// or, for a channel not in the config, every point found in Redis.
func readPoints(ctx context.Context, rdb redis.UniversalClient, ch uint32, t point.Type, ids []point.ID, cc *config.Channel) ([]pointRow, error) {
	if ids == nil && cc != nil {
		for _, p := range pointsOfChannel(cc, t) {
			ids = append(ids, p.ID)
		}
	}
	keys := [4]string{keyspace.ChannelPoints(ch, t), keyspace.ChannelTimestamps(ch, t), keyspace.ChannelRaw(ch, t), keyspace.ChannelQuality(ch, t)}
	var hashes [4]map[string]string
	pipe := rdb.Pipeline()
	if ids == nil {
		var cmds [4]*redis.MapStringStringCmd
		for i, k := range keys {
			cmds[i] = pipe.HGetAll(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("read channel %d %s points: %w", ch, t, err)
		}
		for i := range cmds {
			hashes[i] = cmds[i].Val()
		}
		for f := range hashes[0] {
			if id, err := strconv.ParseUint(f, 10, 32); err == nil {
				ids = append(ids, point.ID(id))
			}
		}
		slices.Sort(ids)
	} else if len(ids) > 0 {
		fields := make([]string, len(ids))
		for i, id := range ids {
			fields[i] = strconv.FormatUint(uint64(id), 10)
		}
		var cmds [4]*redis.SliceCmd
		for i, k := range keys {
			cmds[i] = pipe.HMGet(ctx, k, fields...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("read channel %d %s points: %w", ch, t, err)
		}
		for i := range cmds {
			hashes[i] = map[string]string{}
			for j, v := range cmds[i].Val() {
				if s, ok := v.(string); ok {
					hashes[i][fields[j]] = s
				}
			}
		}
	}
	rows := make([]pointRow, 0, len(ids))
	for _, id := range ids {
		f := strconv.FormatUint(uint64(id), 10)
		r := pointRow{Channel: ch, Type: t, ID: id, TS: parseInt(hashes[1][f])}
		if v, ok := hashes[0][f]; ok {
			r.Value = jsonNumber(v)
			r.Quality = cmp.Or(hashes[3][f], point.Good.String())
		}
		if raw, ok := hashes[2][f]; ok {
			r.Raw = jsonNumber(raw)
		}
		if p := cc.Point(t, id); p != nil {
			r.Name, r.Unit = p.Name, p.Unit
		}
		rows = append(rows, r)
	}
	return rows, nil
}
