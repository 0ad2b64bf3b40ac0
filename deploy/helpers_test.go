package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voltageems/voltage/deploy"
)

// repoRoot is the repository root: the tests run in deploy/.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Fatalf("repository root %s has no go.work: %v", root, err)
	}
	return root
}

func binaries(t testing.TB) []deploy.Binary {
	t.Helper()
	bins, err := deploy.ReadBinaries("binaries.tsv")
	if err != nil {
		t.Fatal(err)
	}
	return bins
}

func binaryByName(t testing.TB) map[string]deploy.Binary {
	t.Helper()
	m := map[string]deploy.Binary{}
	for _, b := range binaries(t) {
		m[b.Name] = b
	}
	return m
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// need returns the path of a command the test cannot do without, failing with how
// to install it.
func need(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is needed for this test: apt-get install %s", name, debianPackage)
	}
	return p
}

// run runs a command in dir and returns its combined output, failing the test on
// a non-zero exit.
func run(t testing.TB, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
