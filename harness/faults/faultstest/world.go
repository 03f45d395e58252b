// Package faultstest provides fakes for testing faults without a service or a fleet: World, a faults.World
// whose hooks are recorded and can be driven by hand, and Device, a robot with every ability of package fleet
// that records what was done to it.
package faultstest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/artifacts"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// World is a fake faults.World. Set its exported fields before arming a fault; read what happened through its
// methods. It is safe for concurrent use.
type World struct {
	// BackendName is what Backend returns (default "fake").
	BackendName string
	// Fleet is the devices, by name.
	Fleet map[string]fleet.Device
	// Clk is the clock (nil: the real clock).
	Clk clock.Clock
	// SeedValue is what Seed returns.
	SeedValue uint64
	// NoHTTP, when set, is what DevicesOverHTTP returns.
	NoHTTP error
	// NoRestart, when set, is what CanRestartService returns.
	NoRestart error

	mu       sync.Mutex
	events   []event.Event
	wraps    map[string][]*wrapEntry
	links    map[string][]*linkEntry
	watchers map[int]func(string, agent.Event)
	http     map[int]faults.HTTPHook
	objects  map[int]faults.ArtifactHook
	next     int
	running  bool
	stops    int
	starts   int
	changed  chan struct{} // closed and replaced when the service stops or starts
}

type wrapEntry struct {
	wrap func(agent.Executors) agent.Executors
}

type linkEntry struct{ l fleet.Link }

var _ faults.World = (*World)(nil)

// NewWorld returns a world of devs, with its service running.
func NewWorld(devs ...fleet.Device) *World {
	w := &World{Fleet: map[string]fleet.Device{}, running: true, changed: make(chan struct{})}
	for _, d := range devs {
		w.Fleet[d.Name()] = d
	}
	return w
}

func (w *World) init() {
	if w.wraps == nil {
		w.wraps = map[string][]*wrapEntry{}
		w.links = map[string][]*linkEntry{}
		w.watchers = map[int]func(string, agent.Event){}
		w.http = map[int]faults.HTTPHook{}
		w.objects = map[int]faults.ArtifactHook{}
	}
}

// Backend implements faults.World.
func (w *World) Backend() string {
	if w.BackendName == "" {
		return "fake"
	}
	return w.BackendName
}

// Robots implements faults.World.
func (w *World) Robots() []string {
	names := make([]string, 0, len(w.Fleet))
	for n := range w.Fleet {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Device implements faults.World.
func (w *World) Device(name string) (fleet.Device, bool) {
	d, ok := w.Fleet[name]
	return d, ok
}

// Clock implements faults.World.
func (w *World) Clock() clock.Clock { return clock.Or(w.Clk) }

// Seed implements faults.World.
func (w *World) Seed() uint64 { return w.SeedValue }

// Emit implements faults.World.
func (w *World) Emit(e event.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events = append(w.events, e)
}

// Events returns the events emitted so far.
func (w *World) Events() []event.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.events)
}

// WrapExecutors implements faults.World.
func (w *World) WrapExecutors(dev string, wrap func(agent.Executors) agent.Executors) (func(), error) {
	d, ok := w.Fleet[dev]
	if !ok {
		return nil, errors.New("no device " + dev)
	}
	if _, ok := d.(fleet.ExecutorHook); !ok {
		return nil, &faults.UnsupportedError{Fault: "?", Backend: w.Backend(), Device: dev, Ability: "fleet.ExecutorHook"}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.init()
	e := &wrapEntry{wrap}
	w.wraps[dev] = append(w.wraps[dev], e)
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.wraps[dev] = slices.DeleteFunc(w.wraps[dev], func(x *wrapEntry) bool { return x == e })
	}, nil
}

// Executors returns base as the device's agent sees it through the wraps in force.
func (w *World) Executors(dev string, base agent.Executors) agent.Executors {
	w.mu.Lock()
	wraps := slices.Clone(w.wraps[dev])
	w.mu.Unlock()
	for _, e := range wraps {
		base = e.wrap(base)
	}
	return base
}

// ShapeLink implements faults.World.
func (w *World) ShapeLink(dev string, l fleet.Link) (func(), error) {
	d, ok := w.Fleet[dev]
	if !ok {
		return nil, errors.New("no device " + dev)
	}
	lk, ok := d.(fleet.Linker)
	if !ok {
		return nil, &faults.UnsupportedError{Fault: "?", Backend: w.Backend(), Device: dev, Ability: "fleet.Linker"}
	}
	w.mu.Lock()
	w.init()
	e := &linkEntry{l}
	w.links[dev] = append(w.links[dev], e)
	lk.SetLink(w.linkLocked(dev))
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.links[dev] = slices.DeleteFunc(w.links[dev], func(x *linkEntry) bool { return x == e })
		lk.SetLink(w.linkLocked(dev))
	}, nil
}

