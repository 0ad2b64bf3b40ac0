package expression

import (
	"testing"
)

// FuzzCompile compiles arbitrary expressions and runs what compiles: neither may
// panic, and a compile error must carry a position inside the source.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		"pv1.active_power + pv2.active_power",
		`sum("product:pv_inverter", "active_power") / meter.active_power`,
		"integrate(pv1.active_power) + moving_avg(pv1.dc_voltage, 60) + rate(meter.active_power) + deadband(pv1.active_power, 0.5)",
		"pv1.active_power > 10 ? clamp(pv1.active_power, 0, pv1.rated_power) : round(pv1.active_power, 2)",
		"if station.islanded { 0 } else { 1 % 0 }",
		"let x = pv1.active_power; x * x",
		"[1, 2][pv1.active_power]",
		`pv1["active_power"] ?? 3`,
		"min()",
		"pv1.model + 'x'",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		p, err := Compile(src, testSite())
		if err != nil {
			e, ok := err.(*Error)
			if !ok || e.Line < 1 || e.Column < 1 {
				t.Fatalf("error %v (%T) without a position", err, err)
			}
			return
		}
		in := make([]float64, len(p.Inputs()))
		for i := range in {
			in[i] = float64(i) - 1
		}
		_, _ = p.Eval(1000, in)
		_, _ = p.Eval(2000, in)
		if st, err := p.State(); err == nil && st != nil {
			if err := p.Restore(st); err != nil {
				t.Fatalf("state does not restore into its own program: %v", err)
			}
		}
	})
}
