package clock

import (
	"container/heap"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// WorldEpoch is where a World's virtual time starts unless WorldOptions.Start says otherwise: a fixed instant,
// so timestamps repeat from run to run.
var WorldEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// DefaultWatchdog is how long, in wall-clock time, an actor may hold its turn before the watchdog reports the
// world stalled.
const DefaultWatchdog = 60 * time.Second

// WorldOptions configure a World. Zero fields take the defaults listed.
type WorldOptions struct {
	// Seed seeds the choice of the next actor among those ready at one instant.
	Seed uint64
	// Start is the virtual time at creation. Default WorldEpoch.
	Start time.Time
	// Watchdog is the wall-clock time an actor may hold its turn before the world is reported stalled.
	// Default DefaultWatchdog; negative: no watchdog.
	Watchdog time.Duration
	// OnStall is given the report of a stall (what every actor waits on, and every goroutine's stack).
	// Default: the report is written to standard error.
	OnStall func(report string)
}

// World is a deterministic scheduler for a simulated world that lives in one process, in the spirit of
// FoundationDB's simulator: its goroutines — actors — run one at a time, and its Clock is virtual.
//
// Rules:
//
//   - Actors are goroutines started with Go (or with the package function Go on the World's clock), and
//     goroutines from outside that enter with Do. Only the actor holding the turn runs world code; it runs
//     until it blocks in a world primitive (Wait, Sleep, a Signal, a Queue, a Group, a Mutex) or returns.
//   - Waking is synchronous: a Notify, a Push, an Unlock, a fired timer put the woken actors in the ready set at
//     once, so nothing is in flight that the scheduler cannot see.
//   - The next actor is drawn from the ready set, kept in spawn order, by a PRNG seeded with Seed: one seed is
//     one interleaving, and different seeds explore different ones.
//   - Cancellation is as deterministic as the rest: the cancel of a context made with WithCancel wakes its
//     waiters at once; a closed Done channel, or another context ending, wakes its waiters at the next quiescent
//     point (when no actor is ready), in actor order. (World code makes its contexts with WithCancel: checking
//     thousands of idle actors' contexts at every quiescent point would cost more than the simulation.)
//   - Virtual time stands still while actors are ready. It jumps to the earliest timer (ties in the order the
//     timers were made) only when nothing can run at the current instant and someone from outside is
//     waiting on the world (a Do whose function waits): a world nobody waits on is frozen, so what a test does
//     between its calls takes no virtual time.
//   - Goroutines from outside (a test, a real HTTP request, a progress printer) join through Do at a quiescent
//     point, in arrival order, without a draw from the PRNG, so a read-only visitor does not change the run.
//   - Real work an actor does while it holds its turn — a process it waits for, file I/O, a disk sync — takes no
//     virtual time.
//
// Misuse is reported, not hung: when an actor blocks outside the world (a plain channel, a mutex held by a
// parked actor, a real sleep) for longer than the watchdog allows, the world is declared stalled — OnStall
// gets a report of every actor and goroutine, every outside caller waiting on the world gets a *StallError,
// and Do fails until the stuck actor comes back into the world, if it ever does. When a caller waits and
// nothing at all can happen (every actor blocked, no timer, nobody outside pending), its wait fails with a
// *DeadlockError carrying the same report.
type World struct {
	seed     uint64
	watchdog time.Duration
	onStall  func(string)

	mu       sync.Mutex
	now      time.Time
	rng      *rand.Rand
	nextID   uint64
	timerSeq uint64
	running  *actor
	ready    []*actor // sorted by id
	joiners  []*actor // outside callers waiting to be admitted, in arrival order
	scanned  []*actor // blocked actors waiting on done channels, sorted by id
	quiet    int      // times time advanced since the last sweep
	timers   timerHeap
	drivers  int // blocked actors that were entered from outside (their wait lets time advance)
	alive    map[uint64]*actor
	steps    uint64 // handoffs so far
	closed   bool
	stalled  *StallError
	stuck    *actor // the actor that stalled the world

	stopWatch chan struct{}
	watchDone chan struct{}
}

var _ Clock = (*World)(nil)

// Errors of a World.
var (
	// ErrWorldClosed: the world was closed; nothing runs in it any more.
	ErrWorldClosed = errors.New("world closed")
)

// DeadlockError is the error of a wait that nothing can end: every actor is blocked, no timer is pending and
// nobody from outside is waiting to come in.
type DeadlockError struct{ Report string }

func (e *DeadlockError) Error() string {
	return "world deadlocked: every actor is blocked\n" + e.Report
}

// StallError is the error of every wait on a world whose running actor stopped yielding: it blocked on
// something outside the world.
type StallError struct{ Report string }

func (e *StallError) Error() string {
	return "world stalled: an actor blocked outside the world\n" + e.Report
}

type actorState int

const (
	stateReady actorState = iota
	stateRunning
	stateBlocked
	stateJoining
	stateDone
)

func (s actorState) String() string {
	return [...]string{"ready", "running", "blocked", "joining", "done"}[s]
}

// actor is one goroutine of the world.
type actor struct {
	id     uint64
	name   string
	goid   uint64
	turn   chan struct{} // cap 1: the turn handed to the actor
	driver bool          // entered from outside by Do: its waits let time advance
	state  actorState

	// The wait in progress.
	events   []Event
	dones    []<-chan struct{} // done channels the scan checks
	ctxDone  <-chan struct{}   // the context's, which the sweep checks
	deadline *timerEntry
	fail     error // set when the wait is ended by a deadlock or a stall
	since    time.Time
}

// NewWorld returns a world at opts.Start with no actors. Close it when done.
func NewWorld(opts WorldOptions) *World {
	start := opts.Start
	if start.IsZero() {
		start = WorldEpoch
	}
	w := &World{seed: opts.Seed, watchdog: opts.Watchdog, onStall: opts.OnStall, now: start,
		rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x6a09e667f3bcc909)), alive: map[uint64]*actor{}}
	if w.watchdog == 0 {
		w.watchdog = DefaultWatchdog
	}
	if w.onStall == nil {
		w.onStall = func(r string) { io.WriteString(os.Stderr, "fleetlab: world stalled\n"+r) }
	}
	if w.watchdog > 0 {
		w.stopWatch, w.watchDone = make(chan struct{}), make(chan struct{})
		go w.watch()
	}
	return w
}

