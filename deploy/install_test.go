package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// fakeRelease writes executables standing in for the release binaries (the
// script only copies them): each prints its version.
func fakeRelease(t *testing.T, version string, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\necho "+version+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func installScript(t *testing.T, args ...string) (string, error) {
	t.Helper()
	script, _ := filepath.Abs("systemd/install.sh")
	out, err := exec.Command("sh", append([]string{script}, args...)...).CombinedOutput()
	return string(out), err
}

func mustInstallScript(t *testing.T, args ...string) string {
	t.Helper()
	out, err := installScript(t, args...)
	if err != nil {
		t.Fatalf("install.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func passwdHas(t *testing.T, root, user string) (uid int, ok bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil {
		return 0, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, ":")
		if len(f) > 3 && f[0] == user {
			uid, _ := strconv.Atoi(f[2])
			return uid, true
		}
	}
	return 0, false
}

// install, upgrade and uninstall in a throwaway root: the user, binaries, units
// (verified by systemd-analyze), config seeded once and kept across upgrades and
// uninstalls, data kept unless --purge.
func TestInstallUpgradeUninstall(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("install.sh creates a user and chowns files: run this test as root (CI does)")
	}
	root := stagingRoot(t)
	r := func(p string) string { return filepath.Join(root, p) }
	v1 := fakeRelease(t, "v1", "voltage-edge-linux-arm64", "voltctl-linux-arm64", "voltage-cloud-linux-arm64", "comsrv-linux-arm64")

	out := mustInstallScript(t, "install", "--root", root, "--bin-dir", v1, "--arch", "arm64")
	t.Log(out)
	for _, b := range []string{"voltage-edge", "voltctl", "voltage-cloud", "comsrv"} {
		fi, err := os.Stat(r("usr/local/bin/" + b))
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Fatalf("%s not installed as 0755: %v", b, err)
		}
	}
	uid, ok := passwdHas(t, root, "voltage")
	if !ok {
		t.Fatal("no voltage user in the root's /etc/passwd")
	}
	if _, ok := passwdHas(t, "/", "voltage"); ok && root != "/" {
		t.Log("note: this machine has a voltage user of its own")
	}
	fi, err := os.Stat(r("var/lib/voltage"))
	if err != nil || int(fi.Sys().(*syscall.Stat_t).Uid) != uid || fi.Mode().Perm() != 0o750 {
		t.Fatalf("/var/lib/voltage not owned by voltage (uid %d) with 0750: %v %v", uid, err, fi.Mode())
	}
	if got, want := string(readFile(t, r("etc/voltage/site.yaml"))), string(readFile(t, filepath.Join(repoRoot(t), "config/site.yaml"))); got != want {
		t.Error("etc/voltage/site.yaml is not the seeded config")
	}
	if !exists(r("etc/voltage/voltage.env")) || !exists(r("etc/voltage/comsrv/channels.yaml")) {
		t.Error("voltage.env or the seeded comsrv config is missing")
	}
	verifyUnits(t, root, "voltage-edge.service", "voltage-cloud.service", "voltage@comsrv.service")

	// The operator edits the config and the site collects data.
	edited := string(readFile(t, r("etc/voltage/site.yaml"))) + "# edited on site\n"
	if err := os.WriteFile(r("etc/voltage/site.yaml"), []byte(edited), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r("var/lib/voltage/history.dat"), []byte("samples"), 0o640); err != nil {
		t.Fatal(err)
	}

	// Upgrade: new binaries, the old ones kept aside, config and data untouched.
	v2 := fakeRelease(t, "v2", "voltage-edge", "voltctl")
	mustInstallScript(t, "upgrade", "--root", root, "--bin-dir", v2)
	if got := string(readFile(t, r("usr/local/bin/voltage-edge"))); !strings.Contains(got, "v2") {
		t.Errorf("voltage-edge after upgrade: %q", got)
	}
	if got := string(readFile(t, r("usr/local/lib/voltage/previous/voltage-edge"))); !strings.Contains(got, "v1") {
		t.Errorf("the replaced voltage-edge is not kept in previous/: %q", got)
	}
	if string(readFile(t, r("etc/voltage/site.yaml"))) != edited {
		t.Error("upgrade changed the site config")
	}
	if string(readFile(t, r("var/lib/voltage/history.dat"))) != "samples" {
		t.Error("upgrade changed the data")
	}
	verifyUnits(t, root, "voltage-edge.service")

	// Uninstall: binaries and units go, config, data and the user stay.
	mustInstallScript(t, "uninstall", "--root", root)
	for _, p := range []string{"usr/local/bin/voltage-edge", "usr/local/bin/voltctl", "usr/local/bin/comsrv", "etc/systemd/system/voltage-edge.service",
		"etc/systemd/system/voltage@.service", "usr/local/lib/voltage"} {
		if exists(r(p)) {
			t.Errorf("uninstall left %s", p)
		}
	}
	if string(readFile(t, r("etc/voltage/site.yaml"))) != edited || string(readFile(t, r("var/lib/voltage/history.dat"))) != "samples" {
		t.Error("uninstall without --purge removed config or data")
	}
	if _, ok := passwdHas(t, root, "voltage"); !ok {
		t.Error("uninstall without --purge removed the user")
	}
	if !exists(r("lib/systemd/system")) || !exists(r("bin/kill")) {
		t.Error("uninstall removed files it did not install")
	}

	// Reinstall keeps the edited config; uninstall --purge removes everything.
	mustInstallScript(t, "install", "--root", root, "--bin-dir", v2)
	if string(readFile(t, r("etc/voltage/site.yaml"))) != edited {
		t.Error("reinstall overwrote the site config")
	}
	mustInstallScript(t, "uninstall", "--root", root, "--purge")
	for _, p := range []string{"etc/voltage", "var/lib/voltage", "usr/local/bin/voltage-edge"} {
		if exists(r(p)) {
			t.Errorf("uninstall --purge left %s", p)
		}
	}
	if _, ok := passwdHas(t, root, "voltage"); ok {
		t.Error("uninstall --purge kept the voltage user")
	}
}

func TestInstallScriptRefusesBadUse(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("run this test as root (CI does)")
	}
	root := t.TempDir()
	empty := t.TempDir()
	for name, args := range map[string][]string{
		"no action":              {},
		"unknown action":         {"reinstall", "--root", root},
		"unknown option":         {"install", "--root", root, "--force"},
		"upgrade before install": {"upgrade", "--root", root, "--bin-dir", empty},
		"uninstall nothing":      {"uninstall", "--root", root},
		"no binaries":            {"install", "--root", root, "--bin-dir", empty},
		"root is not a folder":   {"install", "--root", filepath.Join(root, "missing")},
		"option without value":   {"install", "--root"},
	} {
		if out, err := installScript(t, args...); err == nil {
			t.Errorf("%s: install.sh %v succeeded:\n%s", name, args, out)
		}
	}
	if exists(filepath.Join(root, "usr/local/bin")) && exists(filepath.Join(root, "usr/local/bin/voltage-edge")) {
		t.Error("a refused install left binaries")
	}
}
