package deploy_test

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
)

const dockerfile = "docker/Dockerfile"

// parseDockerfile parses the Dockerfile the way BuildKit does, with every lint
// rule on; a lint warning fails the test.
func parseDockerfile(t *testing.T) []instructions.Stage {
	stages, _ := parseDockerfileArgs(t)
	return stages
}

// parseDockerfileArgs also returns the ARGs before the first FROM.
func parseDockerfileArgs(t *testing.T) ([]instructions.Stage, []instructions.ArgCommand) {
	t.Helper()
	res, err := parser.Parse(bytes.NewReader(readFile(t, dockerfile)))
	if err != nil {
		t.Fatalf("parse %s: %v", dockerfile, err)
	}
	for _, w := range res.Warnings {
		t.Errorf("%s: parser warning: %s", dockerfile, w.Short)
	}
	var lint []string
	l := linter.New(&linter.Config{ExperimentalAll: true, Warn: func(rule, desc, url, msg string, loc []parser.Range) {
		lint = append(lint, fmt.Sprintf("%s (%s) at %v", msg, rule, loc))
	}})
	stages, metaArgs, err := instructions.Parse(res.AST, l)
	if err != nil {
		t.Fatalf("%s: %v", dockerfile, err)
	}
	for _, w := range lint {
		t.Errorf("%s: lint: %s", dockerfile, w)
	}
	return stages, metaArgs
}

// The image is built in two stages: Go builds a static binary, and the final stage
// is a minimal, non-root base with a health check, version labels and the binary
// as its entrypoint.
func TestDockerfileShape(t *testing.T) {
	stages, metaArgs := parseDockerfileArgs(t)
	// The build stage's Go is the workspace's.
	goLine := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(string(readFile(t, filepath.Join(repoRoot(t), "go.work"))))
	var goVersion string
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			if kv.Key == "GO_VERSION" && kv.Value != nil {
				goVersion = *kv.Value
			}
		}
	}
	if goLine == nil || goVersion != goLine[1] {
		t.Errorf("ARG GO_VERSION=%s, go.work says %v", goVersion, goLine)
	}
	if len(stages) != 2 {
		t.Fatalf("%d stages, want build and runtime", len(stages))
	}
	build, final := stages[0], stages[1]
	if build.Name != "build" || !strings.HasPrefix(build.BaseName, "golang:") {
		t.Errorf("first stage %q FROM %q, want build FROM golang:…", build.Name, build.BaseName)
	}
	if final.BaseName != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("runtime base %q, want the static distroless nonroot image", final.BaseName)
	}

	script := buildScript(t, build)
	for _, want := range []string{"CGO_ENABLED=0", "deploy/binaries.tsv", "-trimpath",
		"-X github.com/voltageems/voltage/shared/service.Version=${VERSION}+${COMMIT}", "./deploy/cmd/voltage-probe"} {
		if !strings.Contains(script, want) {
			t.Errorf("the build stage's RUN does not contain %q", want)
		}
	}

	var user, health, entry, copyFromBuild bool
	labels := map[string]bool{}
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			uid, _, _ := strings.Cut(c.User, ":")
			if uid == "0" || uid == "root" || uid == "" {
				t.Errorf("USER %q runs as root", c.User)
			}
			user = true
		case *instructions.HealthCheckCommand:
			test := c.Health.Test
			if len(test) < 2 || test[0] != "CMD" || test[1] != "/usr/local/bin/voltage-probe" {
				t.Errorf("HEALTHCHECK %v, want CMD /usr/local/bin/voltage-probe", test)
			}
			if c.Health.Interval == 0 || c.Health.Timeout == 0 || c.Health.Retries == 0 {
				t.Errorf("HEALTHCHECK without interval, timeout or retries: %+v", c.Health)
			}
			health = true
		case *instructions.EntrypointCommand:
			if c.PrependShell || len(c.CmdLine) != 1 || c.CmdLine[0] != "/usr/local/bin/voltage-entrypoint" {
				t.Errorf("ENTRYPOINT %v, want the exec form of /usr/local/bin/voltage-entrypoint", c.CmdLine)
			}
			entry = true
		case *instructions.CopyCommand:
			if c.From == "build" {
				copyFromBuild = true
			}
		case *instructions.LabelCommand:
			for _, kv := range c.Labels {
				labels[kv.Key] = true
			}
		}
	}
	if !user || !health || !entry || !copyFromBuild {
		t.Errorf("runtime stage: USER %v, HEALTHCHECK %v, ENTRYPOINT %v, COPY --from=build %v; want all", user, health, entry, copyFromBuild)
	}
	for _, l := range []string{"org.opencontainers.image.version", "org.opencontainers.image.revision", "org.opencontainers.image.title"} {
		if !labels[l] {
			t.Errorf("runtime stage has no label %s", l)
		}
	}
}

// buildScript is the shell script of the build stage's RUN.
func buildScript(t *testing.T, build instructions.Stage) string {
	t.Helper()
	for _, c := range build.Commands {
		if r, ok := c.(*instructions.RunCommand); ok && strings.Contains(strings.Join(r.CmdLine, " "), "binaries.tsv") {
			if !r.PrependShell || len(r.CmdLine) != 1 {
				t.Fatalf("the build RUN is not one shell script: %v", r.CmdLine)
			}
			return r.CmdLine[0]
		}
	}
	t.Fatal("the build stage has no RUN reading deploy/binaries.tsv")
	return ""
}