// Seed returns the seed that orders the world's actors.
func (w *World) Seed() uint64 { return w.seed }

// Now returns the virtual time.
func (w *World) Now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

// Steps returns how many times the turn has passed from one actor to another.
func (w *World) Steps() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.steps
}

// NewTimer returns a timer that fires when virtual time reaches now+d. Inside the world, wait for it with Wait
// or Sleep rather than by receiving from C: a receive blocks the actor outside the world.
func (w *World) NewTimer(d time.Duration) Timer {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := &worldTimer{w: w, c: make(chan time.Time, 1)}
	t.e = w.addTimerLocked(w.now.Add(max(d, 0)), func() {
		select {
		case t.c <- w.now:
		default:
		}
	})
	return t
}

type worldTimer struct {
	w *World
	e *timerEntry
	c chan time.Time
}

func (t *worldTimer) C() <-chan time.Time { return t.c }

func (t *worldTimer) Stop() bool {
	t.w.mu.Lock()
	defer t.w.mu.Unlock()
	return t.w.removeTimerLocked(t.e)
}

// Go starts f as a new actor named name (the name is for reports). From an actor, the new actor is ready at
// once; from outside, it joins at the next quiescent point.
func (w *World) Go(name string, f func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		panic("clock: Go on a closed world")
	}
	if w.selfLocked() != nil {
		w.readyLocked(w.spawnLocked(name, f))
		return
	}
	a := w.spawnLocked(name, f)
	a.state = stateJoining
	w.joiners = append(w.joiners, a)
	w.kickLocked()
}

