// Package voltctl is the operator CLI of DESIGN §8: it validates and imports site
// configuration, shows what the running services and channels are doing, reads and
// watches points, and sends commands. Every command is a function of its arguments
// and two writers, so the whole CLI runs (and is tested) without a process;
// cmd/voltctl only wires os.Args and signals to Run.
package voltctl

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/voltageems/voltage/shared/service"
)

// Exit codes of Run.
const (
	ExitOK = 0
	// ExitFailure: the operation failed (Redis unreachable, a command that did not
	// succeed, files not written).
	ExitFailure = 1
	// ExitUsage: bad arguments or invalid configuration (the services' own exit
	// code for invalid configuration).
	ExitUsage = service.ExitConfig
)

// spec is one command of the CLI.
type spec struct {
	path    string // words after "voltctl", e.g. "point get"
	args    string // positional arguments, for the usage line
	summary string
	detail  string // more help, printed by -h
	json    bool   // read command: takes --json
	// setup registers the command's own flags and returns what runs it with the
	// positional arguments.
	setup func(fs *flag.FlagSet) func(ctx context.Context, e *env, args []string) int
}

// commands lists every command, in the order help shows them.
var commands = []*spec{
	configValidateSpec,
	statusSpec,
	channelsSpec,
	pointGetSpec,
	pointWatchSpec,
	pointSetSpec,
	commandGetSpec,
	importOriginalSpec,
	versionSpec,
}

// Run runs the CLI with args (without the program name) and returns the exit code.
// ctx ends long-running commands (point watch, point set's wait) as Ctrl-C does.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := globals{configDir: defaultConfigDir}
	fs := newFlagSet("voltctl", stderr)
	g.register(fs)
	rest, err := parseArgs(fs, args, true)
	if err != nil {
		return flagError(err, stdout, stderr, printHelp)
	}
	if len(rest) == 0 {
		printHelp(stderr)
		return ExitUsage
	}
	if rest[0] == "help" {
		if len(rest) == 1 {
			printHelp(stdout)
			return ExitOK
		}
		s, _ := lookup(rest[1:])
		if s == nil {
			fmt.Fprintf(stderr, "voltctl help: unknown command %q\n", strings.Join(rest[1:], " "))
			return ExitUsage
		}
		printCommandHelp(stdout, s, g)
		return ExitOK
	}
	s, n := lookup(rest)
	switch {
	case s == nil && n == 1:
		fmt.Fprintf(stderr, "voltctl %s: want one of: %s\n", rest[0], strings.Join(subcommands(rest[0]), ", "))
		return ExitUsage
	case s == nil:
		fmt.Fprintf(stderr, "voltctl: unknown command %q; run 'voltctl help' for the list\n", rest[0])
		return ExitUsage
	}
	return runCommand(ctx, s, g, rest[n:], stdout, stderr)
}

// lookup finds the command named by the first words of args and how many words
// its name took. On no match n is 1 when the first word names a group of
// commands ("point"), else 0.
func lookup(args []string) (s *spec, n int) {
	for _, c := range commands {
		words := strings.Fields(c.path)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.path {
			return c, len(words)
		}
		if len(args) >= 1 && len(words) > 1 && args[0] == words[0] {
			n = 1
		}
	}
	return nil, n
}

// subcommands lists the commands of a group ("point" → get, watch, set).
func subcommands(group string) []string {
	var out []string
	for _, c := range commands {
		if g, sub, ok := strings.Cut(c.path, " "); ok && g == group {
			out = append(out, group+" "+sub)
		}
	}
	return out
}

// runCommand parses the command's flags (the globals again, so they may follow
// the command name) and runs it.
func runCommand(ctx context.Context, s *spec, g globals, args []string, stdout, stderr io.Writer) int {
	e := &env{cmd: s, globals: g, stdout: stdout, stderr: stderr}
	fs, run := e.flagSet(stderr)
	pos, err := parseArgs(fs, args, false)
	if err != nil {
		return flagError(err, stdout, stderr, func(w io.Writer) { printCommandHelp(w, s, g) })
	}
	return run(ctx, e, pos)
}

// flagSet builds the command's flag set: the globals again (so they may follow the
// command name, defaulting to what preceded it), --json for read commands, and the
// command's own flags.
func (e *env) flagSet(out io.Writer) (*flag.FlagSet, func(context.Context, *env, []string) int) {
	fs := newFlagSet("voltctl "+e.cmd.path, out)
	e.globals.register(fs)
	if e.cmd.json {
		fs.BoolVar(&e.json, "json", false, "machine-readable JSON output")
	}
	return fs, e.cmd.setup(fs)
}

func printHelp(w io.Writer) {
	fmt.Fprint(w, `voltctl is the operator CLI of a VoltageEMS site.

Usage:
  voltctl [--config DIR] [--redis URL] COMMAND [ARGS] [FLAGS]

Commands:
`)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s %s\t%s\n", c.path, c.args, c.summary)
	}
	_ = tw.Flush()
	fmt.Fprint(w, `
Global flags (before or after the command):
  --config DIR   site configuration folder (default ./config): the Redis URL
                 (site.yaml; VOLTAGE_REDIS_URL overrides it) and point names/units
  --redis URL    Redis to use; overrides site.yaml and VOLTAGE_REDIS_URL

Run 'voltctl COMMAND -h' for a command's flags.
Exit codes: 0 success, 1 the operation failed, 2 bad usage or invalid configuration.
`)
}

func printCommandHelp(w io.Writer, s *spec, g globals) {
	fmt.Fprintf(w, "Usage: voltctl %s %s [FLAGS]\n\n%s\n", s.path, s.args, s.summary)
	if s.detail != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(s.detail))
	}
	fmt.Fprintln(w, "\nFlags:")
	fs, _ := (&env{cmd: s, globals: g}).flagSet(w)
	fs.PrintDefaults()
}

var versionSpec = &spec{
	path:    "version",
	summary: "print the version of voltctl",
	setup: func(*flag.FlagSet) func(context.Context, *env, []string) int {
		return func(_ context.Context, e *env, args []string) int {
			if len(args) > 0 {
				return e.usage("unexpected arguments %q", args)
			}
			fmt.Fprintf(e.stdout, "voltctl %s (%s, %s/%s)\n", service.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return ExitOK
		}
	},
}
