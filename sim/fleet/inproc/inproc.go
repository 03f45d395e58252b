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
//     own (package link), which is where its link is shaped. With Options.DirectHTTP the agents speak straight to
//     the endpoint instead, with no proxy and HTTP clients shared by the fleet: fewer sockets and one
//     loopback hop instead of two, for fleets whose links are never shaped — shaping such a link is refused
//     (ErrNoLink), never ignored.
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
	"github.com/fleetlab/fleetlab/sim/agent/kinds"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/fleet/link"
)

// TransportKind selects how agents reach the service.
type TransportKind int

// The transports.
const (
	// TransportHTTP: HTTP to Options.Endpoint through a per-device link proxy (straight to it with
	// Options.DirectHTTP).
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
	// DirectHTTP, on TransportHTTP, has every agent speak HTTP straight to Endpoint, with no link proxy of its
	// own, through HTTP clients shared by the fleet (Agent.HTTPClient when set; else, for every 32 robots, a
	// client for their calls and one for their downloads, each with at most 8 connections, which the fleet makes
	// and closes): for large fleets whose links are never shaped, where a proxy and a connection per robot would
	// double the loopback hops and the sockets. Such a robot has no link to shape: SetLink with
	// anything but a healthy link is refused (see Device.ShapeLink), so a link fault can never pass for done.
	// Other transports refuse it (their links cost no socket).
	DirectHTTP bool
	// HTTP serves the requests of TransportInProcess (a link.InProcess over the service's handlers). Required for
	// it.
	HTTP http.RoundTripper
	// Devices and Objects are the service's device API and artifact store (service.Service.Devices and
	// .Artifacts). Required for TransportMemory, whose agents reach the AWS APIs a device's software calls
	// (Greengrass's ResolveComponentCandidates) at Endpoint, over HTTP when given.
	Devices DeviceAPI
	Objects Objects

	// Names name the robots. When empty, Count robots are named Prefix-0001, Prefix-0002, … (Prefix default
	// "robot"). See fleet.Names.
	Names  []string
	Count  int
	Prefix string
	// Architecture is every robot's architecture (amd64, arm64, arm; see fleet.CheckArchitecture). Default
	// amd64. Architectures overrides it per robot name.
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
	// Seed and OnEvent are set by the fleet; Kinds, when nil, by kinds.All. Agent.Wrap, when set, wraps each agent's executors beneath the
	// fleet's own layer.
	Agent agent.Options
}

// Fleet is a set of in-process robots.
type Fleet struct {
	fleet.Roster[*Device]
	clock  clock.Clock
	direct bool
	pools  []pool // DirectHTTP's clients when the fleet made them; their idle connections are closed at Close

	closeOnce sync.Once
	closeErr  error
}

var _ fleet.Fleet = (*Fleet)(nil)

// New starts one agent per robot. The agents poll and listen at once; register the robots with the service (a
// dialect driver of the harness does it) to give them work. Close stops them.
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
	if opts.DirectHTTP && opts.Transport != TransportHTTP {
		return nil, errors.New("inproc: DirectHTTP is an option of TransportHTTP: " +
			"the other transports shape their links without a socket")
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
	if opts.Transport == TransportMemory {
		opts.Devices, opts.Objects = behindDoor(opts.Devices, opts.Objects, opts.Clock)
	}
	var pools []pool
	if opts.DirectHTTP && opts.Agent.HTTPClient == nil {
		pools = sharedPools(len(names))
	}
	i := 0
	roster, err := fleet.StartRoster(opts.Clock, names, func(name string) (*Device, error) {
		var p pool
		if len(pools) > 0 {
			p = pools[i%len(pools)]
		}
		i++
		return newDevice(&opts, name, archs[name], p)
	}, (*Device).close)
	if err != nil {
		closeIdle(pools)
		return nil, fmt.Errorf("inproc: %w", err)
	}
	return &Fleet{Roster: roster, clock: opts.Clock, direct: opts.DirectHTTP, pools: pools}, nil
}

