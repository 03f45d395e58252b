package inproc

import (
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/deviceapi"
)

// waiters is how many calls wait at d.
func (d *door) waiters() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.waiting)
}

// TestDoorBoundsTheCallsInside: however many callers, no more than the door's slots are inside at once, and
// every call gets through.
func TestDoorBoundsTheCallsInside(t *testing.T) {
	const slots, callers = 4, 64
	d := newDoor(slots)
	var inside, most atomic.Int64
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			d.run(func() {
				n := inside.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				<-release
				inside.Add(-1)
			})
		})
	}
	if !agenttest.Eventually(time.Minute, func() bool { return inside.Load() == slots && d.waiters() == callers-slots }) {
		t.Fatalf("%d calls inside and %d waiting, want %d and %d", inside.Load(), d.waiters(), slots, callers-slots)
	}
	close(release)
	wg.Wait()
	if most.Load() != slots {
		t.Fatalf("at most %d calls were inside at once, want %d", most.Load(), slots)
	}
	if d.free != slots || d.waiters() != 0 {
		t.Fatalf("after every call: %d slots free and %d waiting, want %d and 0", d.free, d.waiters(), slots)
	}
}

// TestDoorServesTheNewestWaiterFirst: a freed slot goes to the call that came last, so the robots already on
// their way finish instead of the whole fleet moving in lock-step.
func TestDoorServesTheNewestWaiterFirst(t *testing.T) {
	d := newDoor(1)
	hold := make(chan struct{})
	held := make(chan struct{})
	go d.run(func() { close(held); <-hold })
	<-held
	var order []int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			d.run(func() {
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
			})
		})
		// The next caller comes once this one waits.
		if !agenttest.Eventually(time.Minute, func() bool { return d.waiters() == i+1 }) {
			t.Fatalf("caller %d never waited at the door", i)
		}
	}
	close(hold)
	wg.Wait()
	if want := []int{2, 1, 0}; !equalInts(order, want) {
		t.Fatalf("the waiters got in in the order %v, want %v (newest first)", order, want)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestDoorRunsTheCallOffTheCallersStack: the call runs on a goroutine of its own (its deep frames never grow
// the agent's stack), and a panic in it reaches the caller.
func TestDoorRunsTheCallOffTheCallersStack(t *testing.T) {
	d := newDoor(1)
	var stack string
	d.run(func() {
		buf := make([]byte, 64<<10)
		stack = string(buf[:runtime.Stack(buf, false)])
	})
	if strings.Contains(stack, "TestDoorRunsTheCallOffTheCallersStack(") || !strings.Contains(stack, "created by") {
		t.Fatalf("the call ran on the caller's goroutine:\n%s", stack)
	}
	defer func() {
		if p := recover(); p != "boom" {
			t.Fatalf("recovered %v, want the call's panic", p)
		}
		if d.free != 1 {
			t.Fatalf("a call that panicked kept its slot: %d free", d.free)
		}
	}()
	d.run(func() { panic("boom") })
}

// TestBehindDoorNotInAWorld: in a virtual-time world every goroutine touching the service must be an actor, so
// the service is called directly there.
func TestBehindDoorNotInAWorld(t *testing.T) {
	api, objects := DeviceAPI((*deviceapi.API)(nil)), Objects(nil)
	w := clock.NewWorld(clock.WorldOptions{})
	defer w.Close()
	if a, _ := behindDoor(api, objects, w); a != api {
		t.Fatalf("in a world the device API is %T, want it called directly", a)
	}
	if a, o := behindDoor(api, objects, clock.Real{}); a == api {
		t.Fatalf("on the real clock the device API is not behind the door")
	} else if _, ok := o.(gatedObjects); !ok {
		t.Fatalf("on the real clock the artifact store is %T, not behind the door", o)
	}
}