// spawnLocked starts the goroutine of a new actor; it runs f once it is handed the turn.
func (w *World) spawnLocked(name string, f func()) *actor {
	a := w.newActorLocked(name, false)
	go func() {
		w.mu.Lock()
		a.goid = goid()
		w.mu.Unlock()
		<-a.turn
		defer w.exit(a)
		f()
	}()
	return a
}

// Do runs f as an actor of the world and returns when f has. Called from an actor, it simply calls f. Called
// from outside, the calling goroutine joins the world at its next quiescent point and leaves it when f
// returns (or calls runtime.Goexit); while f waits on the world, virtual time may advance. It fails, without
// calling f, when the world is closed or stalled.
func (w *World) Do(f func()) error {
	me := goid()
	w.mu.Lock()
	if r := w.running; r != nil && r.goid == me {
		w.mu.Unlock()
		f()
		return nil
	}
	switch {
	case w.closed:
		w.mu.Unlock()
		return ErrWorldClosed
	case w.stalled != nil:
		err := w.stalled
		w.mu.Unlock()
		return err
	}
	a := w.newActorLocked("outside", true)
	a.goid = me
	a.state = stateJoining
	w.joiners = append(w.joiners, a)
	w.kickLocked()
	w.mu.Unlock()
	<-a.turn
	w.mu.Lock()
	err := a.fail
	w.mu.Unlock()
	if err != nil {
		return err
	}
	defer w.exit(a)
	f()
	return nil
}

// Running reports whether the calling goroutine is the actor holding the world's turn.
func (w *World) Running() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.selfLocked() != nil
}

// Close ends the world once it is quiescent: the watchdog stops, and Do fails from now on. It returns an error
// naming the actors still alive — goroutines the world started that are blocked for good — with what each waits
// on.
func (w *World) Close() error {
	w.Do(func() {}) // runs once every actor ready now has had its turn, so what ends on its own has ended
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	self := w.selfLocked()
	var left []string
	for _, a := range w.sortedAliveLocked() {
		if a != self {
			left = append(left, w.describeLocked(a))
		}
	}
	w.mu.Unlock()
	if w.stopWatch != nil {
		close(w.stopWatch)
		<-w.watchDone
	}
	if len(left) > 0 {
		return fmt.Errorf("close world: %d actors still alive:\n  %s", len(left), strings.Join(left, "\n  "))
	}
	return nil
}

// Dump describes every actor of the world and what it waits on.
func (w *World) Dump() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dumpLocked()
}

func (w *World) dumpLocked() string {
	var b strings.Builder
	fmt.Fprintf(&b, "virtual time %s, seed %d, %d handoffs, %d timers pending\n", w.now.Format(time.RFC3339Nano),
		w.seed, w.steps, len(w.timers))
	for _, a := range w.sortedAliveLocked() {
		fmt.Fprintf(&b, "  %s\n", w.describeLocked(a))
	}
	return b.String()
}

func (w *World) sortedAliveLocked() []*actor {
	out := make([]*actor, 0, len(w.alive))
	for _, a := range w.alive {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b *actor) int { return cmpID(a.id, b.id) })
	return out
}

func (w *World) describeLocked(a *actor) string {
	s := fmt.Sprintf("actor %d %q (goroutine %d): %s", a.id, a.name, a.goid, a.state)
	if a.state != stateBlocked {
		return s
	}
	var what []string
	for _, ev := range a.events {
		what = append(what, ev.describe())
	}
	if len(a.dones) > len(a.events) {
		what = append(what, "a context")
	}
	if a.deadline != nil {
		what = append(what, "a deadline at "+a.deadline.when.Sub(w.now).String()+" from now")
	}
	if len(what) == 0 {
		what = append(what, "nothing (forever)")
	}
	return fmt.Sprintf("%s since %s, waiting on %s", s, a.since.Format(time.RFC3339Nano), strings.Join(what, ", "))
}

