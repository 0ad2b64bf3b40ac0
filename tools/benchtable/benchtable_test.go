package benchtable

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	out := `goos: linux
BenchmarkUplink/bridge/points=100-2         	   20000	    181234 points/s	       0 ns/op
BenchmarkRealtimeRead-2   	    5000	        41.26 bare_constant_p95_ms	       443.8 bare_redis_p95_ms	       104.5 gateway_p95_ms
BenchmarkBroken-2   	    5000	        x unit
--- FAIL: BenchmarkOther-2
PASS
ok  	github.com/voltageems/voltage/services/apigateway	16.584s
`
	r := Results{}
	if err := Parse(strings.NewReader(out), r); err != nil {
		t.Fatal(err)
	}
	if v, ok := r.Get("BenchmarkUplink/bridge/points=100", "points/s"); !ok || v != 181234 {
		t.Fatalf("uplink = %v %v", v, ok)
	}
	if v, ok := r.find("BenchmarkRealtimeRead", "gateway_p95_ms"); !ok || v != 104.5 {
		t.Fatalf("gateway = %v %v", v, ok)
	}
	if _, ok := r["BenchmarkBroken"]; ok {
		t.Fatal("a line with a non-numeric value was parsed")
	}
	l := Rows[5].Evaluate(r) // the gateway row
	if l.Holds != "**no**" || l.Ratio != "0.235" || !strings.Contains(l.Baseline, "444 bare chi") {
		t.Fatalf("gateway line %+v", l)
	}
	if l := Rows[0].Evaluate(r); l.Holds != "not measured" || !strings.Contains(l.Measured, "missing") {
		t.Fatalf("a row without results: %+v", l)
	}
}

// TestRowsNameExistingBenchmarks checks every row against the code: its package
// exists, its -bench regexp matches a benchmark function there, and every
// metric's unit is reported by some benchmark of that package. A renamed
// benchmark or metric breaks the table here, not in a bench run an hour later.
func TestRowsNameExistingBenchmarks(t *testing.T) {
	root := repoRoot(t)
	funcRE := regexp.MustCompile(`(?m)^func (Benchmark\w+)\(b \*testing\.B\)`)
	for _, row := range Rows {
		var src strings.Builder
		for _, r := range row.Runs {
			dir := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(r.Pkg, "./")))
			files, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
			if len(files) == 0 {
				t.Errorf("%s: no tests in %s", row.What, r.Pkg)
				continue
			}
			benchRE := regexp.MustCompile(r.Bench)
			found := false
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				src.Write(b)
				for _, m := range funcRE.FindAllStringSubmatch(string(b), -1) {
					if benchRE.MatchString(m[1]) {
						found = true
					}
				}
			}
			if !found {
				t.Errorf("%s: -bench %q matches no benchmark in %s", row.What, r.Bench, r.Pkg)
			}
		}
		for _, m := range append(append([]Metric{}, row.Measured...), row.Baseline...) {
			if !strings.Contains(src.String(), `"`+m.Unit+`")`) {
				t.Errorf("%s: no benchmark reports the unit %q", row.What, m.Unit)
			}
			top, _, _ := strings.Cut(m.Bench, "/")
			if !strings.Contains(src.String(), "func "+top+"(") {
				t.Errorf("%s: no benchmark %s", row.What, top)
			}
		}
	}
}

func repoRoot(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOWORK").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("go env GOWORK: %v %s", err, out)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}
