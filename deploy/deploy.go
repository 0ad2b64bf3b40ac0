// Package deploy holds what ships VoltageEMS: the container images
// (docker/Dockerfile), the compose stack (compose/), the Kubernetes manifests
// (k8s/), the systemd units and install script (systemd/), the Prometheus and
// Grafana configuration (prometheus/, grafana/) and the release build
// (release.sh, `go tool task release`). docs/deploy.md explains how to use them.
//
// The Go code here is the table of binaries every part reads (binaries.tsv), the
// containers' health probe (cmd/voltage-probe) and the tests that check all of
// the above offline: manifests decoded strictly, Dockerfiles parsed, units
// verified, the install script run in a throwaway root, dashboards and alert
// rules compared with the metrics the real binaries export.
package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// Binary is one row of binaries.tsv.
type Binary struct {
	Name    string // the binary's file name, e.g. voltage-edge
	Package string // its main package, relative to the repository root
	Probe   string // the URL the image's HEALTHCHECK asks; "" for a command-line tool
	Role    string // service, edge, cloud or tool
}

// Roles a binary may have.
var roles = map[string]bool{"service": true, "edge": true, "cloud": true, "tool": true}

// ReadBinaries reads binaries.tsv: tab-separated name, package, probe ("-" for
// none) and role; '#' starts a comment line.
func ReadBinaries(path string) ([]Binary, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseBinaries(path, src)
}

// ParseBinaries parses the content of binaries.tsv; name is used in errors.
func ParseBinaries(name string, src []byte) ([]Binary, error) {
	var out []Binary
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(src))
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if strings.TrimSpace(text) == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Split(text, "\t")
		if len(f) != 4 {
			return nil, fmt.Errorf("%s:%d: want 4 tab-separated columns (binary, package, probe, role), got %d", name, line, len(f))
		}
		b := Binary{Name: f[0], Package: f[1], Probe: f[2], Role: f[3]}
		switch {
		case b.Name == "" || strings.ContainsAny(b.Name, "/ "):
			return nil, fmt.Errorf("%s:%d: bad binary name %q", name, line, b.Name)
		case seen[b.Name]:
			return nil, fmt.Errorf("%s:%d: binary %s listed twice", name, line, b.Name)
		case !strings.HasPrefix(b.Package, "./"):
			return nil, fmt.Errorf("%s:%d: package %q must start with ./", name, line, b.Package)
		case !roles[b.Role]:
			return nil, fmt.Errorf("%s:%d: unknown role %q (service, edge, cloud, tool)", name, line, b.Role)
		}
		if b.Probe == "-" {
			b.Probe = ""
		} else if !strings.HasPrefix(b.Probe, "http://") {
			return nil, fmt.Errorf("%s:%d: probe %q must be an http:// URL or -", name, line, b.Probe)
		}
		seen[b.Name] = true
		out = append(out, b)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no binaries", name)
	}
	return out, nil
}