// robotsPerTransport is how many robots of a DirectHTTP fleet share one pool of HTTP connections. One pool for
// the whole fleet serializes every request on its lock (pprof: at 2,000 robots the most contended lock of the
// run, ahead of the engine's, and a quarter more CPU); one a robot, 8, 32 or 128 robots a pool cost the same
// CPU, and 32 keeps the pools few.
const robotsPerTransport = 32

// connsPerPool bounds the connections of each of a pool's two clients. A connection a robot has no request on
// is the next robot's, so 16 robots share one. Fewer connections cost less CPU a request, each carrying more
// requests back to back: with one a robot, 2,000 robots kept 2,000 connections and their 8,000 goroutines; with
// 8 a pool, each request cost a quarter more CPU than with 2 and 2,000 robots made 23 % fewer requests a
// second (six paired runs; pprof: scheduling, stack scans); 1 a pool is no cheaper than 2.
const connsPerPool = 2

// pool is the HTTP clients a group of robots of a DirectHTTP fleet share: api for their data-plane and AWS
// calls, objects for their downloads. Downloads have their own: a download keeps its connection while the
// agent reports its progress, and with one bounded client, robots each holding a download and waiting for a
// connection to report on would wait for each other forever.
type pool struct{ api, objects *http.Client }

// sharedPools are the pools of a DirectHTTP fleet of n robots, one per robotsPerTransport of them:
// http.DefaultTransport's settings, at most connsPerPool connections a client, all kept when idle.
func sharedPools(n int) []pool {
	client := func() *http.Client {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxConnsPerHost, t.MaxIdleConnsPerHost = connsPerPool, connsPerPool
		// The service never compresses an answer; asking for gzip cost a header on every request.
		t.DisableCompression = true
		return &http.Client{Transport: t}
	}
	out := make([]pool, (n+robotsPerTransport-1)/robotsPerTransport)
	for i := range out {
		out[i] = pool{api: client(), objects: client()}
	}
	return out
}

// closeIdle closes the idle connections of the pools' clients.
func closeIdle(pools []pool) {
	for _, p := range pools {
		p.api.CloseIdleConnections()
		p.objects.CloseIdleConnections()
	}
}

// ErrNoLink is the error of shaping the link of a robot of a DirectHTTP fleet: it speaks straight to the
// service, with no link proxy to cut, slow, or make lossy.
var ErrNoLink = errors.New("the robots of a DirectHTTP fleet (inproc.Options.DirectHTTP) speak straight to " +
	"the service and have no link to shape: start the fleet without DirectHTTP (a link proxy per robot) for link faults")

// Direct reports whether the fleet's robots speak straight to the service (Options.DirectHTTP).
func (f *Fleet) Direct() bool { return f.direct }

// Close stops every agent — a frozen one is thawed first — stops the applications of the OS family gracefully,
// and closes the link proxies (on the direct path, the idle connections of the HTTP transports the fleet made).
// Robot directories are kept. It is safe to call more than once.
func (f *Fleet) Close() error {
	f.closeOnce.Do(func() {
		f.closeErr = fleet.StopAll(f.clock, f.Robots(), (*Device).close)
		closeIdle(f.pools)
	})
	return f.closeErr
}

