// Package e2e runs the web UI's own checks from `go test`: the vitest unit tests
// of the client-side logic, and the browser test that drives chromium against
// a live site (site_test.go) with the gateway serving the embedded UI.
package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// webDir is the web UI's folder (package.json, node_modules).
func webDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var npmOnce sync.Once
var npmErr string

// needNode fails the test when node or npm is missing, and installs the
// locked dependencies (npm ci) when node_modules is not there yet.
func needNode(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: the web UI's tests need Node.js 20.19+ and npm (Debian: apt-get install nodejs npm, or https://nodejs.org)", tool)
		}
	}
	npmOnce.Do(func() {
		dir := webDir(t)
		if _, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json")); err == nil {
			return
		}
		out, err := run(t.Context(), dir, 10*time.Minute, nil, "npm", "ci", "--no-audit", "--no-fund")
		if err != nil {
			npmErr = "npm ci: " + err.Error() + "\n" + out
		}
	})
	if npmErr != "" {
		t.Fatal(npmErr)
	}
}

// run runs a command in dir with extra environment and a time bound, and
// returns its combined output.
func run(ctx context.Context, dir string, limit time.Duration, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestUnit runs the vitest unit tests of the client-side logic (src/**/*.test.ts).
func TestUnit(t *testing.T) {
	needNode(t)
	out, err := run(t.Context(), webDir(t), 5*time.Minute, []string{"CI=1", "NO_COLOR=1"}, "npx", "--no-install", "vitest", "run")
	if err != nil {
		t.Fatalf("vitest: %v\n%s", err, out)
	}
	t.Log(out)
}
