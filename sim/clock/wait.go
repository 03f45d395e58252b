package clock

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"time"
)

// The primitives in this file block and wake goroutines the same way on every clock. On a World's clock they
// go through its scheduler, with exact wake-up accounting; on any other clock they are plain channels and
// selects, so code written with them behaves outside a world as it always did.

// Forever is the duration of a Wait with no time limit.
const Forever = time.Duration(math.MaxInt64)

// Expired is what Wait returns when its time limit passed before any event.
const Expired = -1

// Event is something Wait waits for: a *Signal, a *Queue, or a channel that is closed (Done).
type Event interface {
	// describe names the event in a world's report.
	describe() string
	// world is the World the event belongs to; nil for one that belongs to none.
	world() *World

	// In a world, with its lock held: whether the event is ready, consuming it (a Signal's pending
	// notification), and registering a waiter.
	readyLocked() bool
	takeLocked()
	addWaiterLocked(a *actor)
	removeWaiterLocked(a *actor)

	// Outside a world: take the event if it is ready; the channel whose receive says it may be; and, after
	// that receive, whether it is.
	tryTake() bool
	channel() <-chan struct{}
	received() bool
}

// WorldOf returns the World c is the clock of — c itself, or the World of a clock that wraps one and says so
// with a World method — or nil.
func WorldOf(c Clock) *World {
	switch v := c.(type) {
	case *World:
		return v
	case interface{ World() *World }:
		return v.World()
	}
	return nil
}

// Wait blocks until one of evs is ready, until d of c's time has passed (Forever: no limit), or until ctx ends
// (nil: never). It returns the index of the event — the lowest one, in a world, when several are ready — or
// Expired, or -1 and ctx's error. A Signal it returns is consumed. On a World's clock, a goroutine that is not
// one of its actors waits as an outside caller (see World.Do); the wait fails with the world's error when the
// world deadlocks or stalls.
func Wait(ctx context.Context, c Clock, d time.Duration, evs ...Event) (int, error) {
	if w := WorldOf(c); w != nil {
		return w.wait(ctx, d, evs)
	}
	return waitChannels(ctx, Or(c), d, evs)
}

// Sleep blocks for d of c's time or until done is closed; it reports whether the full time passed.
func Sleep(c Clock, d time.Duration, done <-chan struct{}) bool {
	if d <= 0 {
		return true
	}
	i, err := Wait(nil, c, d, Done(done))
	return err == nil && i == Expired
}

// Yield lets the other actors ready at this instant run first, in the world's order: the caller goes back into
// the ready set, from which the world draws the next actor. Outside a world it is runtime.Gosched.
func Yield(c Clock) {
	if w := WorldOf(c); w != nil {
		w.yield()
		return
	}
	runtime.Gosched()
}

// Go runs f on a new goroutine: an actor of the World c belongs to, or a plain goroutine. The name says what it
// is in the world's reports.
func Go(c Clock, name string, f func()) {
	if w := WorldOf(c); w != nil {
		w.Go(name, f)
		return
	}
	go f()
}

// Do runs f as an actor of the World c belongs to (see World.Do), or simply calls it. It fails, without
// calling f, when the world is closed or stalled.
func Do(c Clock, f func()) error {
	if w := WorldOf(c); w != nil {
		return w.Do(f)
	}
	f()
	return nil
}

// AfterFunc calls f once d of c's time has passed, on a goroutine of its own (an actor, in a world). The
// returned stop cancels the call; it reports whether it did. A clock with a Base() Clock method says its timers
// are its base's (it reads the time differently, e.g. skewed): the call is the base's.
func AfterFunc(c Clock, d time.Duration, f func()) (stop func() bool) {
	if w := WorldOf(c); w != nil {
		return w.afterFunc(d, f)
	}
	if b, ok := c.(interface{ Base() Clock }); ok {
		// Its timers are its base's: the call waits on the base, without a goroutine of its own where the base
		// needs none (a robot's skewed clock over the real one).
		return AfterFunc(b.Base(), d, f)
	}
	if _, real := Or(c).(Real); real {
		return time.AfterFunc(d, f).Stop
	}
	t := c.NewTimer(d)
	stopped := make(chan struct{})
	var once sync.Once
	go func() {
		select {
		case <-t.C():
			f()
		case <-stopped:
		}
	}()
	return func() bool {
		ok := t.Stop()
		once.Do(func() { close(stopped) })
		return ok
	}
}

