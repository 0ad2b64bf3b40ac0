package voltctl

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/voltageems/voltage/shared/config"
)

var importOriginalSpec = &spec{
	path:    "import original",
	args:    "SRC DST",
	summary: "convert an original VoltageEMS config folder into a site folder",
	detail: `
SRC is the original's config folder: global.yaml, comsrv/comsrv.yaml and the
point tables comsrv/{id}/*.csv with their mapping/ CSVs. DST receives site.yaml,
comsrv/channels.yaml and the CSVs, copied as they are (the columns are
compatible). Parameters are translated (read_timeout_ms → timeout_ms, protocol
di_do → gpio); keys this version does not use are dropped. The report names every
change and dropped key with its place in SRC. The model folder modsrv/ (its
instances.yaml, instances/{name}/instance.yaml and channel_routing.csv) becomes
modsrv/instances.yaml and the routing tables, copied as they are; products map
to the built-in library. Files that exist in DST are never
overwritten without --force; nothing is written when one would be.

Afterwards DST is checked as 'config validate' does. Exit code 0 when the import
is complete and valid, 1 when nothing was written, 2 when the written folder does
not validate (e.g. a protocol this build does not have yet).`,
	setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) int {
		var o importOptions
		fs.StringVar(&o.siteID, "site-id", "imported-site", "site id (and name) written to site.yaml")
		fs.BoolVar(&o.force, "force", false, "overwrite files that exist in DST")
		return func(_ context.Context, e *env, args []string) int { return importOriginal(e, args, o) }
	},
}

type importOptions struct {
	siteID string
	force  bool
}

func importOriginal(e *env, args []string, o importOptions) int {
	if len(args) != 2 {
		return e.usage("want SRC and DST folders")
	}
	src, dst := args[0], args[1]
	if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
		return e.fail(ExitFailure, "source %s is not a folder", src)
	}
	im := &importer{src: src}
	files, err := im.convert(o.siteID)
	if err != nil {
		return e.fail(ExitFailure, "nothing written: %v", err)
	}

	var exist []string
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(dst, f.rel)); err == nil {
			exist = append(exist, filepath.Join(dst, f.rel))
		}
	}
	if len(exist) > 0 && !o.force {
		return e.fail(ExitFailure, "nothing written: %s exist in %s (use --force to overwrite):\n  %s",
			plural(len(exist), "file"), dst, strings.Join(exist, "\n  "))
	}

	fmt.Fprintf(e.stdout, "Import of %s into %s\n\n", src, dst)
	for _, c := range im.changes {
		fmt.Fprintln(e.stdout, c)
	}
	fmt.Fprintln(e.stdout)
	for _, f := range files {
		path := filepath.Join(dst, f.rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return e.fail(ExitFailure, "import stopped: %v", err)
		}
		if err := os.WriteFile(path, f.data, 0o644); err != nil {
			return e.fail(ExitFailure, "import stopped: %v", err)
		}
		verb := "wrote"
		if slices.Contains(exist, path) {
			verb = "overwrote"
		}
		fmt.Fprintf(e.stdout, "%s %s\n", verb, path)
	}

	fmt.Fprintf(e.stdout, "\nChecking %s as 'voltctl config validate' does:\n", dst)
	return max(validateSite(e.stdout, dst), validateModel(e.stdout, dst))
}

// convert builds every file of the site folder in memory, so that nothing is
// written when any part of SRC cannot be read.
func (im *importer) convert(siteID string) ([]outFile, error) {
	site, err := im.site(siteID)
	if err != nil {
		return nil, err
	}
	chans, ids, err := im.channels()
	if err != nil {
		return nil, err
	}
	tables, err := im.pointTables(ids)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(im.src)
	if err != nil {
		return nil, err
	}
	for _, de := range entries {
		if name := de.Name(); name != "global.yaml" && name != "comsrv" && name != "modsrv" {
			im.report(config.Position{File: filepath.Join(im.src, name)}, "not imported: this version imports global.yaml, comsrv/ and modsrv/ only")
		}
	}
	models, err := im.modsrv()
	if err != nil {
		return nil, err
	}
	return append(append([]outFile{site, chans}, tables...), models...), nil
}

// pointTables collects the CSVs of the channels in ids (comsrv/{id}/*.csv and
// comsrv/{id}/mapping/*.csv), unchanged.
func (im *importer) pointTables(ids map[string]bool) ([]outFile, error) {
	root := filepath.Join(im.src, "comsrv")
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []outFile
	copied := map[string]bool{}
	for _, de := range entries {
		path := filepath.Join(root, de.Name())
		switch {
		case de.Name() == "comsrv.yaml":
			continue
		case !de.IsDir() || !ids[de.Name()]:
			im.report(config.Position{File: path}, "not imported: not the folder of a channel in comsrv.yaml")
			continue
		}
		err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if !strings.EqualFold(filepath.Ext(p), ".csv") || !d.Type().IsRegular() {
				im.report(config.Position{File: p}, "not imported: not a CSV file")
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(im.src, p)
			if err != nil {
				return err
			}
			out = append(out, outFile{rel: rel, data: data})
			copied[de.Name()] = true
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("copy point tables: %w", err)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		if !copied[id] {
			im.report(config.Position{File: filepath.Join(root, id)}, "channel %s: no point tables; it has no points until they are added", id)
		}
	}
	return out, nil
}
