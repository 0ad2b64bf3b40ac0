package deploy_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var units = []string{"voltage-edge.service", "voltage-cloud.service", "voltage@.service"}

// parseUnit reads a unit file into section → key → values.
func parseUnit(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	out := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, path)))
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			section = l[1 : len(l)-1]
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: %q is neither a section nor key=value", path, n, l)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	return out
}

// The units run the binaries as the voltage user from /var/lib/voltage with the
// config in /etc/voltage, restart on failure but not on bad config, and are
// hardened.
func TestSystemdUnitsKeys(t *testing.T) {
	for _, u := range units {
		m := parseUnit(t, filepath.Join("systemd", u))
		svc := m["Service"]
		want := map[string]string{
			"User": "voltage", "Group": "voltage", "WorkingDirectory": "/var/lib/voltage", "Restart": "on-failure",
			"RestartPreventExitStatus": "2", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ReadWritePaths": "/var/lib/voltage",
		}
		for k, v := range want {
			if got := svc[k]; len(got) != 1 || got[0] != v {
				t.Errorf("%s: %s=%v, want %s", u, k, got, v)
			}
		}
		exec := svc["ExecStart"]
		if len(exec) != 1 || !strings.HasPrefix(exec[0], "/usr/local/bin/") || !strings.HasSuffix(exec[0], " --config /etc/voltage") {
			t.Errorf("%s: ExecStart=%v, want /usr/local/bin/BINARY --config /etc/voltage", u, exec)
		}
		if m["Install"]["WantedBy"] == nil || m["Unit"]["Description"] == nil {
			t.Errorf("%s: no [Install] WantedBy or Description", u)
		}
	}
}

// stagingRoot is a throwaway root with what systemd-analyze needs to verify units
// in it: the machine's own system units (targets) and /bin/kill.
func stagingRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"lib/systemd", "bin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run(t, "/", nil, "cp", "-R", "/lib/systemd/system", filepath.Join(root, "lib/systemd/"))
	run(t, "/", nil, "cp", "/bin/kill", filepath.Join(root, "bin/kill"))
	return root
}

// verifyUnits runs systemd-analyze verify on the installed units; any warning
// fails (it exits 0 on unknown keys, so its output is what counts).
func verifyUnits(t *testing.T, root string, names ...string) {
	t.Helper()
	sa := need(t, "systemd-analyze", "systemd")
	args := []string{"verify", "--man=no", "--root=" + root}
	for _, n := range names {
		args = append(args, "/etc/systemd/system/"+n)
	}
	out, err := exec.Command(sa, args...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestSystemdAnalyzeCatchesMistakes(t *testing.T) {
	root := stagingRoot(t)
	dir := filepath.Join(root, "etc/systemd/system")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(readFile(t, "systemd/voltage-cloud.service")), "Restart=on-failure", "Restart=on-failure\nRestartt=always", 1)
	if err := os.WriteFile(filepath.Join(dir, "voltage-cloud.service"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	sa := need(t, "systemd-analyze", "systemd")
	out, err := exec.Command(sa, "verify", "--man=no", "--root="+root, "/etc/systemd/system/voltage-cloud.service").CombinedOutput()
	if err == nil && len(bytes.TrimSpace(out)) == 0 {
		t.Errorf("systemd-analyze accepted a misspelled key and a missing binary")
	}
}