func (w *World) linkLocked(dev string) fleet.Link {
	ls := make([]fleet.Link, 0, len(w.links[dev]))
	for _, e := range w.links[dev] {
		ls = append(ls, e.l)
	}
	return faults.CombineLinks(ls...)
}

// WatchAgents implements faults.World.
func (w *World) WatchAgents(fn func(string, agent.Event)) func() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.init()
	id := w.next
	w.next++
	w.watchers[id] = fn
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.watchers, id)
	}
}

// AgentEvent delivers an agent event of dev to the watchers.
func (w *World) AgentEvent(dev string, e agent.Event) {
	w.mu.Lock()
	fns := make([]func(string, agent.Event), 0, len(w.watchers))
	for _, fn := range w.watchers {
		fns = append(fns, fn)
	}
	w.mu.Unlock()
	for _, fn := range fns {
		fn(dev, e)
	}
}

// InterceptHTTP implements faults.World.
func (w *World) InterceptHTTP(h faults.HTTPHook) func() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.init()
	id := w.next
	w.next++
	w.http[id] = h
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.http, id)
	}
}

// Call asks the HTTP hooks about c; it returns the first reply.
func (w *World) Call(c faults.Call) *faults.Reply {
	w.mu.Lock()
	hooks := make([]faults.HTTPHook, 0, len(w.http))
	for id := range w.next {
		if h, ok := w.http[id]; ok {
			hooks = append(hooks, h)
		}
	}
	w.mu.Unlock()
	for _, h := range hooks {
		if r := h(c); r != nil {
			return r
		}
	}
	return nil
}

// InterceptArtifacts implements faults.World.
func (w *World) InterceptArtifacts(h faults.ArtifactHook) func() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.init()
	id := w.next
	w.next++
	w.objects[id] = h
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.objects, id)
	}
}

// Artifact asks the artifact hooks about a request; it returns the first fault.
func (w *World) Artifact(op artifacts.Op, bucket, key string) *artifacts.Fault {
	w.mu.Lock()
	hooks := make([]faults.ArtifactHook, 0, len(w.objects))
	for id := range w.next {
		if h, ok := w.objects[id]; ok {
			hooks = append(hooks, h)
		}
	}
	w.mu.Unlock()
	for _, h := range hooks {
		if f := h(op, bucket, key); f != nil {
			return f
		}
	}
	return nil
}

// Hooks returns how many executor wraps, link shapes, agent watchers, HTTP and artifact hooks are in force.
func (w *World) Hooks() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(w.watchers) + len(w.http) + len(w.objects)
	for _, ws := range w.wraps {
		n += len(ws)
	}
	for _, ls := range w.links {
		n += len(ls)
	}
	return n
}

// DevicesOverHTTP implements faults.World.
func (w *World) DevicesOverHTTP() error { return w.NoHTTP }

// CanRestartService implements faults.World.
func (w *World) CanRestartService() error { return w.NoRestart }

// StopService implements faults.World.
func (w *World) StopService(context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.running {
		return errors.New("service already stopped")
	}
	w.running = false
	w.stops++
	close(w.changed)
	w.changed = make(chan struct{})
	return nil
}

// StartService implements faults.World.
func (w *World) StartService(context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running {
		return nil
	}
	w.running = true
	w.starts++
	close(w.changed)
	w.changed = make(chan struct{})
	return nil
}

