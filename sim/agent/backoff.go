package agent

import (
	"context"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock"
)

// backoff is capped exponential backoff with "equal jitter": attempt n waits a random time in [d/2, d] where
// d = min(max, base·2^(n-1)). The random source is seeded, so a run's seed fixes every delay.
type backoff struct {
	base, max time.Duration
	mu        sync.Mutex
	rnd       *rand.Rand
}

// newBackoff returns a backoff whose jitter comes from (seed, thing, stream): each stream is its own
// sequence, so goroutines drawing concurrently do not make each other's delays depend on scheduling.
func newBackoff(base, max time.Duration, seed uint64, thing string, stream uint64) *backoff {
	h := fnv.New64a()
	h.Write([]byte(thing))
	return &backoff{base: base, max: max, rnd: rand.New(rand.NewPCG(seed, h.Sum64()^stream))}
}

// delay returns the wait before attempt n (n ≥ 1).
func (b *backoff) delay(n int) time.Duration {
	d := b.base
	for i := 1; i < n && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	if d <= 1 {
		return d
	}
	b.mu.Lock()
	j := time.Duration(b.rnd.Int64N(int64(d/2) + 1))
	b.mu.Unlock()
	return d/2 + j
}

// withTimeout returns a context that ends when parent does or after d of c's time, whichever is first; its
// cause is then errRequestTimeout. d ≤ 0 means no timeout. The caller must call the returned cancel.
func withTimeout(parent context.Context, c clock.Clock, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return clock.WithCancel(c, parent)
	}
	ctx, cancel := clock.WithCancelCause(c, parent)
	stop := clock.AfterFunc(c, d, func() { cancel(errRequestTimeout) })
	return ctx, func() {
		stop()
		cancel(context.Canceled)
	}
}
