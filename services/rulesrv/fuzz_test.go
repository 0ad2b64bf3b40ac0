package rulesrv_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/voltageems/voltage/services/rulesrv"
)

// FuzzParseRule: any bytes as a rule file give a rule or positioned errors,
// never a panic.
func FuzzParseRule(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("..", "..", "config", "rulesrv", "rules", "*.yaml"))
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("id: f\ncondition: meter.active_power > 1\nactions:\n  - event: {name: x}\n"))
	f.Add([]byte("id: f\nthreshold: {value: bat.soc, below: 20, band: 5}\nactions:\n  - command: {channel: 1, type: A, point: 1, value: \"min(pcs.active_power, 0)\"}\n"))
	f.Add([]byte("trigger: {cron: \"*/5 * * * * *\", on_change: [ch1.T1]}\n"))
	f.Add([]byte("{id: f, for: 1s, actions: [{webhook: {url: 'http://x'}}]}"))
	_, cfg, m := loadSite(f, nil)
	f.Fuzz(func(t *testing.T, src []byte) {
		r, errs := rulesrv.ParseRule("rulesrv/rules/f.yaml", src, cfg, m)
		if r == nil && len(errs) == 0 {
			t.Fatal("no rule and no error")
		}
		for _, e := range errs {
			if e.Pos.File == "" {
				t.Fatalf("error without a file: %v", e)
			}
		}
	})
}
