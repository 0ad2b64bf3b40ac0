package devstack

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// StackPackages are the stack's own programs, relative to the workspace root:
// the device simulator, the edge appliance and the cloud hub.
var StackPackages = []string{"./tools/cmd/voltsim", "./edge/cmd/voltage-edge", "./cloud/cmd/voltage-cloud"}

// Binary names of StackPackages in the folder Build writes to.
const (
	VoltsimBinary = "voltsim"
	EdgeBinary    = "voltage-edge"
	CloudBinary   = "voltage-cloud"
)

// WorkspaceRoot is the folder of go.work, where StackPackages are found.
func WorkspaceRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOWORK").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOWORK: %w", err)
	}
	gowork := strings.TrimSpace(string(out))
	if gowork == "" || gowork == "off" {
		return "", errors.New("no go.work found: run inside the VoltageEMS repository")
	}
	return filepath.Dir(gowork), nil
}

// Build compiles pkgs (relative to root, the workspace root) into binDir. DWARF is
// left out: it is most of the link time, and nobody debugs these binaries. The
// error carries the compiler's output.
func Build(ctx context.Context, root, binDir string, pkgs ...string) error {
	args := append([]string{"build", "-ldflags=-w", "-o", binDir + string(filepath.Separator)}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w\n%s", strings.Join(pkgs, " "), err, out)
	}
	return nil
}
