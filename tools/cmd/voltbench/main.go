// Command voltbench runs the benchmarks behind every budget of DESIGN §10 and
// prints one table: measured, the baseline measured in the same run, the ratio,
// the budget and whether it holds, with the machine it ran on. `go tool task
// bench` runs it from the repository root.
//
//	voltbench [-rows REGEXP] [-o FILE]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/voltageems/voltage/tools/benchtable"
)

func main() {
	rowsRE := flag.String("rows", "", "run only the rows whose description matches this regexp")
	out := flag.String("o", "", "also write the table (Markdown) to this file")
	flag.Parse()
	if err := run(*rowsRE, *out); err != nil {
		fmt.Fprintln(os.Stderr, "voltbench:", err)
		os.Exit(1)
	}
}

func run(rowsRE, out string) error {
	re, err := regexp.Compile(rowsRE)
	if err != nil {
		return fmt.Errorf("-rows: %w", err)
	}
	var rows []benchtable.Row
	for _, r := range benchtable.Rows {
		if re.MatchString(r.What) {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return fmt.Errorf("no row matches %q", rowsRE)
	}
	started, loadBefore := time.Now(), loadAverage()
	results := benchtable.Results{}
	done := map[benchtable.Run]bool{}
	var failed []string
	for _, row := range rows {
		for _, r := range row.Runs {
			if done[r] {
				continue
			}
			done[r] = true
			if err := goTestBench(r, results); err != nil {
				failed = append(failed, fmt.Sprintf("%s %s: %v", r.Pkg, r.Bench, err))
			}
		}
	}
	lines := make([]benchtable.Line, len(rows))
	for i, row := range rows {
		lines[i] = row.Evaluate(results)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s (%d cores, %s), %s; load average %s before, %s after; %s.\n\n",
		started.UTC().Format("2006-01-02 15:04 MST"), cpuModel(), runtime.NumCPU(), runtime.GOARCH, runtime.Version(),
		loadBefore, loadAverage(), time.Since(started).Round(time.Second))
	b.WriteString(benchtable.Markdown(lines))
	for _, f := range failed {
		fmt.Fprintf(&b, "\nfailed: %s\n", f)
	}
	fmt.Print(b.String())
	if out != "" {
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d benchmark runs failed", len(failed))
	}
	return nil
}

// goTestBench runs one benchmark, showing its output as it comes, and parses it.
func goTestBench(r benchtable.Run, into benchtable.Results) error {
	args := []string{"test", "-run", "^$", "-bench", r.Bench, "-timeout", "20m"}
	if r.Benchtime != "" {
		args = append(args, "-benchtime", r.Benchtime)
	}
	args = append(args, r.Pkg)
	fmt.Fprintf(os.Stderr, "\n$ go %s\n", strings.Join(args, " "))
	var buf bytes.Buffer
	cmd := exec.Command("go", args...)
	cmd.Stdout = io.MultiWriter(os.Stderr, &buf)
	cmd.Stderr = os.Stderr
	err := cmd.Run()
	if perr := benchtable.Parse(&buf, into); perr != nil && err == nil {
		err = perr
	}
	return err
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return f[0]
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
