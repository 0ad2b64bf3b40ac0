package rulesrv

import (
	"fmt"
	"sync"
	"time"
)

// DefaultConflictWindow is "the same moment" for two rules writing one point.
const DefaultConflictWindow = time.Second

// arbiter settles conflicts: of two rules writing the same point within the
// window, the higher priority wins and the lower one's write is skipped (and
// logged). Equal priorities both write; the later value stands.
type arbiter struct {
	mu     sync.Mutex
	window time.Duration
	claims map[string]claim
}

type claim struct {
	rule     string
	priority int
	at       time.Time
}

func newArbiter(window time.Duration) *arbiter {
	if window <= 0 {
		window = DefaultConflictWindow
	}
	return &arbiter{window: window, claims: map[string]claim{}}
}

// claim registers rule's write of target at now. It returns why the write must
// not happen ("" when it may). A dry run checks without registering.
func (a *arbiter) claim(target, rule string, priority int, now time.Time, dry bool) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.claims[target]; ok && c.rule != rule && now.Sub(c.at) < a.window && now.Sub(c.at) > -a.window && c.priority > priority {
		return fmt.Sprintf("conflict lost: rule %s (priority %d) writes %s at the same moment (priority %d here)", c.rule, c.priority, target, priority)
	}
	if !dry {
		a.claims[target] = claim{rule: rule, priority: priority, at: now}
		if len(a.claims) > 10_000 { // forget old claims; only the window matters
			for k, c := range a.claims {
				if now.Sub(c.at) > a.window {
					delete(a.claims, k)
				}
			}
		}
	}
	return ""
}
