package harness

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"

	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/artifacts"
	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// FaultHooks are the places faults plug into, for a harness.Env and for a benchmark alike: the service's call
// intercept and artifact intercept (installed once, at every service start, and consulting the hooks in force at
// each request), each device's executor wraps and link shapes (composed and set on the device whenever they
// change), and the agent event watchers. Its methods Intercept, Artifact and AgentEvent go to the service's and
// the fleet's options; the others are the hook half of a faults.World.
type FaultHooks struct {
	backend func() string
	device  func(string) (fleet.Device, bool)
	seed    uint64

	mu       sync.Mutex
	next     int
	http     []idHook[faults.HTTPHook]
	objects  []idHook[faults.ArtifactHook]
	watchers []idHook[func(string, agent.Event)]
	wraps    map[string]*[]idHook[func(agent.Executors) agent.Executors]
	links    map[string]*[]idHook[fleet.Link]
}

type idHook[T any] struct {
	id int
	h  T
}

// NewFaultHooks returns the hooks of a world whose backend is named by backend and whose devices device finds
// (both asked when a fault is armed); seed seeds each device's lossy link.
func NewFaultHooks(backend func() string, device func(string) (fleet.Device, bool), seed uint64) *FaultHooks {
	return &FaultHooks{backend: backend, device: device, seed: seed,
		wraps: map[string]*[]idHook[func(agent.Executors) agent.Executors]{}, links: map[string]*[]idHook[fleet.Link]{}}
}

// add appends h to list under a new id and returns the function that removes it; changed, when set, is given
// the list's hooks after every change, with the lock held (so changes reach a device in the order they were
// made).
func add[T any](hs *FaultHooks, list *[]idHook[T], h T, changed func([]T)) func() {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	id := hs.next
	hs.next++
	*list = append(*list, idHook[T]{id, h})
	if changed != nil {
		changed(values(*list))
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			hs.mu.Lock()
			defer hs.mu.Unlock()
			*list = slices.DeleteFunc(*list, func(x idHook[T]) bool { return x.id == id })
			if changed != nil {
				changed(values(*list))
			}
		})
	}
}

// deviceList returns the device's list in m, made on first use.
func deviceList[T any](hs *FaultHooks, m map[string]*[]idHook[T], dev string) *[]idHook[T] {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	l, ok := m[dev]
	if !ok {
		l = &[]idHook[T]{}
		m[dev] = l
	}
	return l
}

func values[T any](l []idHook[T]) []T {
	out := make([]T, len(l))
	for i, x := range l {
		out[i] = x.h
	}
	return out
}

func snapshot[T any](hs *FaultHooks, list *[]idHook[T]) []T {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return values(*list)
}

// Intercept is the service's Options.Intercept: the service has routed the request, so the call names its API
// (a dialect, or the device API) and operation, and a fault's answer goes out in that API's own error form.
func (hs *FaultHooks) Intercept(c awsapi.Call) *awsapi.Fault {
	call := faults.Call{API: faults.API(c.Dialect), Operation: c.Operation, Thing: c.Thing}
	for _, hook := range snapshot(hs, &hs.http) {
		if reply := hook(call); reply != nil {
			return &awsapi.Fault{Status: reply.Status, Code: reply.Code, Message: reply.Message, After: reply.After}
		}
	}
	return nil
}

// Artifact is the artifact store's Options.Intercept.
func (hs *FaultHooks) Artifact(op artifacts.Op, bucket, key string) *artifacts.Fault {
	for _, hook := range snapshot(hs, &hs.objects) {
		if f := hook(op, bucket, key); f != nil {
			return f
		}
	}
	return nil
}

// AgentEvent hands an agent event to the watchers.
func (hs *FaultHooks) AgentEvent(device string, a agent.Event) {
	for _, w := range snapshot(hs, &hs.watchers) {
		w(device, a)
	}
}

