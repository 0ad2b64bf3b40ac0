// Package backoff is the retry pause of DESIGN §11: capped exponential backoff
// with jitter, so a dependency that comes back is not hit by every client at
// the same instant.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy is a capped exponential backoff: Min after the first failure, doubling
// up to Max.
type Policy struct {
	Min, Max time.Duration
}

// Delay is the pause before retry n (n ≥ 0 failures so far): Min·2ⁿ capped at
// Max, with jitter.
func (p Policy) Delay(n int) time.Duration {
	d := p.Min << min(max(n, 0), 32)
	if d > p.Max || d <= 0 {
		d = p.Max
	}
	return Jitter(d)
}

// Jitter is a random duration in [d/2, d]: half the pause is kept, so a retry
// never comes much sooner than the policy says, and the other half spreads
// retries out.
func Jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}
