package deploy_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// `go tool task release` cross-builds for linux/amd64, arm64 and armv7: static
// binaries of the right architecture with the version and commit embedded, and
// SHA256SUMS that match them. The test builds the two appliance binaries, which
// hold every service and nearly all of the code; voltctl is left to `task
// release` itself, as a cold cross-build of all three costs minutes of CI.
func TestReleaseCrossBuilds(t *testing.T) {
	root := repoRoot(t)
	dist := t.TempDir()
	binaries := []string{"voltage-edge", "voltage-cloud"}
	out := run(t, root, []string{"BINARIES=" + strings.Join(binaries, " ")}, "go", "tool", "task", "release", "DIST="+dist, "VERSION=v1.2.3-test", "COMMIT=0123456789ab")
	t.Log(out)

	wantMachine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "armv7": elf.EM_ARM}
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, filepath.Join(dist, "SHA256SUMS"))))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q", sc.Text())
		}
		sums[name] = sum
	}
	for _, bin := range binaries {
		for arch, machine := range wantMachine {
			name := bin + "-linux-" + arch
			path := filepath.Join(dist, name)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			h := sha256.Sum256(b)
			if sums[name] != hex.EncodeToString(h[:]) {
				t.Errorf("%s: SHA256SUMS has %q, the file hashes to %x", name, sums[name], h)
			}
			delete(sums, name)

			f, err := elf.Open(path)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if f.Machine != machine {
				t.Errorf("%s: ELF machine %v, want %v", name, f.Machine, machine)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Errorf("%s is dynamically linked", name)
				}
			}
			f.Close()

			info, err := buildinfo.ReadFile(path)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			settings := map[string]string{}
			for _, s := range info.Settings {
				settings[s.Key] = s.Value
			}
			if arch == "armv7" && (settings["GOARCH"] != "arm" || settings["GOARM"] != "7") {
				t.Errorf("%s: GOARCH=%s GOARM=%s, want arm and 7", name, settings["GOARCH"], settings["GOARM"])
			}
			if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
				t.Errorf("%s: CGO_ENABLED=%s -trimpath=%s", name, settings["CGO_ENABLED"], settings["-trimpath"])
			}
			// With -trimpath the build info leaves -ldflags out, so look for the
			// string that -X put into the binary.
			if !bytes.Contains(b, []byte("v1.2.3-test+0123456789ab")) {
				t.Errorf("%s: version v1.2.3-test+0123456789ab not embedded", name)
			}
		}
	}
	for name := range sums {
		t.Errorf("SHA256SUMS lists %s, which the release does not have", name)
	}
	// The binary for this machine runs.
	if err := exec.Command(filepath.Join(dist, "voltage-edge-linux-amd64"), "--help").Run(); err != nil {
		t.Errorf("voltage-edge-linux-amd64 --help: %v", err)
	}
}
