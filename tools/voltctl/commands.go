package voltctl

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/point"
)

var pointSetSpec = &spec{
	path:    "point set",
	args:    "CH TYPE ID VALUE",
	summary: "send a command to a control (C) or adjustment (A) point and wait for its outcome",
	detail: `
VALUE is the engineering value; for control points on/off and true/false mean 1/0.
The command goes to the channel's command stream (source "cli"); comsrv checks
the point and its limits, writes it to the device and records the outcome. Exit
code 0 only when the outcome is ok; 1 for failed, rejected or expired (with the
reason) and when no outcome arrived within --timeout. The command expires at
--timeout, so one that was not run by then never runs later.`,
	json: true,
	setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) int {
		o := setOptions{timeout: 10 * time.Second}
		fs.StringVar(&o.user, "user", os.Getenv("USER"), "who is asking, for the audit log")
		fs.DurationVar(&o.timeout, "timeout", o.timeout, "how long to wait for the outcome; also the command's expiry")
		fs.BoolVar(&o.noWait, "no-wait", false, "print the command id and return without waiting (expiry: comsrv's default)")
		return func(ctx context.Context, e *env, args []string) int { return pointSet(ctx, e, args, o) }
	},
}

var commandGetSpec = &spec{
	path:    "command get",
	args:    "ID",
	summary: "the status of a command (pending, executing, ok, failed, expired, rejected)",
	detail: `
Reads the command's result (kept 24 h). Exit code 0 while it is pending or
executing and when it succeeded; 1 when it failed, was rejected or expired, or
when there is no such command.`,
	json: true,
	setup: func(*flag.FlagSet) func(context.Context, *env, []string) int {
		return commandGet
	},
}

type setOptions struct {
	user    string
	timeout time.Duration
	noWait  bool
}

func pointSet(ctx context.Context, e *env, args []string, o setOptions) int {
	if len(args) != 4 {
		return e.usage("want CH TYPE ID VALUE, got %d arguments", len(args))
	}
	ch, t, ids, err := pointArgs(args[:3])
	if err != nil {
		return e.usage("%v", err)
	}
	if !t.Writable() {
		return e.usage("%s points are read-only; commands go to control (C) or adjustment (A) points", t.Name())
	}
	value, err := parseCommandValue(args[3])
	if err != nil {
		return e.usage("%v", err)
	}
	if o.timeout <= 0 {
		return e.usage("--timeout must be positive")
	}
	s := e.loadSite()
	if s.cfg != nil && s.channel(ch) == nil {
		// Nothing consumes the stream of a channel comsrv does not run: the command
		// would wait there unseen.
		return e.fail(ExitUsage, "channel %d is not configured in %s; give the --config of the running site", ch, e.globals.configDir)
	}
	if code := e.connect(ctx, s); code != ExitOK {
		return code
	}
	defer s.close()

	c := command.Command{Channel: ch, Type: t, Point: ids[0], Value: value, Source: "cli",
		User: cmp.Or(o.user, "unknown"), TS: time.Now().UnixMilli()}
	if !o.noWait {
		c.Expires = c.TS + o.timeout.Milliseconds()
	}
	id, err := command.Submit(ctx, s.rdb, c)
	if err != nil {
		return e.fail(ExitFailure, "%v", err)
	}
	if o.noWait {
		if e.json {
			return e.writeJSON(map[string]string{"id": id, "status": string(command.Pending)})
		}
		fmt.Fprintf(e.stdout, "command %s submitted; see its outcome with: voltctl command get %s\n", id, id)
		return ExitOK
	}
	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	r, err := command.Wait(wctx, s.rdb, id)
	if err != nil {
		status := cmp.Or(string(r.Status), string(command.Pending))
		return e.fail(ExitFailure, "no outcome for command %s within %v (status %s): %v; check later with: voltctl command get %s", id, o.timeout, status, err, id)
	}
	return e.printResult(r, fmt.Sprintf("%d %s %d = %s", ch, t, c.Point, point.FormatValue(value)))
}

// parseCommandValue accepts a number, or on/off and true/false for control points.
func parseCommandValue(s string) (float64, error) {
	switch strings.ToLower(s) {
	case "on", "true":
		return 1, nil
	case "off", "false":
		return 0, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("value %q is not a finite number (or on/off, true/false)", s)
	}
	return v, nil
}

// printResult prints a command's outcome and returns ExitOK only for ok.
func (e *env) printResult(r command.Result, what string) int {
	if e.json {
		if code := e.writeJSON(r); code != ExitOK {
			return code
		}
	} else {
		line := fmt.Sprintf("command %s: %s", r.ID, r.Status)
		if what != "" {
			line += " (" + what + ")"
		}
		if r.Error != "" {
			line += ": " + r.Error
		}
		fmt.Fprintln(e.stdout, line)
	}
	if r.Status != command.OK {
		return ExitFailure
	}
	return ExitOK
}

func commandGet(ctx context.Context, e *env, args []string) int {
	if len(args) != 1 {
		return e.usage("want one command id")
	}
	s := e.loadSite()
	if code := e.connect(ctx, s); code != ExitOK {
		return code
	}
	defer s.close()
	r, err := command.Get(ctx, s.rdb, args[0])
	if errors.Is(err, redis.Nil) {
		return e.fail(ExitFailure, "no command %s (unknown id, or its result expired after %v)", args[0], command.ResultTTL)
	}
	if err != nil {
		return e.fail(ExitFailure, "%v", err)
	}
	if e.json {
		if code := e.writeJSON(r); code != ExitOK {
			return code
		}
		return exitForStatus(r.Status)
	}
	tw := table(e.stdout)
	fmt.Fprintf(tw, "ID\t%s\n", r.ID)
	fmt.Fprintf(tw, "STATUS\t%s\n", r.Status)
	fmt.Fprintf(tw, "POINT\tchannel %d, %s %d\n", r.Channel, r.Type, r.Point)
	if r.Error != "" {
		fmt.Fprintf(tw, "ERROR\t%s\n", r.Error)
	}
	if r.DoneTS > 0 {
		fmt.Fprintf(tw, "DONE\t%s (%s)\n", time.UnixMilli(r.DoneTS).Format(time.RFC3339Nano), since(r.DoneTS, time.Now()))
	}
	if code := flushed(e, tw.Flush()); code != ExitOK {
		return code
	}
	return exitForStatus(r.Status)
}

// exitForStatus: a command still on its way is not a failure of command get; a
// final outcome other than ok is.
func exitForStatus(s command.Status) int {
	if s.Final() && s != command.OK {
		return ExitFailure
	}
	return ExitOK
}
