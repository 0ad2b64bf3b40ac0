package voltctl

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

const defaultConfigDir = "./config"

// globals are the flags every command takes, before or after its name.
type globals struct {
	configDir string
	redisURL  string
}

// register adds --config and --redis to fs, defaulting to g's current values: a
// command's flag set re-registers them so `voltctl --config x status` and
// `voltctl status --config x` mean the same.
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.configDir, "config", g.configDir, "site configuration folder (Redis URL, point names and units)")
	fs.StringVar(&g.redisURL, "redis", g.redisURL, "Redis URL; overrides site.yaml and $VOLTAGE_REDIS_URL")
}

// env is one command's invocation: its flags and where its output goes.
type env struct {
	cmd     *spec
	globals globals
	json    bool
	stdout  io.Writer
	stderr  io.Writer
}

// usage reports a wrong argument and returns ExitUsage.
func (e *env) usage(format string, args ...any) int {
	fmt.Fprintf(e.stderr, "voltctl %s: %s\nusage: voltctl %s %s [FLAGS]; run 'voltctl %s -h' for help\n",
		e.cmd.path, fmt.Sprintf(format, args...), e.cmd.path, e.cmd.args, e.cmd.path)
	return ExitUsage
}

// fail reports why the command failed and returns code.
func (e *env) fail(code int, format string, args ...any) int {
	fmt.Fprintf(e.stderr, "voltctl %s: %s\n", e.cmd.path, fmt.Sprintf(format, args...))
	return code
}

// note tells the operator something on stderr without failing.
func (e *env) note(format string, args ...any) {
	fmt.Fprintf(e.stderr, "voltctl %s: %s\n", e.cmd.path, fmt.Sprintf(format, args...))
}

func newFlagSet(name string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {} // help is printed by flagError, to stdout when asked for
	return fs
}

// parseArgs parses the flags in args and returns the positional arguments. Unlike
// flag.Parse it accepts flags after positional arguments (operators type
// `voltctl point get 1 T --json`), and a negative number is a value, not a flag
// (`voltctl point set 1 A 2 -50`). With firstOnly it stops at the first positional
// argument and returns it with everything after it unparsed: the global flag set
// stops at the command name.
func parseArgs(fs *flag.FlagSet, args []string, firstOnly bool) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		a := args[0]
		if a == "--" {
			return append(pos, args[1:]...), nil
		}
		if !isFlag(a) {
			if firstOnly {
				return append(pos, args...), nil
			}
			pos = append(pos, a)
			args = args[1:]
			continue
		}
		n := flagWidth(fs, args)
		if err := fs.Parse(args[:n]); err != nil {
			return nil, err
		}
		args = args[n:]
	}
	return pos, nil
}

func isFlag(a string) bool {
	if len(a) < 2 || a[0] != '-' {
		return false
	}
	_, err := strconv.ParseFloat(a, 64)
	return err != nil
}

// flagWidth is how many arguments the flag at args[0] takes: one when it is a
// boolean, written as -name=value or unknown (Parse reports that), else two.
func flagWidth(fs *flag.FlagSet, args []string) int {
	name := strings.TrimLeft(args[0], "-")
	if strings.Contains(name, "=") {
		return 1
	}
	f := fs.Lookup(name)
	if f == nil {
		return 1
	}
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return 1
	}
	return min(2, len(args))
}

// flagError turns a flag parsing error into an exit code: -h prints help to stdout
// and succeeds; anything else (already printed by the flag package) is a usage
// error.
func flagError(err error, stdout, stderr io.Writer, help func(io.Writer)) int {
	if errors.Is(err, flag.ErrHelp) {
		help(stdout)
		return ExitOK
	}
	fmt.Fprintln(stderr, "run with -h for help")
	return ExitUsage
}