// runBuildScript runs the build stage's script as the image build would, in the
// repository root, with /out moved to a temporary folder.
func runBuildScript(t *testing.T, script, binary string, env ...string) (out string, err error) {
	t.Helper()
	dir := t.TempDir()
	script = strings.ReplaceAll(script, "/out/", dir+"/")
	script = strings.ReplaceAll(script, "/out ", dir+" ")
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), append([]string{"BINARY=" + binary, "VERSION=v9.8.7", "COMMIT=c0ffee",
		"TARGETOS=linux", "TARGETARCH=amd64", "TARGETVARIANT="}, env...)...)
	b, err := cmd.CombinedOutput()
	return dir + "\n" + string(b), err
}

// The build stage's script really builds: the binary with the version embedded,
// the probe, the entrypoint link and the probe URL of binaries.tsv.
func TestDockerfileBuildScriptBuilds(t *testing.T) {
	script := buildScript(t, parseDockerfile(t)[0])
	bins := binaryByName(t)
	res, err := runBuildScript(t, script, "voltage-cloud")
	dir, log, _ := strings.Cut(res, "\n")
	if err != nil {
		t.Fatalf("build script for voltage-cloud: %v\n%s", err, log)
	}
	bin := filepath.Join(dir, "usr/local/bin/voltage-cloud")
	b := readFile(t, bin)
	if !bytes.Contains(b, []byte("v9.8.7+c0ffee")) {
		t.Errorf("%s does not contain the version v9.8.7+c0ffee", bin)
	}
	if bytes.Contains(b, []byte(repoRoot(t))) {
		t.Errorf("%s contains the build folder %s (no -trimpath?)", bin, repoRoot(t))
	}
	if fi, err := os.Stat(filepath.Join(dir, "usr/local/bin/voltage-probe")); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("voltage-probe missing or not executable: %v", err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "usr/local/bin/voltage-entrypoint")); err != nil || target != "voltage-cloud" {
		t.Errorf("voltage-entrypoint → %q (%v), want voltage-cloud", target, err)
	}
	if got := strings.TrimSpace(string(readFile(t, filepath.Join(dir, "etc/voltage-probe-url")))); got != bins["voltage-cloud"].Probe {
		t.Errorf("probe URL %q, want %q", got, bins["voltage-cloud"].Probe)
	}
	// A static binary: no program interpreter.
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked", bin)
		}
	}
}

// For every binary of the table the script picks the right package and probe (a
// recording `go` stands in for the compiler here; the real build of each package
// is TestBinariesTableNamesMainPackages and the release test), and it refuses a
// binary that is not in the table or has no server.
func TestDockerfileBuildScriptPicksEachBinary(t *testing.T) {
	script := buildScript(t, parseDockerfile(t)[0])
	fake := t.TempDir()
	record := filepath.Join(fake, "calls")
	goScript := `#!/bin/sh
echo "$*" >> ` + record + `
while [ $# -gt 0 ]; do if [ "$1" = -o ]; then : > "$2"; fi; shift; done
`
	if err := os.WriteFile(filepath.Join(fake, "go"), []byte(goScript), 0o755); err != nil {
		t.Fatal(err)
	}
	path := "PATH=" + fake + ":" + os.Getenv("PATH")
	for _, b := range binaries(t) {
		os.Remove(record)
		res, err := runBuildScript(t, script, b.Name, path)
		if b.Probe == "" {
			if err == nil {
				t.Errorf("%s has no probe, yet the script built an image for it", b.Name)
			}
			continue
		}
		dir, log, _ := strings.Cut(res, "\n")
		if err != nil {
			t.Errorf("%s: %v\n%s", b.Name, err, log)
			continue
		}
		calls := string(readFile(t, record))
		if !strings.Contains(calls, "-o "+dir+"/usr/local/bin/"+b.Name+" "+b.Package+"\n") {
			t.Errorf("%s: the script did not build %s into /usr/local/bin:\n%s", b.Name, b.Package, calls)
		}
		if got := strings.TrimSpace(string(readFile(t, filepath.Join(dir, "etc/voltage-probe-url")))); got != b.Probe {
			t.Errorf("%s: probe URL %q, want %q", b.Name, got, b.Probe)
		}
	}
	if _, err := runBuildScript(t, script, "no-such-binary", path); err == nil {
		t.Error("the script accepted BINARY=no-such-binary")
	}
}

// The build context leaves out nothing a binary needs: no Go file or embedded file
// of any deployed binary matches Dockerfile.dockerignore.
func TestDockerignoreKeepsSources(t *testing.T) {
	root := repoRoot(t)
	var patterns []string
	for _, l := range strings.Split(string(readFile(t, "docker/Dockerfile.dockerignore")), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatalf("Dockerfile.dockerignore: %v", err)
	}
	args := []string{"list", "-deps", "-f", `{{if .Module}}{{if .Module.Main}}{{.Dir}}|{{join .GoFiles ","}},{{join .EmbedFiles ","}}{{end}}{{end}}`, "./deploy/cmd/voltage-probe"}
	for _, b := range binaries(t) {
		args = append(args, b.Package)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(run(t, root, nil, "go", args...)), "\n") {
		dir, files, _ := strings.Cut(line, "|")
		for _, f := range strings.Split(files, ",") {
			if f == "" {
				continue
			}
			rel, err := filepath.Rel(root, filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			checked++
			if ok, _ := pm.MatchesOrParentMatches(filepath.ToSlash(rel)); ok {
				t.Errorf("%s is needed by a build but Dockerfile.dockerignore leaves it out", rel)
			}
		}
	}
	if checked < 100 {
		t.Fatalf("only %d source files checked; go list found too little", checked)
	}
	for _, p := range []string{".git/config", "bin/comsrv", "web/node_modules/x/index.js"} {
		if ok, _ := pm.MatchesOrParentMatches(p); !ok {
			t.Errorf("Dockerfile.dockerignore lets %s into the context", p)
		}
	}
}