func (w *World) afterFunc(d time.Duration, f func()) func() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.addTimerLocked(w.now.Add(max(d, 0)), func() { w.readyLocked(w.spawnLocked("after func", f)) })
	return func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.removeTimerLocked(e)
	}
}

func (w *World) yield() {
	w.mu.Lock()
	defer w.mu.Unlock()
	a := w.selfLocked()
	if a == nil {
		return
	}
	w.unstickLocked(a)
	w.readyLocked(a)
	w.switchLocked(a)
}

// wait is Wait in the world.
func (w *World) wait(ctx context.Context, d time.Duration, evs []Event) (int, error) {
	for _, ev := range evs {
		if ew := ev.world(); ew != nil && ew != w {
			panic("clock: Wait on an event of another world")
		}
	}
	w.mu.Lock()
	a := w.selfLocked()
	w.mu.Unlock()
	if a == nil {
		i, err := Expired, error(nil)
		if derr := w.Do(func() { i, err = w.wait(ctx, d, evs) }); derr != nil {
			return -1, derr
		}
		return i, err
	}
	var done <-chan struct{}
	var node *ctxNode
	if ctx != nil {
		done = ctx.Done()
		node = nodeOf(ctx, done)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	limited := d != Forever
	var deadline time.Time
	if limited {
		deadline = w.now.Add(max(d, 0))
	}
	for {
		w.unstickLocked(a)
		if w.stalled != nil {
			return -1, w.stalled
		}
		if done != nil && isClosed(done) {
			return -1, ctx.Err()
		}
		for i, ev := range evs {
			if ev.readyLocked() {
				ev.takeLocked()
				return i, nil
			}
		}
		if limited && !w.now.Before(deadline) {
			return Expired, nil
		}
		a.events = evs
		for _, ev := range evs {
			ev.addWaiterLocked(a)
		}
		switch {
		case node != nil && !node.ended:
			node.waiting.add(a) // its cancel wakes a
		case done != nil:
			a.dones = append(a.dones, done) // found by the scan
		}
		a.ctxDone = done
		if len(a.dones) > 0 {
			w.scanned = insertByID(w.scanned, a)
		}
		if limited {
			a.deadline = w.addTimerLocked(deadline, func() { w.wakeLocked(a) })
		}
		w.block(a)
		for _, ev := range evs {
			ev.removeWaiterLocked(a)
		}
		if node != nil {
			node.waiting.remove(a)
		}
		if len(a.dones) > 0 {
			w.scanned = removeByID(w.scanned, a)
		}
		a.events, a.dones, a.ctxDone = nil, nil, nil
		if a.deadline != nil {
			w.removeTimerLocked(a.deadline)
			a.deadline = nil
		}
		if err := a.fail; err != nil {
			a.fail = nil
			return -1, err
		}
	}
}

func insertByID(s []*actor, a *actor) []*actor {
	i, found := slices.BinarySearchFunc(s, a.id, func(x *actor, id uint64) int { return cmpID(x.id, id) })
	if found {
		return s
	}
	return slices.Insert(s, i, a)
}

func removeByID(s []*actor, a *actor) []*actor {
	i, found := slices.BinarySearchFunc(s, a.id, func(x *actor, id uint64) int { return cmpID(x.id, id) })
	if !found {
		return s
	}
	return slices.Delete(s, i, i+1)
}

// waitChannels is Wait on channels, outside a world.
func waitChannels(ctx context.Context, c Clock, d time.Duration, evs []Event) (int, error) {
	for i, ev := range evs {
		if ev.world() != nil {
			panic("clock: Wait on an event of a world with a clock that is not the world's")
		}
		if ev.tryTake() {
			return i, nil
		}
	}
	var done <-chan struct{}
	if ctx != nil {
		if err := ctx.Err(); err != nil {
			return -1, err
		}
		done = ctx.Done()
	}
	var fire <-chan time.Time
	if d != Forever {
		if d <= 0 {
			return Expired, nil
		}
		t := c.NewTimer(d)
		defer t.Stop()
		fire = t.C()
	}
	for {
		var i int
		switch len(evs) {
		case 0, 1, 2, 3:
			var ch [3]<-chan struct{}
			for j, ev := range evs {
				ch[j] = ev.channel()
			}
			select {
			case <-done:
				return -1, ctx.Err()
			case <-fire:
				return Expired, nil
			case <-ch[0]:
				i = 0
			case <-ch[1]:
				i = 1
			case <-ch[2]:
				i = 2
			}
		default:
			cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(done)},
				{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(fire)}}
			for _, ev := range evs {
				cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ev.channel())})
			}
			chosen, _, _ := reflect.Select(cases)
			switch chosen {
			case 0:
				return -1, ctx.Err()
			case 1:
				return Expired, nil
			}
			i = chosen - 2
		}
		// A receive from the channel only says the event may be ready (a Queue's token can be stale).
		if evs[i].received() {
			return i, nil
		}
	}
}

