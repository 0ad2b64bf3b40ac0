package config

import (
	"os"
	"strings"
	"testing"
)

// originalFixture is the original VoltageEMS comsrv.yaml, kept unchanged as test
// data (see testdata/original-voltageems/SOURCE.md).
const originalFixture = "testdata/original-voltageems/comsrv/comsrv.yaml"

// TestOriginalComsrvYAML loads the original VoltageEMS comsrv.yaml as channels.yaml.
// Its per-channel logging blocks and the di_do protocol are not part of our format;
// the loader must name each of them with its line, and accept the parameters, which
// are free at this level.
func TestOriginalComsrvYAML(t *testing.T) {
	src, err := os.ReadFile(originalFixture)
	if err != nil {
		t.Fatal(err)
	}
	dir := writeSite(t, map[string]string{
		"site.yaml":            "site: {id: imported}\n",
		"comsrv/channels.yaml": string(src),
	})
	lines := loadErrors(t, dir)
	want := []string{
		chans + `:15:5: unknown key "logging"`,
		chans + `:29:5: unknown key "logging"`,
		chans + `:47:5: unknown key "logging"`,
		chans + `:54:15: protocol: unknown protocol "di_do"`,
		chans + `:60:5: unknown key "logging"`,
		chans + `:76:5: unknown key "logging"`,
	}
	if len(lines) != len(want) {
		t.Errorf("got %d errors, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i := range min(len(lines), len(want)) {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("error %d:\n got  %s\n want %s…", i, lines[i], want[i])
		}
	}
}
