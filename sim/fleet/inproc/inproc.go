// Package inproc hosts robots as goroutines: each device is a sim/agent.Agent with on-device storage of its own,
// thousands of them in one process.
//
// Two families of storage, chosen by Options.Dir:
//
//   - OS (Dir set): each robot has the directory Dir/<name>, with real files, real scripts and its application as
//     a real process — the agent's OS executors.
//   - In-memory (Dir empty): state, downloads and unpacked versions in memory, scripts interpreted, the launch
//     recorded — the agent's in-memory executors, for large fleets. The memory is kept across Crash and Restart,
//     as a robot's disk would be.
//
// Three transports, chosen by Options.Transport:
//
//   - HTTP (the default): the agent speaks HTTP to the service endpoint through a loopback reverse proxy of its
//     own (package link), which is where its link is shaped.
//   - In-process: the agent speaks HTTP to the service, but its requests are served in process by Options.HTTP
//     (a link.InProcess) through the whole of the service's handler chain, shaped on the way by the robot's link;
//     its notify channel is a subscription taken in process (deviceapi.LocalNotify). No socket is used: this is the
//     transport of a virtual-time world (clock.World), where it is required.
//   - Memory: the agent calls the service's device API and artifact store in process (MemoryTransport), with the
//     same link shaping applied in the adapter, for very large fleets.
//
// Every Device implements fleet.Crasher, fleet.Freezer, fleet.ExecutorHook, fleet.Linker and fleet.ClockSkewer.
// Between the agent and its executors sits a layer of the fleet's own, installed through agent.Options.Wrap: a
// gate that freezes (every call waits) or cuts the power (every call fails), and a hook whose executors a fault can
// swap while the agent runs.
package inproc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/fleet/link"
)

// TransportKind selects how agents reach the service.
type TransportKind int

// The transports.
const (
	// TransportHTTP: HTTP to Options.Endpoint through a per-device link proxy.
	TransportHTTP TransportKind = iota
	// TransportMemory: in-process calls to Options.Devices and Options.Objects.
	TransportMemory
	// TransportInProcess: HTTP requests to Options.Endpoint served in process by Options.HTTP.
	TransportInProcess
)

// Options configure a Fleet. Zero fields take the defaults listed; New resolves them all.
type Options struct {
	// Transport is how agents reach the service. Default TransportHTTP.
	Transport TransportKind
	// Endpoint is the service's device API base URL (service.Service.Endpoint). Required for TransportHTTP and
	// TransportInProcess.
	Endpoint string
	// HTTP serves the requests of TransportInProcess (a link.InProcess over the service's handlers). Required for
	// it.
	HTTP http.RoundTripper
	// Devices and Objects are the service's device API and artifact store (service.Service.Devices and
	// .Artifacts). Required for TransportMemory.
	Devices DeviceAPI
	Objects Objects

	// Names name the robots. When empty, Count robots are named Prefix-0001, Prefix-0002, … (Prefix default
	// "robot"). See fleet.Names.
	Names  []string
	Count  int
	Prefix string
	// Architecture is every robot's architecture (X86_64, ARM64, ARMHF). Default X86_64. Architectures overrides
	// it per robot name.
	Architecture  string
	Architectures map[string]string

	// Dir selects the OS family: robot <name> lives in Dir/<name>, which is kept at Close. Empty: the in-memory
	// family.
	Dir string
	// Clock is the robots' time (each robot sees it through its own skew). Default: the real clock. On a
	// virtual-time world's clock every agent is an actor of the world, and the transport must be
	// TransportInProcess or TransportMemory.
	Clock clock.Clock
	// Seed seeds every agent's backoff jitter (mixed with the robot's name).
	Seed uint64
	// OnEvent receives every agent event, tagged with the robot's name, and an EventError when an agent stops on
	// an error of its own. It must not call back into the fleet.
	OnEvent fleet.EventFunc
	// Agent is the template of every agent's options: poll intervals, request and script timeouts, retry
	// backoff, stop grace, bundle size limit, device log. Thing, Architecture, Endpoint, Dir, Executors, Clock,
	// Seed and OnEvent are set by the fleet. Agent.Wrap, when set, wraps each agent's executors beneath the
	// fleet's own layer.
	Agent agent.Options
}

// Fleet is a set of in-process robots.
type Fleet struct {
	fleet.Roster[*Device]
	clock clock.Clock

	closeOnce sync.Once
	closeErr  error
}

var _ fleet.Fleet = (*Fleet)(nil)

