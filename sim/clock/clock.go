// Package clock is the time source of the simulated world. Nothing in sim/, harness/ or rigs/ reads the wall
// clock directly: a Clock is passed in, and a nil Clock means the real one (see Or).
//
// Three clocks live here: Real, the wall clock; Scaled, which runs policy time faster than the wall clock so a
// ten-minute bake takes a second at scale 600; and World, a deterministic scheduler whose time is virtual: it
// runs the goroutines of an in-process world one at a time, in an order drawn from a seed, and moves time to the
// next timer only when nothing can run without it. The fake used by unit tests is in package clocktest.
//
// Code that runs in a World blocks through the primitives of this package — Wait, Sleep, Signal, Queue, Group,
// Mutex, AfterFunc, Go — which work on every clock: through the World's scheduler on its clock, as plain
// channels on the others.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time and makes timers. Implementations are safe for concurrent use.
type Clock interface {
	Now() time.Time
	// NewTimer fires once after d of this clock's time.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer made by a Clock.
type Timer interface {
	// C delivers the clock's time when the timer fires.
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it stopped it.
	Stop() bool
}

// Or returns c, or the real clock when c is nil.
func Or(c Clock) Clock {
	if c == nil {
		return Real{}
	}
	return c
}

// Real is the wall clock.
type Real struct{}

var _ Clock = Real{}

// Now returns the wall-clock time.
func (Real) Now() time.Time { return time.Now() }

// NewTimer returns a wall-clock timer.
func (Real) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }

// Scaled runs Scale times faster than its base clock from the moment it is made: after one real second a
// Scaled clock at 600 has advanced ten minutes. Timers are shortened by the same factor. A scale of 1 or less
// is the base clock unchanged.
type Scaled struct {
	base   Clock
	scale  float64
	origin time.Time // base time at creation, and also the scaled clock's time at creation
}

// NewScaled returns a clock running scale times faster than base (nil means the real clock).
func NewScaled(base Clock, scale float64) Clock {
	base = Or(base)
	if scale <= 1 {
		return base
	}
	return &Scaled{base: base, scale: scale, origin: base.Now()}
}

// Now returns the scaled time.
func (s *Scaled) Now() time.Time {
	elapsed := s.base.Now().Sub(s.origin)
	return s.origin.Add(time.Duration(float64(elapsed) * s.scale))
}

// NewTimer returns a timer that fires after d of scaled time and delivers scaled time.
func (s *Scaled) NewTimer(d time.Duration) Timer {
	t := &scaledTimer{c: make(chan time.Time, 1)}
	real := time.Duration(float64(d) / s.scale)
	t.inner = s.base.NewTimer(real)
	t.stop = make(chan struct{})
	go func() {
		select {
		case <-t.inner.C():
			t.c <- s.Now()
		case <-t.stop:
		}
	}()
	return t
}

// Scale returns the factor by which this clock runs faster than its base.
func (s *Scaled) Scale() float64 { return s.scale }

type scaledTimer struct {
	inner Timer
	c     chan time.Time
	stop  chan struct{}
	once  sync.Once
}

func (t *scaledTimer) C() <-chan time.Time { return t.c }
func (t *scaledTimer) Stop() bool {
	stopped := t.inner.Stop()
	t.once.Do(func() { close(t.stop) })
	return stopped
}
