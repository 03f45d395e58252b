package inproc

import (
	"io"
	"sync"

	"github.com/fleetlab/fleetlab/sim/artifacts"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
)

// door runs the service's side of the memory transport's calls — the device API and the artifact store's
// Open — on goroutines of their own, at most doorSlots at once, when the fleet is not in a virtual-time world.
//
// Called directly, an agent would run the service's side of its call on its own goroutine: down through the
// device API, the engine's commit and transition, its event delivery and the store, past the 8 KiB its stack
// starts with (less the runtime's guard), so every agent that ever reported would keep a 16 KiB stack, and with a
// whole fleet released at once most of them would be queued deep in the engine at any moment. Measured at
// 100,000 robots: 2.2 GiB of stacks, and a heap goal raised by as much, since the collector counts stacks in
// it. Through the door an agent waits a few frames deep, and the deep frames live on a goroutine that ends
// with the call. The engine serialises the calls anyway (one commit and one delivery at a time), so the bound
// costs no throughput while it is above the engine's own parallelism, and lets the store's group commit batch
// that many writers.
//
// A free slot goes to the newest waiter (last in, first out). A fair, first-in-first-out door moves the whole
// fleet through its steps in lock-step, every robot half done at once: at 100,000 robots the first success
// came after 50 s instead of 2 s, and the rollout took three times as long. Newest first, the robots that are
// on their way finish, and their state goes idle, while the others wait at the door.
//
// In a world every goroutine that touches the service must be one of its actors, and the world runs one actor
// at a time, so nothing queues: the door is not used there.
type door struct {
	mu      sync.Mutex
	free    int
	waiting []chan struct{} // the newest last
}

// doorSlots is how many calls are in the service at once.
const doorSlots = 64

func newDoor(slots int) *door { return &door{free: slots} }

// gateService puts api and objects behind one door, unless c is a world's clock.
func behindDoor(api DeviceAPI, objects Objects, c clock.Clock) (DeviceAPI, Objects) {
	if clock.WorldOf(c) != nil {
		return api, objects
	}
	d := newDoor(doorSlots)
	return gatedAPI{api, d}, gatedObjects{objects, d}
}

// run calls f on a goroutine of its own once a slot is free, and waits for it; a panic of f is raised again on
// the caller's goroutine.
func (d *door) run(f func()) {
	d.enter()
	defer d.leave()
	done := make(chan any, 1)
	go func() {
		defer func() { done <- recover() }()
		f()
	}()
	if p := <-done; p != nil {
		panic(p)
	}
}

// enter takes a slot, waiting for one when none is free.
func (d *door) enter() {
	d.mu.Lock()
	if d.free > 0 {
		d.free--
		d.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	d.waiting = append(d.waiting, ch)
	d.mu.Unlock()
	<-ch
}

// leave hands the slot to the newest waiter, or frees it.
func (d *door) leave() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := len(d.waiting); n > 0 {
		ch := d.waiting[n-1]
		d.waiting[n-1] = nil
		d.waiting = d.waiting[:n-1]
		close(ch)
		return
	}
	d.free++
}

// gatedAPI is a DeviceAPI behind a door. Subscribe only registers a queue, and is not gated.
type gatedAPI struct {
	DeviceAPI
	d *door
}

func (a gatedAPI) GetPending(thing string) (out wire.GetPendingJobExecutionsResponse, err error) {
	a.d.run(func() { out, err = a.DeviceAPI.GetPending(thing) })
	return out, err
}

func (a gatedAPI) Describe(thing, job string, withDoc bool) (out wire.DescribeJobExecutionResponse, err error) {
	a.d.run(func() { out, err = a.DeviceAPI.Describe(thing, job, withDoc) })
	return out, err
}

func (a gatedAPI) StartNext(thing string, req wire.StartNextPendingJobExecutionRequest) (out wire.StartNextPendingJobExecutionResponse, err error) {
	a.d.run(func() { out, err = a.DeviceAPI.StartNext(thing, req) })
	return out, err
}

func (a gatedAPI) Update(thing, job string, req wire.UpdateJobExecutionRequest) (out wire.UpdateJobExecutionResponse, err error) {
	a.d.run(func() { out, err = a.DeviceAPI.Update(thing, job, req) })
	return out, err
}

// gatedObjects is an artifact store behind a door: Open reads the object's metadata (JSON) on the way.
type gatedObjects struct {
	Objects
	d *door
}

func (o gatedObjects) Open(bucket, key string) (obj artifacts.Object, rc io.ReadSeekCloser, err error) {
	o.d.run(func() { obj, rc, err = o.Objects.Open(bucket, key) })
	return obj, rc, err
}