// New starts one agent per robot. The agents poll and listen at once; register the robots with the service
// (fleet.RegisterRoboMaker) to give them work. Close stops them.
func New(opts Options) (*Fleet, error) {
	names, err := fleet.Names(opts.Names, opts.Count, opts.Prefix)
	if err != nil {
		return nil, fmt.Errorf("inproc: %w", err)
	}
	switch opts.Transport {
	case TransportHTTP:
		if opts.Endpoint == "" {
			return nil, errors.New("inproc: the HTTP transport needs Endpoint")
		}
	case TransportMemory:
		if opts.Devices == nil || opts.Objects == nil {
			return nil, errors.New("inproc: the memory transport needs Devices and Objects")
		}
	case TransportInProcess:
		if opts.Endpoint == "" || opts.HTTP == nil {
			return nil, errors.New("inproc: the in-process transport needs Endpoint and HTTP")
		}
	default:
		return nil, fmt.Errorf("inproc: unknown transport %d", opts.Transport)
	}
	if opts.Transport == TransportHTTP && clock.WorldOf(opts.Clock) != nil {
		return nil, errors.New("inproc: the HTTP transport uses sockets, which a virtual-time world cannot wait on: " +
			"use TransportInProcess")
	}
	archs, err := fleet.Architectures(names, opts.Architecture, opts.Architectures)
	if err != nil {
		return nil, fmt.Errorf("inproc: %w", err)
	}
	opts.Clock = clock.Or(opts.Clock)
	roster, err := fleet.StartRoster(opts.Clock, names, func(name string) (*Device, error) {
		return newDevice(&opts, name, archs[name])
	}, (*Device).close)
	if err != nil {
		return nil, fmt.Errorf("inproc: %w", err)
	}
	return &Fleet{Roster: roster, clock: opts.Clock}, nil
}

// Close stops every agent — a frozen one is thawed first — stops the applications of the OS family gracefully,
// and closes the link proxies. Robot directories are kept. It is safe to call more than once.
func (f *Fleet) Close() error {
	f.closeOnce.Do(func() { f.closeErr = fleet.StopAll(f.clock, f.Robots(), (*Device).close) })
	return f.closeErr
}

// Device is one in-process robot.
type Device struct {
	name, arch string
	dir        string // the OS family's device directory; "" in the in-memory family
	opts       *Options
	clock      *skewClock
	shaper     *link.Shaper
	proxy      *link.Proxy // the HTTP transport's link
	mem        *memStorage // the in-memory family's storage, kept across restarts

	// life serialises the lifecycle: Crash, Restart, Freeze, Thaw, close. It is held while the agent stops, so it
	// is a lock of the clock's (in a world, a sync.Mutex held across that wait would stall it).
	life *clock.Mutex
	// mu guards the fields below, for quick reads that must not wait on a lifecycle change.
	mu     sync.Mutex
	run    *incarnation // nil while crashed or closed
	wrap   func(agent.Executors) agent.Executors
	closed bool
}

var (
	_ fleet.Crasher      = (*Device)(nil)
	_ fleet.Freezer      = (*Device)(nil)
	_ fleet.ExecutorHook = (*Device)(nil)
	_ fleet.Linker       = (*Device)(nil)
	_ fleet.ClockSkewer  = (*Device)(nil)
)

// memStorage is what survives a crash in the in-memory family: the robot's "disk".
type memStorage struct {
	state     *agent.MemoryState
	versions  *agent.MemoryVersions
	downloads agent.Downloader
}

// incarnation is one run of a robot's agent, from start to crash or close.
type incarnation struct {
	agent   *agent.Agent
	gate    *gate
	layer   *layer
	base    agent.Executors // as the agent resolved them, beneath the layer
	cancel  context.CancelFunc
	done    chan struct{} // closed when Run has returned
	crashed atomic.Bool
}

func newDevice(opts *Options, name, arch string) (*Device, error) {
	d := &Device{name: name, arch: arch, opts: opts, clock: &skewClock{base: opts.Clock}, life: clock.NewMutex(opts.Clock)}
	d.shaper = link.NewShaper(d.clock)
	if opts.Dir != "" {
		d.dir = filepath.Join(opts.Dir, name)
		if err := os.MkdirAll(d.dir, 0o755); err != nil {
			return nil, fmt.Errorf("robot %s: %w", name, err)
		}
	} else {
		d.mem = &memStorage{state: agent.NewMemoryState(), versions: agent.NewMemoryVersions(opts.Agent.MaxBundleBytes),
			downloads: agent.NewMemoryDownloader()}
	}
	if opts.Transport == TransportHTTP {
		p, err := link.NewProxy(opts.Endpoint, d.shaper)
		if err != nil {
			return nil, fmt.Errorf("robot %s: %w", name, err)
		}
		d.proxy = p
	}
	d.life.Lock()
	defer d.life.Unlock()
	if err := d.start(); err != nil {
		if d.proxy != nil {
			d.proxy.Close()
		}
		return nil, err
	}
	return d, nil
}

