package fleet

import (
	"context"
	"fmt"
	"sync"
)

// Life is the lifecycle of one hosted device as every host keeps it: the current run of its agent (R is the
// host's record of one run — an OS process, a container's attached stream, an incarnation of goroutines), whether
// the device is frozen, and whether its fleet has closed it. A host's Device holds one and makes its Crasher and
// Freezer methods of Life's, so that every host guards its lifecycle with the same rules (CheckRestart,
// CheckFreeze) and the same locking.
//
//	           Started                  Freeze
//	(no run) ──────────▶ running ◀─────────────▶ frozen
//	   ▲                   │            Thaw        │
//	   └──── Stop, Ended ──┴────────────────────────┘
//	Restart: (no run) → running, refused once Closing has been called
//
// Lifecycle calls — Stop, Restart, SetFrozen, and the host's own (start, close) between Lock and Unlock — hold
// the lifecycle lock for their whole length, so they never interleave. The quick reads (Current, Running,
// Frozen) and the bookkeeping calls (Started, Ended) take only an inner lock, so they never wait on a lifecycle
// change: a run that ends by itself is recorded while a Stop waits for it.
type Life[R any] struct {
	name string
	op   sync.Locker

	mu     sync.Mutex
	run    *R // nil while crashed or closed
	frozen bool
	closed bool
}

// NewLife returns the lifecycle of the device name, with no run. op is the lifecycle lock; nil gives a
// sync.Mutex. A host whose lifecycle calls wait on a virtual-time world's clock passes a clock.Mutex, as a
// sync.Mutex held across such a wait would stall the world.
func NewLife[R any](name string, op sync.Locker) *Life[R] {
	if op == nil {
		op = new(sync.Mutex)
	}
	return &Life[R]{name: name, op: op}
}

// Lock takes the lifecycle lock, for a host's own lifecycle calls; Unlock releases it.
func (l *Life[R]) Lock()   { l.op.Lock() }
func (l *Life[R]) Unlock() { l.op.Unlock() }

// Current returns the run in progress, nil when the device does not run.
func (l *Life[R]) Current() *R {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.run
}

// Running reports whether a run is in progress (the Running of Crasher).
func (l *Life[R]) Running() bool { return l.Current() != nil }

// Frozen reports whether the run in progress is frozen; a device that does not run is not frozen.
func (l *Life[R]) Frozen() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.run != nil && l.frozen
}

// Started records r as the run in progress, not frozen. The caller holds the lifecycle lock.
func (l *Life[R]) Started(r *R) {
	l.mu.Lock()
	l.run, l.frozen = r, false
	l.mu.Unlock()
}

// Ended records that r is over, whether it was stopped or ended by itself: the device no longer runs, unless a
// later run has already started.
func (l *Life[R]) Ended(r *R) {
	l.mu.Lock()
	if l.run == r {
		l.run = nil
	}
	l.mu.Unlock()
}

// Stop is a lifecycle call that ends the run in progress (Crash; a host's Kill): under the lifecycle lock it
// calls stop with the run, or, when the device does not run, returns an error naming op and the device. stop
// reports the run's end through Ended, itself or by whatever watches the run.
func (l *Life[R]) Stop(op string, stop func(r *R) error) error {
	l.Lock()
	defer l.Unlock()
	r := l.Current()
	if r == nil {
		return fmt.Errorf("%s %s: not running", op, l.name)
	}
	return stop(r)
}

// Restart is Crasher.Restart: under the lifecycle lock, once CheckRestart allows it, it calls start, which
// starts a new run and records it through Started.
func (l *Life[R]) Restart(ctx context.Context, start func() error) error {
	l.Lock()
	defer l.Unlock()
	l.mu.Lock()
	running, closed := l.run != nil, l.closed
	l.mu.Unlock()
	if err := CheckRestart(ctx, l.name, running, closed); err != nil {
		return err
	}
	return start()
}

// SetFrozen is Freezer.Freeze (frozen true) and Freezer.Thaw (frozen false): under the lifecycle lock, once
// CheckFreeze allows it, it calls apply with the run in progress and, when apply succeeds, records the run as
// frozen or not. An error from apply comes back wrapped with the call's and the device's names.
func (l *Life[R]) SetFrozen(frozen bool, apply func(r *R) error) error {
	l.Lock()
	defer l.Unlock()
	l.mu.Lock()
	r, was := l.run, l.frozen
	l.mu.Unlock()
	if err := CheckFreeze(l.name, r != nil, was, frozen); err != nil {
		return err
	}
	if err := apply(r); err != nil {
		op := "thaw"
		if frozen {
			op = "freeze"
		}
		return fmt.Errorf("%s %s: %w", op, l.name, err)
	}
	l.mu.Lock()
	l.frozen = frozen
	l.mu.Unlock()
	return nil
}

// Closing records that the fleet closes the device, so that no Restart starts it again, and returns the run in
// progress (nil when none) and whether it is frozen, for the host to stop for good. The caller holds the
// lifecycle lock.
func (l *Life[R]) Closing() (r *R, frozen bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return l.run, l.frozen
}
