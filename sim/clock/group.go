package clock

import "sync"

// Group runs functions on goroutines of their own and waits for them, as a sync.WaitGroup does: on a World's
// clock they are actors and Wait blocks in the world.
type Group struct {
	w       *World
	wg      sync.WaitGroup // outside a world
	n       int            // in a world (guarded by its lock)
	waiting waiters
}

// NewGroup returns an empty group for c's goroutines.
func NewGroup(c Clock) *Group { return &Group{w: WorldOf(c)} }

// Go runs f on a goroutine of the group; name says what it is in a world's reports.
func (g *Group) Go(name string, f func()) {
	if g.w == nil {
		g.wg.Go(f)
		return
	}
	g.w.mu.Lock()
	g.n++
	g.w.mu.Unlock()
	g.w.Go(name, func() {
		defer g.done()
		f()
	})
}

func (g *Group) done() {
	g.w.mu.Lock()
	defer g.w.mu.Unlock()
	g.n--
	if g.n == 0 {
		g.waiting.wake(g.w)
	}
}

// Wait blocks until every function started with Go has returned.
func (g *Group) Wait() {
	if g.w == nil {
		g.wg.Wait()
		return
	}
	g.w.wait(nil, Forever, []Event{groupEvent{g}})
}

type groupEvent struct{ g *Group }

func (e groupEvent) describe() string            { return "a group of actors" }
func (e groupEvent) world() *World               { return e.g.w }
func (e groupEvent) readyLocked() bool           { return e.g.n == 0 }
func (e groupEvent) takeLocked()                 {}
func (e groupEvent) addWaiterLocked(a *actor)    { e.g.waiting.add(a) }
func (e groupEvent) removeWaiterLocked(a *actor) { e.g.waiting.remove(a) }
func (e groupEvent) tryTake() bool               { panic("clock: group event outside a world") }
func (e groupEvent) channel() <-chan struct{}    { panic("clock: group event outside a world") }
func (e groupEvent) received() bool              { panic("clock: group event outside a world") }

// Mutex is a mutual exclusion lock whose Lock, on a World's clock, waits in the world: an actor may hold it
// across a wait (a sync.Mutex held by a parked actor would block every other actor that wants it outside the
// world, and stall it). The zero value is a lock outside any world.
type Mutex struct {
	w       *World
	mu      sync.Mutex // outside a world
	held    bool       // in a world (guarded by its lock)
	waiting waiters
}

// NewMutex returns an unlocked mutex for c's goroutines.
func NewMutex(c Clock) *Mutex { return &Mutex{w: WorldOf(c)} }

// Lock locks m, waiting until it is unlocked.
func (m *Mutex) Lock() {
	if m.w == nil {
		m.mu.Lock()
		return
	}
	m.w.wait(nil, Forever, []Event{mutexEvent{m}})
}

// Unlock unlocks m.
func (m *Mutex) Unlock() {
	if m.w == nil {
		m.mu.Unlock()
		return
	}
	m.w.mu.Lock()
	defer m.w.mu.Unlock()
	if !m.held {
		panic("clock: unlock of an unlocked Mutex")
	}
	m.held = false
	m.waiting.wake(m.w)
	m.w.kickLocked()
}

type mutexEvent struct{ m *Mutex }

func (e mutexEvent) describe() string            { return "a mutex" }
func (e mutexEvent) world() *World               { return e.m.w }
func (e mutexEvent) readyLocked() bool           { return !e.m.held }
func (e mutexEvent) takeLocked()                 { e.m.held = true }
func (e mutexEvent) addWaiterLocked(a *actor)    { e.m.waiting.add(a) }
func (e mutexEvent) removeWaiterLocked(a *actor) { e.m.waiting.remove(a) }
func (e mutexEvent) tryTake() bool               { panic("clock: mutex event outside a world") }
func (e mutexEvent) channel() <-chan struct{}    { panic("clock: mutex event outside a world") }
func (e mutexEvent) received() bool              { panic("clock: mutex event outside a world") }