// AwaitService waits until the service's running state is running, or ctx ends.
func (w *World) AwaitService(ctx context.Context, running bool) error {
	for {
		w.mu.Lock()
		now, ch := w.running, w.changed
		w.mu.Unlock()
		if now == running {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Service returns whether the service runs and how many times it was stopped and started.
func (w *World) Service() (running bool, stops, starts int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.running, w.stops, w.starts
}

// Device is a fake robot with every ability of package fleet. It records each call; Crash and Freeze only
// record, there is no agent behind it.
type Device struct {
	name, arch string

	mu      sync.Mutex
	calls   []string
	running bool
	frozen  bool
	link    fleet.Link
	skew    time.Duration
	noise   float64
	unplug  bool
	serial  fleet.SerialStats
	onCrash func()
	changed chan struct{} // closed and replaced at every call
}

var (
	_ fleet.Crasher      = (*Device)(nil)
	_ fleet.Freezer      = (*Device)(nil)
	_ fleet.ExecutorHook = (*Device)(nil)
	_ fleet.Linker       = (*Device)(nil)
	_ fleet.ClockSkewer  = (*Device)(nil)
	_ fleet.Resetter     = (*Device)(nil)
	_ fleet.SerialLine   = (*Device)(nil)
)

// NewDevice returns a running amd64 device.
func NewDevice(name string) *Device {
	return &Device{name: name, arch: fleet.ArchAMD64, running: true, changed: make(chan struct{})}
}

// record notes a call; the caller changes the device's state after it, under d.mu, and waiters recheck once
// the call returns.
func (d *Device) record(call string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, call)
}

// changedLocked wakes Await.
func (d *Device) changedLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// Await waits until cond holds, checking after every ability call, or until ctx ends.
func (d *Device) Await(ctx context.Context, cond func(*Device) bool) error {
	for {
		d.mu.Lock()
		ch := d.changed
		d.mu.Unlock()
		if cond(d) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Calls returns the ability calls made, in order ("Crash", "Restart", "Freeze", "Thaw", "SetLink", …).
func (d *Device) Calls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.calls)
}

// OnCrash sets a function Crash calls (a test's stand-in for the agent stopping).
func (d *Device) OnCrash(fn func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.onCrash = fn
}

// Name implements fleet.Device.
func (d *Device) Name() string { return d.name }

// Architecture implements fleet.Device.
func (d *Device) Architecture() string { return d.arch }

// Crash implements fleet.Crasher.
func (d *Device) Crash() error {
	d.record("Crash")
	d.mu.Lock()
	d.running = false
	fn := d.onCrash
	d.changedLocked()
	d.mu.Unlock()
	if fn != nil {
		fn()
	}
	return nil
}

// Restart implements fleet.Crasher.
func (d *Device) Restart(context.Context) error {
	d.record("Restart")
	d.mu.Lock()
	defer d.mu.Unlock()
	d.running = true
	d.changedLocked()
	return nil
}

// Running implements fleet.Crasher.
func (d *Device) Running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running
}

// Freeze implements fleet.Freezer.
func (d *Device) Freeze() error {
	d.record("Freeze")
	d.mu.Lock()
	defer d.mu.Unlock()
	d.frozen = true
	d.changedLocked()
	return nil
}

// Thaw implements fleet.Freezer.
func (d *Device) Thaw() error {
	d.record("Thaw")
	d.mu.Lock()
	defer d.mu.Unlock()
	d.frozen = false
	d.changedLocked()
	return nil
}

// Frozen reports whether the device is frozen.
func (d *Device) Frozen() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.frozen
}

// SetExecutorWrap implements fleet.ExecutorHook. It only records the call: World.WrapExecutors composes the
// wraps and World.Executors applies them.
func (d *Device) SetExecutorWrap(func(agent.Executors) agent.Executors) { d.record("SetExecutorWrap") }

// SetLink implements fleet.Linker.
func (d *Device) SetLink(l fleet.Link) {
	d.record("SetLink")
	d.mu.Lock()
	defer d.mu.Unlock()
	d.link = l
	d.changedLocked()
}

// Link returns the link in force.
func (d *Device) Link() fleet.Link {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.link
}

// SetClockSkew implements fleet.ClockSkewer.
func (d *Device) SetClockSkew(s time.Duration) {
	d.record("SetClockSkew")
	d.mu.Lock()
	defer d.mu.Unlock()
	d.skew = s
	d.changedLocked()
}

// Skew returns the clock skew in force.
func (d *Device) Skew() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.skew
}

// Reset implements fleet.Resetter: it records the call and calls the OnCrash function, as the agent stops.
func (d *Device) Reset(context.Context) error {
	d.record("Reset")
	d.mu.Lock()
	fn := d.onCrash
	d.changedLocked()
	d.mu.Unlock()
	if fn != nil {
		fn()
	}
	return nil
}

// SetSerialNoise implements fleet.SerialLine.
func (d *Device) SetSerialNoise(rate float64, _ uint64) {
	d.record(fmt.Sprintf("SetSerialNoise(%v)", rate))
	d.mu.Lock()
	defer d.mu.Unlock()
	d.noise = rate
	d.changedLocked()
}

// SetSerialUnplugged implements fleet.SerialLine.
func (d *Device) SetSerialUnplugged(u bool) {
	d.record(fmt.Sprintf("SetSerialUnplugged(%v)", u))
	d.mu.Lock()
	defer d.mu.Unlock()
	d.unplug = u
	d.changedLocked()
}

// SerialStats implements fleet.SerialLine: the counts SetSerialStats gave.
func (d *Device) SerialStats() fleet.SerialStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.serial
}

// SetSerialStats sets the counts SerialStats returns (a test's stand-in for the line's traffic).
func (d *Device) SetSerialStats(s fleet.SerialStats) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.serial = s
}

// Serial returns the line's noise rate and whether it is unplugged.
func (d *Device) Serial() (noise float64, unplugged bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.noise, d.unplug
}

// Plain is a device with no ability beyond fleet.Device, for testing that faults refuse it.
type Plain struct{ N string }

// Name implements fleet.Device.
func (p Plain) Name() string { return p.N }

// Architecture implements fleet.Device.
func (p Plain) Architecture() string { return fleet.ArchAMD64 }
