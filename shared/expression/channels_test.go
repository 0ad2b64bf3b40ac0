package expression

import (
	"errors"
	"strings"
	"testing"

	"github.com/voltageems/voltage/shared/point"
)

// Channel point references compile to inputs that ParseChannelRef reads back,
// next to instance measurements.
func TestChannelReferences(t *testing.T) {
	r := &ChannelResolver{Base: testSite()}
	p, err := Compile("ch2.T101 > 20 and pv1.active_power < ch10.A1", r)
	if err != nil {
		t.Fatal(err)
	}
	in := p.Inputs()
	if len(in) != 3 {
		t.Fatalf("inputs %v", in)
	}
	ch, typ, id, ok := ParseChannelRef(in[0])
	if !ok || ch != 2 || typ != point.Telemetry || id != 101 {
		t.Fatalf("first input %v → %d %v %d %v", in[0], ch, typ, id, ok)
	}
	if _, _, _, ok := ParseChannelRef(in[1]); ok {
		t.Fatalf("%v read as a channel point", in[1])
	}
	if got := ChannelRef(10, point.Adjustment, 1); got != in[2] {
		t.Fatalf("ChannelRef = %v, want %v", got, in[2])
	}
	v, err := p.Eval(0, []float64{25, 5, 10})
	if err != nil || v != 1 {
		t.Fatalf("eval = %v, %v", v, err)
	}
}

func TestChannelReferenceErrors(t *testing.T) {
	check := func(ch uint32, typ point.Type, id point.ID) error {
		if ch == 2 && typ == point.Telemetry && id == 1 {
			return nil
		}
		return errors.New("no such point")
	}
	known := func(inst string) bool { return inst == "ch7" }
	r := &ChannelResolver{Base: testSite(), Check: check, Known: known}
	for src, want := range map[string]string{
		"ch2.X1 > 0":      "type letter",
		"ch2.T2 > 0":      "no such point",
		"ch7.T1 > 0":      "both an instance",
		"ch2.T1 + nope.x": "no such instance",
	} {
		_, err := Compile(src, r)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", src, err, want)
		}
	}
	if _, err := Compile("ch2.T1 * 2", r); err != nil {
		t.Fatal(err)
	}
}