func cmpID(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (w *World) newActorLocked(name string, driver bool) *actor {
	w.nextID++
	a := &actor{id: w.nextID, name: name, turn: make(chan struct{}, 1), driver: driver}
	w.alive[a.id] = a
	return a
}

// selfLocked returns the running actor when it is the calling goroutine.
func (w *World) selfLocked() *actor {
	if r := w.running; r != nil && r.goid == goid() {
		return r
	}
	return nil
}

// readyLocked puts a blocked or new actor in the ready set.
func (w *World) readyLocked(a *actor) {
	if a.state == stateBlocked && a.driver {
		w.drivers--
	}
	a.state = stateReady
	i, _ := slices.BinarySearchFunc(w.ready, a.id, func(x *actor, id uint64) int { return cmpID(x.id, id) })
	w.ready = slices.Insert(w.ready, i, a)
}

// wakeLocked makes a blocked actor ready; others are left alone.
func (w *World) wakeLocked(a *actor) {
	if a.state == stateBlocked {
		w.readyLocked(a)
	}
}

// kickLocked hands the turn to the next actor when the world is idle: after a change made from outside.
func (w *World) kickLocked() {
	if w.running != nil || w.closed {
		return
	}
	if next := w.nextLocked(); next != nil {
		w.handLocked(next)
	}
}

func (w *World) handLocked(next *actor) {
	w.running = next
	next.state = stateRunning
	w.steps++
	next.turn <- struct{}{}
}

// block parks the running actor a, already registered with what it waits on, until it is handed the turn
// again. It is called with w.mu held and returns with it held.
func (w *World) block(a *actor) {
	w.unstickLocked(a)
	a.state = stateBlocked
	a.since = w.now
	if a.driver {
		w.drivers++
	}
	w.switchLocked(a)
}

// switchLocked gives the turn of the running actor a to the next actor, and waits until a has it again; when
// a is next itself, it just goes on. It is called with w.mu held and returns with it held.
func (w *World) switchLocked(a *actor) {
	next := w.nextLocked()
	if next == a {
		w.running = a
		a.state = stateRunning
		return
	}
	w.running = nil
	if next != nil {
		w.handLocked(next)
	}
	w.mu.Unlock()
	<-a.turn
	w.mu.Lock()
}

// exit ends actor a (f returned or the goroutine is exiting) and hands the turn on.
func (w *World) exit(a *actor) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.unstickLocked(a)
	a.state = stateDone
	delete(w.alive, a.id)
	if w.running != a {
		return // released by a stall: it no longer holds the turn
	}
	w.running = nil
	if next := w.nextLocked(); next != nil {
		w.handLocked(next)
	}
}

// nextLocked chooses the actor to run next, doing what the current instant still holds and advancing time
// when that is what it takes; nil when the world is idle.
func (w *World) nextLocked() *actor {
	if w.stalled != nil {
		return nil
	}
	for {
		if n := len(w.ready); n > 0 {
			i := 0
			if n > 1 {
				i = w.rng.IntN(n)
			}
			a := w.ready[i]
			w.ready = slices.Delete(w.ready, i, i+1)
			return a
		}
		if w.scanLocked() || w.fireDueLocked() {
			continue
		}
		if len(w.joiners) > 0 {
			a := w.joiners[0]
			w.joiners = w.joiners[1:]
			return a
		}
		if w.drivers == 0 {
			if w.sweepLocked() {
				continue
			}
			return nil
		}
		if w.quiet++; w.quiet >= sweepEvery && w.sweepLocked() {
			continue
		}
		if len(w.timers) > 0 {
			w.now = w.timers[0].when
			continue
		}
		if w.sweepLocked() {
			continue
		}
		w.deadlockLocked()
	}
}

// sweepEvery is how many times time may advance between two sweeps.
const sweepEvery = 64

// sweepLocked wakes, in actor order, the blocked actors whose context of the world's (WithCancel) has ended
// without its own cancel, through a parent that is not the world's: the scan checks only done channels and
// other contexts, and the world's contexts wake their waiters when canceled.
func (w *World) sweepLocked() bool {
	w.quiet = 0
	woke := false
	for _, a := range w.sortedAliveLocked() {
		if a.state == stateBlocked && a.ctxDone != nil && isClosed(a.ctxDone) {
			w.wakeLocked(a)
			woke = true
		}
	}
	return woke
}