// start runs a new incarnation of the agent on the robot's storage. The caller holds d.life.
func (d *Device) start() error {
	inc := &incarnation{gate: newGate(d.clock), done: make(chan struct{})}
	ao := d.opts.Agent
	ao.Thing, ao.Architecture, ao.Dir, ao.Clock, ao.Seed = d.name, d.arch, d.dir, d.clock, d.opts.Seed
	ao.Executors = agent.Executors{}
	switch d.opts.Transport {
	case TransportHTTP:
		ao.Endpoint = d.proxy.URL()
	case TransportMemory:
		ao.Executors.Transport = NewMemoryTransport(d.name, d.opts.Devices, d.opts.Objects, d.shaper)
	case TransportInProcess:
		t, err := newLocalTransport(d.opts.Endpoint, d.name, d.opts.HTTP, d.shaper)
		if err != nil {
			return fmt.Errorf("robot %s: %w", d.name, err)
		}
		ao.Executors.Transport = t
	}
	if d.mem != nil {
		ao.Executors.State, ao.Executors.Versions, ao.Executors.Downloader = d.mem.state, d.mem.versions, d.mem.downloads
		ao.Executors.Launcher = agent.NewSimLauncher() // nothing runs after a power cut until the agent relaunches it
	}
	if on := d.opts.OnEvent; on != nil {
		ao.OnEvent = func(e agent.Event) { on(d.name, e) }
	}
	inner := d.opts.Agent.Wrap
	// d.mu is held from reading the wrap to publishing the incarnation, so a SetExecutorWrap in between is not
	// lost. agent.New calls nothing of the device's but Wrap.
	d.mu.Lock()
	ao.Wrap = func(ex agent.Executors) agent.Executors {
		if inner != nil {
			ex = inner(ex)
		}
		inc.base = ex
		inc.layer = newLayer(inc.gate, ex, d.wrap)
		return inc.layer.executors()
	}
	a, err := agent.New(ao)
	if err != nil {
		d.mu.Unlock()
		return fmt.Errorf("robot %s: %w", d.name, err)
	}
	inc.agent = a
	d.run = inc
	d.mu.Unlock()
	ctx, cancel := clock.WithCancel(d.clock, context.Background())
	inc.cancel = cancel
	clock.Go(d.clock, d.name+" agent", func() {
		defer close(inc.done)
		if err := a.Run(ctx); err != nil && !inc.crashed.Load() && d.opts.OnEvent != nil {
			d.opts.OnEvent(d.name, agent.Event{Time: d.clock.Now(), Kind: agent.EventError, Thing: d.name,
				Err: fmt.Errorf("agent stopped: %w", err)})
		}
	})
	return nil
}

// stopped waits until the incarnation's agent has returned from Run.
func (d *Device) stopped(inc *incarnation) {
	clock.Wait(nil, d.clock, clock.Forever, clock.Done(inc.done))
}

// Name implements fleet.Device.
func (d *Device) Name() string { return d.name }

// Architecture implements fleet.Device.
func (d *Device) Architecture() string { return d.arch }

// Dir returns the robot's device directory; "" in the in-memory family.
func (d *Device) Dir() string { return d.dir }

// Endpoint is the URL the agent speaks HTTP to — its link proxy's — or "" on the memory transport.
func (d *Device) Endpoint() string {
	if d.proxy == nil {
		return ""
	}
	return d.proxy.URL()
}

// State reads the robot's saved device state from its storage, whether the agent runs or not.
func (d *Device) State() (agent.DeviceState, error) {
	if d.mem != nil {
		return d.mem.state.Load()
	}
	return agent.NewFileState(filepath.Join(d.dir, "state.json")).Load()
}

// App returns the job id of the version whose application the robot runs, "" when none (or while it is
// down). It asks the launcher directly, so it answers while the agent is frozen.
func (d *Device) App() string {
	d.mu.Lock()
	inc := d.run
	d.mu.Unlock()
	if inc == nil || inc.base.Launcher == nil {
		return ""
	}
	return agent.VersionJob(inc.base.Launcher.Running())
}

// Running implements fleet.Crasher.
func (d *Device) Running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.run != nil
}

