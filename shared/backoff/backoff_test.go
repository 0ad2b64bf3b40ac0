package backoff

import (
	"testing"
	"time"
)

func TestDelayDoublesUpToMaxWithJitter(t *testing.T) {
	p := Policy{Min: 100 * time.Millisecond, Max: 2 * time.Second}
	for n, want := range []time.Duration{100, 200, 400, 800, 1600, 2000, 2000} {
		want *= time.Millisecond
		for range 200 {
			if d := p.Delay(n); d < want/2 || d > want {
				t.Fatalf("Delay(%d) = %v, want within [%v, %v]", n, d, want/2, want)
			}
		}
	}
	// Far past the cap, and nonsense counts: never more than Max, never negative.
	for _, n := range []int{40, 63, 64, 1 << 20, -1} {
		if d := p.Delay(n); d < 0 || d > p.Max {
			t.Errorf("Delay(%d) = %v, want within [0, %v]", n, d, p.Max)
		}
	}
}

func TestJitterSpreads(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 100 {
		d := Jitter(time.Second)
		if d < 500*time.Millisecond || d > time.Second {
			t.Fatalf("Jitter(1s) = %v, want within [500ms, 1s]", d)
		}
		seen[d] = true
	}
	if len(seen) < 50 {
		t.Errorf("100 jittered pauses took only %d values: not spread", len(seen))
	}
	if d := Jitter(0); d != 0 {
		t.Errorf("Jitter(0) = %v, want 0", d)
	}
}