// scanLocked wakes the blocked actors whose context ended or whose done channel closed, in actor order.
func (w *World) scanLocked() bool {
	woke := false
	for _, a := range w.scanned {
		for _, d := range a.dones {
			if isClosed(d) {
				w.wakeLocked(a)
				woke = true
				break
			}
		}
	}
	return woke
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// fireDueLocked fires every timer due at the current instant, in order.
func (w *World) fireDueLocked() bool {
	fired := false
	for len(w.timers) > 0 && !w.timers[0].when.After(w.now) {
		e := heap.Pop(&w.timers).(*timerEntry)
		e.fire()
		fired = true
	}
	return fired
}

// deadlockLocked fails the wait of every blocked outside caller: nothing can ever wake them.
func (w *World) deadlockLocked() {
	err := &DeadlockError{Report: w.dumpLocked()}
	for _, a := range w.sortedAliveLocked() {
		if a.driver && a.state == stateBlocked {
			a.fail = err
			w.readyLocked(a)
		}
	}
}

// unstickLocked ends a stall when a, the actor that stalled the world, comes back into it: the callers the stall
// failed have failed, and the world goes on.
func (w *World) unstickLocked(a *actor) {
	if w.stalled != nil && a == w.stuck {
		w.stalled, w.stuck = nil, nil
	}
}

// watch is the watchdog: it declares the world stalled when the running actor holds its turn too long.
func (w *World) watch() {
	defer close(w.watchDone)
	period := max(w.watchdog/4, time.Millisecond)
	var lastSteps uint64
	var since time.Time
	for {
		t := Real{}.NewTimer(period)
		select {
		case <-w.stopWatch:
			t.Stop()
			return
		case <-t.C():
		}
		now := Real{}.Now()
		w.mu.Lock()
		if w.running == nil || w.steps != lastSteps || w.stalled != nil {
			lastSteps, since = w.steps, now
			w.mu.Unlock()
			continue
		}
		if now.Sub(since) < w.watchdog {
			w.mu.Unlock()
			continue
		}
		report := fmt.Sprintf("actor %d %q has held its turn for %v of wall time without yielding\n%s\ngoroutines:\n%s",
			w.running.id, w.running.name, now.Sub(since).Round(time.Millisecond), w.dumpLocked(), allStacks())
		w.stalled, w.stuck = &StallError{Report: report}, w.running
		for _, a := range w.sortedAliveLocked() {
			if a.driver && (a.state == stateBlocked || a.state == stateJoining) {
				if a.state == stateBlocked {
					w.drivers--
				}
				a.fail = w.stalled
				a.state = stateDone
				delete(w.alive, a.id)
				a.turn <- struct{}{}
			}
		}
		w.joiners = slices.DeleteFunc(w.joiners, func(a *actor) bool { return a.driver })
		w.mu.Unlock()
		w.onStall(report)
	}
}

func allStacks() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// timerEntry is a pending timer: fire runs, with w.mu held, when virtual time reaches when.
type timerEntry struct {
	when  time.Time
	seq   uint64
	index int // in the heap; -1 once fired or removed
	fire  func()
}

func (w *World) addTimerLocked(when time.Time, fire func()) *timerEntry {
	w.timerSeq++
	e := &timerEntry{when: when, seq: w.timerSeq, fire: fire}
	heap.Push(&w.timers, e)
	return e
}

// removeTimerLocked removes e if it has not fired; it reports whether it did.
func (w *World) removeTimerLocked(e *timerEntry) bool {
	if e.index < 0 {
		return false
	}
	heap.Remove(&w.timers, e.index)
	return true
}

type timerHeap []*timerEntry

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if c := h[i].when.Compare(h[j].when); c != 0 {
		return c < 0
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	e := x.(*timerEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.index = -1
	return e
}

// goid returns the calling goroutine's id, from the header of its stack trace ("goroutine 42 [running]:"). The
// world uses it to tell its running actor from other goroutines.
func goid() uint64 {
	var buf [40]byte
	n := runtime.Stack(buf[:], false)
	var id uint64
	for _, c := range buf[len("goroutine "):n] {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}