// Done is the event of a channel being closed; ctx.Done() is one. The channel must only ever be closed, never
// sent on. In a world, a Done channel closed by an actor wakes its waiters at the next quiescent point.
func Done(ch <-chan struct{}) Event { return doneEvent{ch} }

type doneEvent struct{ ch <-chan struct{} }

func (e doneEvent) describe() string            { return "a done channel" }
func (e doneEvent) world() *World               { return nil }
func (e doneEvent) readyLocked() bool           { return e.ch != nil && isClosed(e.ch) }
func (e doneEvent) takeLocked()                 {}
func (e doneEvent) removeWaiterLocked(a *actor) {}
func (e doneEvent) tryTake() bool               { return e.ch != nil && isClosed(e.ch) }
func (e doneEvent) channel() <-chan struct{}    { return e.ch }
func (e doneEvent) received() bool              { return true }
func (e doneEvent) addWaiterLocked(a *actor) {
	if e.ch != nil {
		a.dones = append(a.dones, e.ch)
	}
}

// waiters is the set of actors waiting on one event.
type waiters []*actor

func (ws *waiters) add(a *actor) { *ws = append(*ws, a) }

func (ws *waiters) remove(a *actor) {
	if i := slices.Index(*ws, a); i >= 0 {
		*ws = slices.Delete(*ws, i, i+1)
	}
}

func (ws waiters) wake(w *World) {
	for _, a := range ws {
		w.wakeLocked(a)
	}
}

// Signal is a coalescing wake-up: Notify leaves one notification pending, however often it is called, until a
// Wait that returns the Signal takes it. It is meant for one waiting goroutine (a loop's "something changed").
type Signal struct {
	w       *World
	ch      chan struct{} // outside a world
	pending bool          // in a world (guarded by the world's lock)
	waiting waiters
}

var _ Event = (*Signal)(nil)

// NewSignal returns a Signal with nothing pending, for c's goroutines.
func NewSignal(c Clock) *Signal {
	if w := WorldOf(c); w != nil {
		return &Signal{w: w}
	}
	return &Signal{ch: make(chan struct{}, 1)}
}

// Notify leaves a notification pending and wakes the waiter.
func (s *Signal) Notify() {
	if s.w == nil {
		select {
		case s.ch <- struct{}{}:
		default:
		}
		return
	}
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	s.pending = true
	s.waiting.wake(s.w)
	s.w.kickLocked()
}

func (s *Signal) describe() string            { return "a signal" }
func (s *Signal) world() *World               { return s.w }
func (s *Signal) readyLocked() bool           { return s.pending }
func (s *Signal) takeLocked()                 { s.pending = false }
func (s *Signal) addWaiterLocked(a *actor)    { s.waiting.add(a) }
func (s *Signal) removeWaiterLocked(a *actor) { s.waiting.remove(a) }
func (s *Signal) channel() <-chan struct{}    { return s.ch }
func (s *Signal) received() bool              { return true }
func (s *Signal) tryTake() bool {
	select {
	case <-s.ch:
		return true
	default:
		return false
	}
}

