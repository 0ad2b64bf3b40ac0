// Package benchtable runs the benchmarks behind DESIGN §10's budgets and turns
// their output into one table: what was measured, the baseline measured in the
// same run, their ratio, the budget and whether it holds. `go tool task bench`
// runs it (tools/cmd/voltbench); the rows live in rows.go, one per budget.
package benchtable

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// Results are the metrics of every benchmark of a run, by benchmark name without
// the GOMAXPROCS suffix ("BenchmarkUplink/bridge/points=100") and unit.
type Results map[string]map[string]float64

// Parse reads `go test -bench` output and adds every benchmark line's metrics to
// into. A line is "BenchmarkName-2  <iterations>  <value> <unit>  <value> <unit>…";
// anything else (logs, PASS, ok) is skipped. A metric seen twice keeps the last.
func Parse(r io.Reader, into Results) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		name, metrics, ok := parseLine(sc.Text())
		if !ok {
			continue
		}
		if into[name] == nil {
			into[name] = map[string]float64{}
		}
		for unit, v := range metrics {
			into[name][unit] = v
		}
	}
	return sc.Err()
}

func parseLine(line string) (string, map[string]float64, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
		return "", nil, false
	}
	if _, err := strconv.ParseUint(f[1], 10, 64); err != nil {
		return "", nil, false
	}
	name := f[0]
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			name = name[:i]
		}
	}
	metrics := map[string]float64{}
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return "", nil, false
		}
		metrics[f[i+1]] = v
	}
	return name, metrics, true
}

// Get returns one metric, and whether the run produced it.
func (r Results) Get(bench, unit string) (float64, bool) {
	v, ok := r[bench][unit]
	return v, ok
}