// Crash cuts the robot's power: from this instant every executor call of the agent fails, the OS family's
// application is killed with its whole process group (stopped first, so it cannot react to the signals that
// follow), running scripts are killed, and the agent is dropped without any cleanup. The on-device storage is
// kept as it was. Restart boots it again.
func (d *Device) Crash() error {
	d.life.Lock()
	defer d.life.Unlock()
	d.mu.Lock()
	inc := d.run
	d.run = nil
	d.mu.Unlock()
	if inc == nil {
		return fmt.Errorf("crash %s: not running", d.name)
	}
	inc.crashed.Store(true)
	inc.gate.kill()
	powerOff(inc.base.Launcher)
	inc.cancel()
	d.stopped(inc)
	powerOff(inc.base.Launcher) // an application started in the instant before the cut
	inc.agent.Close()           // releases the device log and connections; stopping the application fails at the gate
	return nil
}

// Restart boots a crashed robot: a new agent on the same storage, which relaunches the committed application
// and resumes the execution it was in. It fails when the robot runs or the fleet is closed, or when ctx has
// ended.
func (d *Device) Restart(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("restart %s: %w", d.name, err)
	}
	d.life.Lock()
	defer d.life.Unlock()
	d.mu.Lock()
	running, closed := d.run != nil, d.closed
	d.mu.Unlock()
	switch {
	case closed:
		return fmt.Errorf("restart %s: the fleet is closed", d.name)
	case running:
		return fmt.Errorf("restart %s: already running", d.name)
	}
	return d.start()
}

// Freeze makes the agent stop answering: every executor and transport call, from the next one on, waits until
// Thaw — whatever its own timeouts say. Its application (OS family) keeps running. Freezing a frozen or crashed
// robot is an error; a crash ends the freeze.
func (d *Device) Freeze() error {
	d.life.Lock()
	defer d.life.Unlock()
	inc := d.current()
	if inc == nil {
		return fmt.Errorf("freeze %s: not running", d.name)
	}
	if !inc.gate.freeze() {
		return fmt.Errorf("freeze %s: already frozen", d.name)
	}
	return nil
}

// Thaw lets a frozen agent carry on exactly where it was.
func (d *Device) Thaw() error {
	d.life.Lock()
	defer d.life.Unlock()
	inc := d.current()
	if inc == nil {
		return fmt.Errorf("thaw %s: not running", d.name)
	}
	if !inc.gate.thaw() {
		return fmt.Errorf("thaw %s: not frozen", d.name)
	}
	return nil
}

// Frozen reports whether the robot is frozen.
func (d *Device) Frozen() bool {
	inc := d.current()
	return inc != nil && inc.gate.isFrozen()
}

func (d *Device) current() *incarnation {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.run
}

// SetExecutorWrap implements fleet.ExecutorHook. The wrap is given the agent's own executors and applies to every
// call from now on, across restarts, until replaced; nil removes it. Fields it leaves nil keep the agent's own.
func (d *Device) SetExecutorWrap(wrap func(agent.Executors) agent.Executors) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.wrap = wrap
	if d.run != nil {
		d.run.layer.setWrap(wrap)
	}
}

// SetLink implements fleet.Linker.
func (d *Device) SetLink(l fleet.Link) { d.shaper.Set(l) }

// Link returns the robot's link shaper, for its counts.
func (d *Device) Link() *link.Shaper { return d.shaper }

// SetClockSkew implements fleet.ClockSkewer: the agent's clock reads d ahead of the fleet's (behind when
// negative). Durations — timers, latency, bandwidth — are not affected.
func (d *Device) SetClockSkew(skew time.Duration) { d.clock.skew.Store(int64(skew)) }

// Now returns the time on the robot's clock.
func (d *Device) Now() time.Time { return d.clock.Now() }

// close stops the agent for good: thawed, canceled, its application stopped gracefully by agent.Close.
func (d *Device) close() error {
	d.life.Lock()
	defer d.life.Unlock()
	d.mu.Lock()
	inc := d.run
	d.run, d.closed = nil, true
	d.mu.Unlock()
	var err error
	if inc != nil {
		inc.gate.thaw()
		inc.cancel()
		d.stopped(inc)
		err = inc.agent.Close()
	}
	if d.proxy != nil {
		err = errors.Join(err, d.proxy.Close())
	}
	if err != nil {
		return fmt.Errorf("close %s: %w", d.name, err)
	}
	return nil
}

// skewClock is the robot's clock: the fleet's, read skew ahead.
type skewClock struct {
	base clock.Clock
	skew atomic.Int64
}

func (c *skewClock) Now() time.Time { return c.base.Now().Add(time.Duration(c.skew.Load())) }

func (c *skewClock) NewTimer(d time.Duration) clock.Timer { return c.base.NewTimer(d) }

// World returns the virtual-time world of the fleet's clock, if it is one: the robot's goroutines are its actors.
func (c *skewClock) World() *clock.World { return clock.WorldOf(c.base) }