// ErrQueueClosed is what Next returns once a closed Queue is empty.
var ErrQueueClosed = errors.New("queue closed")

// Queue is a FIFO of values between goroutines: Push never blocks (a full queue drops the value), Next waits for
// the next value. As an Event it is ready when it holds a value or is closed.
type Queue[T any] struct {
	w        *World
	capacity int
	mu       sync.Mutex    // outside a world; in one, the world's lock guards the fields below
	ch       chan struct{} // outside a world: a token says the queue may be ready
	items    []T
	closed   bool
	waiting  waiters
}

// NewQueue returns an empty queue for c's goroutines holding at most capacity values (≤ 0: no limit).
func NewQueue[T any](c Clock, capacity int) *Queue[T] {
	if w := WorldOf(c); w != nil {
		return &Queue[T]{w: w, capacity: capacity}
	}
	return &Queue[T]{capacity: capacity, ch: make(chan struct{}, 1)}
}

func (q *Queue[T]) lock() {
	if q.w != nil {
		q.w.mu.Lock()
	} else {
		q.mu.Lock()
	}
}

func (q *Queue[T]) unlock() {
	if q.w != nil {
		q.w.mu.Unlock()
	} else {
		q.mu.Unlock()
	}
}

// changedLocked wakes whoever waits for the queue.
func (q *Queue[T]) changedLocked() {
	if q.w != nil {
		q.waiting.wake(q.w)
		q.w.kickLocked()
		return
	}
	if !q.closed {
		select {
		case q.ch <- struct{}{}:
		default:
		}
	}
}

// Push appends v; it reports false, dropping v, when the queue is full or closed.
func (q *Queue[T]) Push(v T) bool {
	q.lock()
	defer q.unlock()
	if q.closed || (q.capacity > 0 && len(q.items) >= q.capacity) {
		return false
	}
	q.items = append(q.items, v)
	q.changedLocked()
	return true
}

// Close closes the queue: Push drops from now on, and Next fails once the values already queued are taken.
func (q *Queue[T]) Close() {
	q.lock()
	defer q.unlock()
	if q.closed {
		return
	}
	q.closed = true
	q.changedLocked()
	if q.w == nil {
		close(q.ch)
	}
}

// Len returns how many values are queued.
func (q *Queue[T]) Len() int {
	q.lock()
	defer q.unlock()
	return len(q.items)
}

// TryNext takes the next value if there is one.
func (q *Queue[T]) TryNext() (T, bool) {
	q.lock()
	defer q.unlock()
	return q.popLocked()
}

func (q *Queue[T]) popLocked() (T, bool) {
	var zero T
	if len(q.items) == 0 {
		return zero, false
	}
	v := q.items[0]
	q.items[0] = zero
	q.items = q.items[1:]
	return v, true
}

// Next waits for the next value and takes it. It fails with ErrQueueClosed once the queue is closed and empty,
// or with ctx's error (ctx nil: it waits as long as it takes).
func (q *Queue[T]) Next(ctx context.Context) (T, error) {
	c := Clock(Real{})
	if q.w != nil {
		c = q.w
	}
	for {
		q.lock()
		v, ok := q.popLocked()
		closed := q.closed
		q.unlock()
		if ok {
			return v, nil
		}
		if closed {
			return v, ErrQueueClosed
		}
		if _, err := Wait(ctx, c, Forever, q); err != nil {
			return v, err
		}
	}
}

func (q *Queue[T]) describe() string {
	return fmt.Sprintf("a queue (%d values, closed %v)", len(q.items), q.closed)
}
func (q *Queue[T]) world() *World               { return q.w }
func (q *Queue[T]) readyLocked() bool           { return len(q.items) > 0 || q.closed }
func (q *Queue[T]) takeLocked()                 {}
func (q *Queue[T]) addWaiterLocked(a *actor)    { q.waiting.add(a) }
func (q *Queue[T]) removeWaiterLocked(a *actor) { q.waiting.remove(a) }
func (q *Queue[T]) channel() <-chan struct{}    { return q.ch }
func (q *Queue[T]) tryTake() bool               { return q.received() }
func (q *Queue[T]) received() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) > 0 || q.closed
}
