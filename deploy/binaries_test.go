package deploy_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/voltageems/voltage/deploy"
)

// Every binary of the table is a main package of the workspace, and every binary
// that `go tool task build` builds is in the table.
func TestBinariesTableNamesMainPackages(t *testing.T) {
	root := repoRoot(t)
	bins := binaries(t)
	args := []string{"list", "-f", "{{.ImportPath}} {{.Name}}"}
	for _, b := range bins {
		args = append(args, b.Package)
	}
	out := run(t, root, nil, "go", args...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(bins) {
		t.Fatalf("go list printed %d packages for %d binaries:\n%s", len(lines), len(bins), out)
	}
	for i, l := range lines {
		if !strings.HasSuffix(l, " main") {
			t.Errorf("%s (%s) is not a main package: %s", bins[i].Name, bins[i].Package, l)
		}
		if !strings.HasSuffix(strings.Fields(l)[0], "/"+bins[i].Name) {
			t.Errorf("%s: package %s does not build a binary of that name", bins[i].Name, l)
		}
	}

	task := string(readFile(t, root+"/Taskfile.yml"))
	build := regexp.MustCompile(`go build -o \./bin/ (.*)`).FindStringSubmatch(task)
	if build == nil {
		t.Fatal("Taskfile.yml has no `go build -o ./bin/` line in task build")
	}
	inTable := map[string]bool{}
	for _, b := range bins {
		inTable[b.Package] = true
	}
	for _, pkg := range strings.Fields(build[1]) {
		if !inTable[pkg] && pkg != "./tools/cmd/voltage-dev" { // the dev stack is not deployed
			t.Errorf("task build builds %s, which deploy/binaries.tsv does not list", pkg)
		}
	}
}

func TestParseBinariesRejectsBadRows(t *testing.T) {
	for name, src := range map[string]string{
		"columns":   "comsrv\t./services/comsrv/cmd/comsrv\thttp://x\n",
		"twice":     "a\t./a\t-\ttool\na\t./b\t-\ttool\n",
		"package":   "a\tservices/a\t-\ttool\n",
		"role":      "a\t./a\t-\tdaemon\n",
		"probe":     "a\t./a\t127.0.0.1:1\tservice\n",
		"name":      "a/b\t./a\t-\ttool\n",
		"empty":     "# only a comment\n",
		"bad bytes": "\x00\xff\t./a\t-\ttool\tx\n",
	} {
		if _, err := deploy.ParseBinaries(name, []byte(src)); err == nil {
			t.Errorf("%s: %q accepted", name, src)
		}
	}
	bins, err := deploy.ParseBinaries("ok", []byte("# c\n\na\t./cmd/a\t-\ttool\nb\t./cmd/b\thttp://127.0.0.1:1/readyz\tservice\n"))
	if err != nil || len(bins) != 2 || bins[0].Probe != "" || bins[1].Probe == "" {
		t.Fatalf("ParseBinaries = %+v, %v", bins, err)
	}
}

func FuzzParseBinaries(f *testing.F) {
	f.Add(readFile(f, "binaries.tsv"))
	f.Add([]byte("a\t./a\t-\ttool\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		bins, err := deploy.ParseBinaries("fuzz", src)
		if err != nil {
			return
		}
		for _, b := range bins {
			if b.Name == "" || !strings.HasPrefix(b.Package, "./") {
				t.Fatalf("accepted a bad row %+v", b)
			}
		}
	})
}
