package hissrv_test

import (
	"testing"

	"github.com/voltageems/voltage/services/hissrv"
)

// FuzzParseFile feeds arbitrary YAML to the hissrv.yaml loader: it must never
// panic, and what it accepts must hold the invariants the service relies on.
func FuzzParseFile(f *testing.F) {
	for _, s := range []string{
		"", "batch_size: 10\n", "spool: {threshold: 0.5, max_bytes: 1GiB, max_age: 7d}\n",
		"embedded:\n  tiers:\n    - {name: 1m, width: 1m}\n    - {name: 1h, width: 1h, retention: {age: 5y, size: 1TB}}\n",
		"influx:\n  - {name: main, url: \"http://127.0.0.1:8086\", org: o, bucket: b, token: t}\n",
		"embedded: {enabled: false}\n", "a: &x [*x]\n", "- 1\n", "batch_size: 1\n---\nbatch_size: 2\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := hissrv.ParseFile("hissrv.yaml", src)
		if err != nil {
			return
		}
		if c.BatchSize < 1 || c.BatchSize > 100_000 || c.Spool.Threshold <= 0 || c.Spool.Threshold >= 1 ||
			c.Spool.MaxBytes.N() < 1<<20 || c.DataDir == "" || (!*c.Embedded.Enabled && len(c.Influx) == 0) {
			t.Fatalf("accepted an invalid file: %+v", c)
		}
		for i, tier := range c.Embedded.Tiers {
			if tier.Width.D() <= 0 || (i > 0 && tier.Width.D()%c.Embedded.Tiers[i-1].Width.D() != 0) {
				t.Fatalf("accepted tier %+v", tier)
			}
		}
	})
}
