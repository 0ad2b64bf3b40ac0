package voltctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/voltageems/voltage/edge/bridge"
	"github.com/voltageems/voltage/services/alarmsrv"
	"github.com/voltageems/voltage/services/apigateway"
	"github.com/voltageems/voltage/services/comsrv"
	"github.com/voltageems/voltage/services/comsrv/protocol"
	"github.com/voltageems/voltage/services/hissrv"
	"github.com/voltageems/voltage/services/netsrv"
	"github.com/voltageems/voltage/services/rulesrv"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/model"
	"github.com/voltageems/voltage/shared/service"
)

var configValidateSpec = &spec{
	path:    "config validate",
	summary: "check a site folder completely, as the services would on start",
	detail: `
Loads every file of the folder (site.yaml, comsrv/channels.yaml, point tables and
mappings) and builds every channel's protocol driver, which checks its parameters
and mappings; then loads the thing model (modsrv/: products, instances, routing,
calculations) against those channels, as modsrv does; then every other service's
files (rules, alarms, history, cloud links, gateway settings, the edge
bridge's edge/uplink.yaml) as each service would on start. Prints "config OK: ..." or every problem as file:line:col: message.
Exit code 0 when valid, 2 when not.`,
	setup: func(*flag.FlagSet) func(context.Context, *env, []string) int {
		return func(_ context.Context, e *env, args []string) int {
			if len(args) > 0 {
				return e.usage("unexpected arguments %q (the folder is given with --config)", args)
			}
			dir := e.globals.configDir
			code := max(validateSite(e.stdout, dir), validateModel(e.stdout, dir))
			if code == ExitOK {
				code = validateServices(e.stdout, dir)
			}
			return code
		}
	},
}

// validateSite runs the checks of config validate on dir, prints the result to w
// and returns ExitOK or ExitUsage.
func validateSite(w io.Writer, dir string) int {
	cfg, err := service.LoadConfig(dir)
	if err != nil {
		var le *config.LoadError
		if !errors.As(err, &le) {
			fmt.Fprintln(w, err)
			fmt.Fprintf(w, "config invalid: %s\n", dir)
			return ExitUsage
		}
		for _, pe := range le.Errors {
			fmt.Fprintln(w, pe)
		}
		fmt.Fprintf(w, "config invalid: %s in %s\n", plural(len(le.Errors), "problem"), dir)
		return ExitUsage
	}
	problems := channelProblems(cfg)
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(w, p)
		}
		fmt.Fprintf(w, "config invalid: %s in %s\n", plural(len(problems), "problem"), dir)
		return ExitUsage
	}
	points := 0
	for _, ch := range cfg.Channels {
		for _, ps := range ch.Points {
			points += len(ps)
		}
	}
	fmt.Fprintf(w, "config OK: site %s, %s, %s\n", cfg.Site.Site.ID, plural(len(cfg.Channels), "channel"), plural(points, "point"))
	return ExitOK
}

// channelProblems runs comsrv's driver checks channel by channel, so each problem
// can be placed in channels.yaml: at the driver's own position when it gives one,
// at the protocol when that is not available in this build, else at the channel.
func channelProblems(cfg *config.Config) []string {
	path := filepath.Join(cfg.Dir, "comsrv", "channels.yaml")
	var y *yamlFile
	if src, err := os.ReadFile(path); err == nil {
		y, _ = parseYAMLFile(path, src) // Load parsed it already; nil only if it vanished
	}
	if y == nil {
		y = &yamlFile{path: path}
	}
	available := protocol.Names()
	var out []string
	for i := range cfg.Channels {
		ch := &cfg.Channels[i]
		err := comsrv.Validate(&config.Config{Dir: cfg.Dir, Site: cfg.Site, Channels: cfg.Channels[i : i+1]})
		if err == nil {
			continue
		}
		for _, e := range splitJoined(err) {
			var pe *config.PosError
			if errors.As(e, &pe) && pe.Pos.File != "" {
				// "channel 1 (pv1): parameters: f:3:7: msg" reads better as "f:3:7: channel 1 (pv1): parameters: msg".
				out = append(out, pe.Pos.String()+": "+strings.Replace(e.Error(), pe.Error(), pe.Msg, 1))
				continue
			}
			pos := y.keyPos("channels", i, "id")
			if !slices.Contains(available, ch.Protocol) {
				pos = y.valuePos("channels", i, "protocol")
			}
			out = append(out, pos.String()+": "+e.Error())
		}
	}
	return out
}

// splitJoined returns the errors of an errors.Join, or err itself.
func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// validateModel checks the model of the site in dst as modsrv would load it; the exit code
// is ExitUsage when it does not load.
func validateModel(w io.Writer, dst string) int {
	if _, err := os.Stat(filepath.Join(dst, model.Folder)); err != nil {
		return ExitOK
	}
	cfg, err := service.LoadConfig(dst)
	if err != nil {
		fmt.Fprintf(w, "model not checked: the channels do not load\n")
		return ExitUsage
	}
	m, err := model.Load(dst, cfg)
	if err != nil {
		var le *config.LoadError
		if errors.As(err, &le) {
			for _, pe := range le.Errors {
				fmt.Fprintln(w, pe)
			}
			fmt.Fprintf(w, "model invalid: %s in %s\n", plural(len(le.Errors), "problem"), filepath.Join(dst, model.Folder))
		} else {
			fmt.Fprintf(w, "model invalid: %v\n", err)
		}
		return ExitUsage
	}
	fmt.Fprintf(w, "model OK: %s\n", m.Summary())
	return ExitOK
}

// serviceChecks are the configuration checks of the services beyond comsrv and
// modsrv: each loads its files exactly as the service does on start.
var serviceChecks = []struct {
	name  string
	check func(cfg *config.Config, dir string) error
}{
	{"rulesrv", func(cfg *config.Config, dir string) error { _, err := rulesrv.Validate(cfg, dir); return err }},
	{"alarmsrv", func(cfg *config.Config, dir string) error { _, err := alarmsrv.Validate(cfg, dir); return err }},
	{"hissrv", func(_ *config.Config, dir string) error { _, err := hissrv.LoadFile(dir); return err }},
	{"netsrv", func(_ *config.Config, dir string) error {
		_, err := netsrv.LoadFile(netsrv.ConfigPath(dir))
		return err
	}},
	{"apigateway", func(_ *config.Config, dir string) error { _, err := apigateway.LoadSettings(dir); return err }},
	{"edge", func(cfg *config.Config, dir string) error { _, err := bridge.LoadConfig(dir, cfg); return err }},
}

// validateServices runs serviceChecks on the site in dir (whose channels and
// model are valid) and prints one line per service, or its problems.
func validateServices(w io.Writer, dir string) int {
	cfg, err := service.LoadConfig(dir)
	if err != nil {
		return ExitUsage // reported by validateSite
	}
	code := ExitOK
	for _, sc := range serviceChecks {
		err := sc.check(cfg, dir)
		if err == nil {
			fmt.Fprintf(w, "%s OK\n", sc.name)
			continue
		}
		code = ExitUsage
		var le *config.LoadError
		if errors.As(err, &le) {
			for _, pe := range le.Errors {
				fmt.Fprintln(w, pe)
			}
			fmt.Fprintf(w, "%s invalid: %s\n", sc.name, plural(len(le.Errors), "problem"))
			continue
		}
		fmt.Fprintf(w, "%s invalid: %v\n", sc.name, err)
	}
	return code
}