// Device is one in-process robot.
type Device struct {
	name, arch string
	dir        string // the OS family's device directory; "" in the in-memory family
	opts       *Options
	clock      *skewClock
	shaper     *link.Shaper // nil on the direct path (Options.DirectHTTP), which has no link
	proxy      *link.Proxy  // the HTTP transport's link; nil on the direct path
	pool       pool         // the direct path's clients, shared with other robots (zero: the agent's default)
	mem        *memStorage  // the in-memory family's storage, kept across restarts

	// life is the robot's lifecycle: its current incarnation, frozen or not, closed or not. Crash, Restart,
	// Freeze, Thaw and close are its lifecycle calls. Its lock is held while the agent stops, so it is a lock
	// of the clock's (in a world, a sync.Mutex held across that wait would stall it).
	life *fleet.Life[incarnation]
	// mu guards wrap, for quick reads that must not wait on a lifecycle change.
	mu   sync.Mutex
	wrap func(agent.Executors) agent.Executors
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

func newDevice(opts *Options, name, arch string, p pool) (*Device, error) {
	d := &Device{name: name, arch: arch, opts: opts, pool: p, clock: &skewClock{base: opts.Clock}, life: fleet.NewLife[incarnation](name, clock.NewMutex(opts.Clock))}
	if !opts.DirectHTTP {
		d.shaper = link.NewShaper(d.clock)
	}
	if opts.Dir != "" {
		d.dir = filepath.Join(opts.Dir, name)
		if err := os.MkdirAll(d.dir, 0o755); err != nil {
			return nil, fmt.Errorf("robot %s: %w", name, err)
		}
	} else {
		d.mem = &memStorage{state: agent.NewMemoryState(), versions: agent.NewMemoryVersions(opts.Agent.MaxBundleBytes),
			downloads: agent.NewMemoryDownloader()}
	}
	if opts.Transport == TransportHTTP && !opts.DirectHTTP {
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
	if ao.Kinds == nil {
		ao.Kinds = kinds.All()
	}
	ao.Executors = agent.Executors{}
	switch d.opts.Transport {
	case TransportHTTP:
		ao.Endpoint = d.opts.Endpoint
		if d.proxy != nil {
			ao.Endpoint = d.proxy.URL()
		}
		if d.pool.api != nil {
			ao.HTTPClient, ao.ObjectHTTPClient = d.pool.api, d.pool.objects
		}
	case TransportMemory:
		mt := NewMemoryTransport(d.name, d.opts.Devices, d.opts.Objects, d.shaper)
		if d.opts.Endpoint != "" {
			if _, err := mt.WithAWS(d.opts.Endpoint, d.opts.HTTP); err != nil {
				return fmt.Errorf("robot %s: %w", d.name, err)
			}
		}
		ao.Executors.Transport = mt
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
	d.life.Started(inc)
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

// Endpoint is the URL the agent speaks HTTP to — its link proxy's, the service's on the direct path — or "" on
// the memory and in-process transports.
func (d *Device) Endpoint() string {
	switch {
	case d.proxy != nil:
		return d.proxy.URL()
	case d.opts.DirectHTTP:
		return d.opts.Endpoint
	}
	return ""
}

// State reads the robot's saved device state from its storage, whether the agent runs or not.
func (d *Device) State() (agent.DeviceState, error) {
	if d.mem != nil {
		return d.mem.state.Load()
	}
	return agent.NewFileState(filepath.Join(d.dir, "state.json")).Load()
}

// Versions returns the robot's on-device version store, read from its storage whether the agent runs or not:
// what a test opens to see the files of the version the robot runs (Versions.Active).
func (d *Device) Versions() (agent.Versions, error) {
	if d.mem != nil {
		return d.mem.versions, nil
	}
	return agent.NewDirVersions(d.dir, 0)
}

// App returns the job id of the version whose application the robot runs, "" when none (or while it is
// down). It asks the launcher directly, so it answers while the agent is frozen.
func (d *Device) App() string {
	inc := d.life.Current()
	if inc == nil || inc.base.Launcher == nil {
		return ""
	}
	return agent.VersionJob(inc.base.Launcher.Running())
}

// Running implements fleet.Crasher.
func (d *Device) Running() bool { return d.life.Running() }

// Crash cuts the robot's power: from this instant every executor call of the agent fails, the OS family's
// application is killed with its whole process group (stopped first, so it cannot react to the signals that
// follow), running scripts are killed, and the agent is dropped without any cleanup. The on-device storage is
// kept as it was. Restart boots it again.
func (d *Device) Crash() error {
	return d.life.Stop("crash", func(inc *incarnation) error {
		d.life.Ended(inc)
		inc.crashed.Store(true)
		inc.gate.kill()
		powerOff(inc.base.Launcher)
		inc.cancel()
		d.stopped(inc)
		powerOff(inc.base.Launcher) // an application started in the instant before the cut
		inc.agent.Close()           // releases the device log and connections; stopping the application fails at the gate
		return nil
	})
}

// Restart boots a crashed robot: a new agent on the same storage, which relaunches the committed application
// and resumes the execution it was in. It fails when the robot runs or the fleet is closed, or when ctx has
// ended.
func (d *Device) Restart(ctx context.Context) error { return d.life.Restart(ctx, d.start) }

// Freeze makes the agent stop answering: every executor and transport call, from the next one on, waits until
// Thaw — whatever its own timeouts say. Its application (OS family) keeps running. Freezing a frozen or crashed
// robot is an error; a crash ends the freeze.
func (d *Device) Freeze() error {
	return d.life.SetFrozen(true, func(inc *incarnation) error {
		inc.gate.freeze() // the lifecycle lock held, nothing else freezes or thaws it meanwhile
		return nil
	})
}

// Thaw lets a frozen agent carry on exactly where it was.
func (d *Device) Thaw() error {
	return d.life.SetFrozen(false, func(inc *incarnation) error {
		inc.gate.thaw() // the lifecycle lock held, nothing else freezes or thaws it meanwhile
		return nil
	})
}

// Frozen reports whether the robot is frozen.
func (d *Device) Frozen() bool { return d.life.Frozen() }

// SetExecutorWrap implements fleet.ExecutorHook. The wrap is given the agent's own executors and applies to every
// call from now on, across restarts, until replaced; nil removes it. Fields it leaves nil keep the agent's own.
func (d *Device) SetExecutorWrap(wrap func(agent.Executors) agent.Executors) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.wrap = wrap
	if inc := d.life.Current(); inc != nil {
		inc.layer.setWrap(wrap)
	}
}

// ShapeLink sets the robot's link as SetLink does, or refuses: on the direct path (Options.DirectHTTP), which
// has no link, anything but a healthy link is an error wrapping ErrNoLink and changes nothing. A healthy link
// (the zero Link, whatever its Seed) is accepted there: it is what the robot has.
func (d *Device) ShapeLink(l fleet.Link) error {
	if d.shaper == nil {
		if healthy(l) {
			return nil
		}
		return fmt.Errorf("robot %s: link %+v: %w", d.name, l, ErrNoLink)
	}
	d.shaper.Set(l)
	return nil
}

// CanShapeLink reports why the robot's link cannot be shaped (an error wrapping ErrNoLink on the direct path),
// or nil: what a caller asks before it promises a link fault.
func (d *Device) CanShapeLink() error {
	if d.shaper == nil {
		return fmt.Errorf("robot %s: %w", d.name, ErrNoLink)
	}
	return nil
}

// SetLink implements fleet.Linker. On the direct path (Options.DirectHTTP) anything but a healthy link panics
// with ShapeLink's error: fleet.Linker has no error to return, and a link fault that silently did not happen
// would let a test pass that should fail. Callers that can refuse ask CanShapeLink or call ShapeLink first.
func (d *Device) SetLink(l fleet.Link) {
	if err := d.ShapeLink(l); err != nil {
		panic("inproc: " + err.Error())
	}
}

// healthy reports whether l shapes nothing (its Seed aside).
func healthy(l fleet.Link) bool {
	l.Seed = 0
	return l == fleet.Link{}
}

// Link returns the robot's link shaper, for its counts; nil on the direct path, which has no link.
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
	inc, _ := d.life.Closing()
	d.life.Ended(inc)
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

// Base says the robot's timers are the fleet's (clock.AfterFunc then needs no goroutine a call on the real clock).
func (c *skewClock) Base() clock.Clock { return c.base }

// World returns the virtual-time world of the fleet's clock, if it is one: the robot's goroutines are its actors.
func (c *skewClock) World() *clock.World { return clock.WorldOf(c.base) }