// WrapExecutors implements faults.World: the device's executors are wrapped by every wrap in force, in the
// order they were added.
func (hs *FaultHooks) WrapExecutors(dev string, wrap func(agent.Executors) agent.Executors) (func(), error) {
	d, ok := hs.device(dev)
	if !ok {
		return nil, errors.New("no robot " + dev)
	}
	hook, ok := d.(fleet.ExecutorHook)
	if !ok {
		return nil, &faults.UnsupportedError{Fault: "executor wrap", Backend: hs.Backend(), Device: dev, Ability: "fleet.ExecutorHook"}
	}
	return add(hs, deviceList(hs, hs.wraps, dev), wrap, func(wraps []func(agent.Executors) agent.Executors) {
		if len(wraps) == 0 {
			hook.SetExecutorWrap(nil)
			return
		}
		hook.SetExecutorWrap(func(ex agent.Executors) agent.Executors {
			for _, wr := range wraps {
				ex = wr(ex)
			}
			return ex
		})
	}), nil
}

// ShapeLink implements faults.World: the device's link is every shape in force, combined; a lossy link's seed
// is the world's, mixed with the device's name.
func (hs *FaultHooks) ShapeLink(dev string, l fleet.Link) (func(), error) {
	d, ok := hs.device(dev)
	if !ok {
		return nil, errors.New("no robot " + dev)
	}
	lk, ok := d.(fleet.Linker)
	if !ok {
		return nil, &faults.UnsupportedError{Fault: "link shape", Backend: hs.Backend(), Device: dev, Ability: "fleet.Linker"}
	}
	// A robot of the direct path has no link: refused here, before its SetLink would have to panic.
	if err := fleet.CanShapeLink(d); err != nil {
		return nil, fmt.Errorf("link shape: %w", err)
	}
	h := fnv.New64a()
	h.Write([]byte(dev))
	seed := hs.seed ^ h.Sum64()
	return add(hs, deviceList(hs, hs.links, dev), l, func(ls []fleet.Link) {
		combined := faults.CombineLinks(ls...)
		if combined.Seed == 0 {
			combined.Seed = seed
		}
		lk.SetLink(combined)
	}), nil
}

// Backend, Device and Seed implement faults.World with what the hooks were made with.
func (hs *FaultHooks) Backend() string                         { return hs.backend() }
func (hs *FaultHooks) Device(name string) (fleet.Device, bool) { return hs.device(name) }
func (hs *FaultHooks) Seed() uint64                            { return hs.seed }

// WatchAgents implements faults.World.
func (hs *FaultHooks) WatchAgents(fn func(string, agent.Event)) func() {
	return add(hs, &hs.watchers, fn, nil)
}

// InterceptHTTP implements faults.World.
func (hs *FaultHooks) InterceptHTTP(h faults.HTTPHook) func() { return add(hs, &hs.http, h, nil) }

// InterceptArtifacts implements faults.World.
func (hs *FaultHooks) InterceptArtifacts(h faults.ArtifactHook) func() {
	return add(hs, &hs.objects, h, nil)
}

// world is the environment as faults see it.
type world struct {
	*FaultHooks
	e *Env
}

var _ faults.World = world{}

func (w world) Robots() []string   { return w.e.Robots() }
func (w world) Clock() clock.Clock { return w.e.clock }
func (w world) Emit(e event.Event) { w.e.events.Emit(e) }

func (w world) DevicesOverHTTP() error { return w.e.cfg.backend.DevicesOverHTTP() }

func (w world) CanRestartService() error {
	if w.e.cfg.memory {
		return errors.New("the environment keeps the service's store in memory (WithMemoryStore): a restart would lose everything")
	}
	if err := w.e.cfg.backend.DevicesOverHTTP(); err != nil {
		return err
	}
	return nil
}

func (w world) StopService(context.Context) error  { return w.e.stopService() }
func (w world) StartService(context.Context) error { return w.e.startService() }
