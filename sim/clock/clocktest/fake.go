// Package clocktest provides a fake Clock that moves only when a test advances it.
package clocktest

import (
	"sort"
	"sync"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock"
)

// Epoch is the default start time of a Fake: a fixed instant so runs are repeatable.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Fake is a Clock whose time changes only through Advance and Set. Timers fire, in deadline order, when the
// time reaches them. It is safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	waiters []chan struct{}
}

var _ clock.Clock = (*Fake)(nil)

// New returns a Fake set to start (Epoch when start is zero).
func New(start time.Time) *Fake {
	if start.IsZero() {
		start = Epoch
	}
	return &Fake{now: start}
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer returns a timer that fires once the fake time reaches now+d.
func (f *Fake) NewTimer(d time.Duration) clock.Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{f: f, at: f.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- f.now
		t.fired = true
		return t
	}
	f.timers = append(f.timers, t)
	for _, w := range f.waiters {
		close(w)
	}
	f.waiters = nil
	return t
}

// Advance moves the time forward by d, firing every timer whose deadline is reached, in order.
func (f *Fake) Advance(d time.Duration) { f.Set(f.Now().Add(d)) }

// Set moves the time to t (never backwards), firing due timers in deadline order.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t.Before(f.now) {
		return
	}
	sort.SliceStable(f.timers, func(i, j int) bool { return f.timers[i].at.Before(f.timers[j].at) })
	keep := f.timers[:0]
	for _, tm := range f.timers {
		if !tm.at.After(t) {
			tm.fired = true
			tm.c <- tm.at
			continue
		}
		keep = append(keep, tm)
	}
	f.timers = keep
	f.now = t
}

// Timers returns how many timers are waiting to fire.
func (f *Fake) Timers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// BlockUntil returns a channel closed once at least n timers are waiting, so a test can advance the clock
// only after the code under test has started waiting on it.
func (f *Fake) BlockUntil(n int) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		for {
			f.mu.Lock()
			if len(f.timers) >= n {
				f.mu.Unlock()
				close(done)
				return
			}
			w := make(chan struct{})
			f.waiters = append(f.waiters, w)
			f.mu.Unlock()
			<-w
		}
	}()
	return done
}

type fakeTimer struct {
	f     *Fake
	at    time.Time
	c     chan time.Time
	fired bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	if t.fired {
		return false
	}
	for i, tm := range t.f.timers {
		if tm == t {
			t.f.timers = append(t.f.timers[:i], t.f.timers[i+1:]...)
			return true
		}
	}
	return false
}
