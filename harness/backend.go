package harness

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/fleet/inproc"
	"github.com/fleetlab/fleetlab/sim/fleet/process"
)

// Backend hosts an environment's robots.
type Backend interface {
	// Name names the backend in messages ("inproc", "process").
	Name() string
	// Start starts the fleet of setup.Robots against the service.
	Start(ctx context.Context, setup FleetSetup) (fleet.Fleet, error)
	// DevicesOverHTTP reports why the robots' requests would not reach the service over HTTP (and so escape
	// its HTTP middleware and artifact intercept, and be lost to a restarted service), or nil.
	DevicesOverHTTP() error
}

// VirtualTimeBackend is a Backend whose robots can run on virtual time: their agents live in the test's process
// and block only through package clock, so the environment runs them with the service as one clock.World.
type VirtualTimeBackend interface {
	Backend
	VirtualTime() bool
}

// FleetSetup is what a Backend starts a fleet with: where the service is, the devices to host and the run's
// clock, seed and events. It holds nothing but addresses and in-process ways in, so a host anywhere — goroutines
// here, processes, containers on a remote engine, the boards of a lab rig — can be given one. Registering the
// devices with the service is the dialect's business, not the host's.
type FleetSetup struct {
	// Endpoint is the URL of the service's device API (and of the artifact downloads it hands out).
	Endpoint string
	// Credentials, when set, are the keys the devices sign their requests with (a service that checks
	// signatures); nil leaves requests unsigned. Hosts whose agents run the fleetlab-agent program pass them
	// on; the in-process host's agents share the service's process and never sign.
	Credentials *agent.Credentials
	// Names are the robots' names, sorted; Architectures maps each name to its architecture.
	Names         []string
	Architectures map[string]string
	// Clock is the run's clock; the robots keep time by it: a clock.World on virtual time. Scale is how much
	// faster than the wall clock it runs on scaled wall time, for backends whose agents keep real time and must
	// have their timings shrunk to match; 0 on virtual time.
	Clock clock.Clock
	Scale float64
	// HTTP, on virtual time, serves the robots' requests in process (link.InProcess, through the service's whole
	// handler chain): the robots must use it, not the sockets of Endpoint.
	HTTP http.RoundTripper
	// InMemory, for a host in the test's process, is the service's device API and artifact store called
	// without HTTP at all, for very large fleets (InProc{Transport: InMemory}).
	InMemory *InMemoryService
	// Seed is the run's seed.
	Seed uint64
	// Dir is a directory the backend may use for the robots' storage; removed at cleanup.
	Dir string
	// OnEvent receives every agent event.
	OnEvent fleet.EventFunc
	// Events is the run's event stream, for what a backend sees besides agent events (a board's console).
	Events event.Sink
}

// InMemoryService is the service's device API and artifact store as a host in the test's process calls them.
type InMemoryService struct {
	Devices inproc.DeviceAPI
	Objects inproc.Objects
}

// Executors are what a robot's agent runs its steps with.
type Executors int

// The executors of InProc.
const (
	// Simulated executors keep the robot's state, downloads and versions in memory, interpret its scripts and
	// record its launch: thousands of robots in one process.
	Simulated Executors = iota
	// Real executors give each robot files under the environment's directory and run its scripts and its
	// application as real processes.
	Real
)

// Transport is how a robot's agent reaches the service.
type Transport int

// The transports of InProc.
const (
	// HTTP requests reach the service's HTTP listener (served in process on virtual time, through the whole
	// handler chain), so every fault the service's middleware plays applies.
	HTTP Transport = iota
	// InMemory calls the service's device API and artifact store in process, without HTTP, for very large
	// fleets: cloud faults on device requests and service-restart need HTTP and refuse to arm.
	InMemory
)

// InProc hosts robots as goroutines in the test's process (sim/fleet/inproc): the default backend. Its robots
// can do every fault of the catalog, and run on virtual time.
type InProc struct {
	// Executors are the robots' agent executors (default Simulated).
	Executors Executors
	// Transport is how the robots reach the service (default HTTP).
	Transport Transport
	// Agent is the template of every agent's options (see inproc.Options.Agent). Zero durations get the
	// harness's defaults: a request timeout of two minutes of policy time, so a loaded test machine is not
	// mistaken for a slow link.
	Agent agent.Options
	// Direct, with the HTTP transport, has the robots speak straight to the service's listener, with no link
	// proxy between (inproc.Options.DirectHTTP): one loopback hop a request instead of two, for fleets whose
	// links are never shaped. Link faults are refused on it (inproc.ErrNoLink), and it runs on the wall clock.
	Direct bool
}

var _ VirtualTimeBackend = InProc{}

// Name implements Backend.
func (b InProc) Name() string { return "inproc" }

// VirtualTime implements VirtualTimeBackend.
func (b InProc) VirtualTime() bool { return !b.Direct } // the direct path's sockets cannot be waited on in a world

// DevicesOverHTTP implements Backend.
func (b InProc) DevicesOverHTTP() error {
	if b.Transport == InMemory {
		return errors.New("backend inproc runs its robots on the in-memory transport: their requests never cross the service's HTTP listener (use InProc{Transport: HTTP})")
	}
	return nil
}

// Start implements Backend.
func (b InProc) Start(_ context.Context, s FleetSetup) (fleet.Fleet, error) {
	opts := inproc.Options{Names: s.Names, Architectures: s.Architectures, Clock: s.Clock, Seed: s.Seed,
		OnEvent: s.OnEvent, Agent: b.Agent, Endpoint: s.Endpoint}
	if opts.Agent.RequestTimeout == 0 {
		opts.Agent.RequestTimeout = 2 * time.Minute
	}
	switch b.Executors {
	case Simulated:
	case Real:
		opts.Dir = s.Dir
	default:
		return nil, fmt.Errorf("start fleet: executors %d: want Simulated or Real", b.Executors)
	}
	switch {
	case b.Transport != HTTP && b.Transport != InMemory:
		return nil, fmt.Errorf("start fleet: transport %d: want HTTP or InMemory", b.Transport)
	case b.Direct && (b.Transport != HTTP || s.HTTP != nil):
		return nil, errors.New("start fleet: the direct path (InProc.Direct) is the HTTP transport over sockets on the wall clock, " +
			"which a virtual-time world cannot wait on")
	case b.Direct:
		opts.Transport, opts.DirectHTTP = inproc.TransportHTTP, true
	case b.Transport == InMemory:
		opts.Transport = inproc.TransportMemory
		if s.InMemory == nil {
			return nil, errors.New("start fleet: the in-memory transport needs the service in process (FleetSetup.InMemory)")
		}
		opts.Devices, opts.Objects, opts.HTTP = s.InMemory.Devices, s.InMemory.Objects, s.HTTP
	case s.HTTP != nil:
		opts.Transport, opts.HTTP = inproc.TransportInProcess, s.HTTP
	}
	f, err := inproc.New(opts)
	if err != nil {
		return nil, fmt.Errorf("start fleet: %w", err)
	}
	return f, nil
}

// Process hosts each robot as a fleetlab-agent OS process (sim/fleet/process), with the agent's OS executors:
// real files, real scripts, the application as a real process. Its robots can crash (SIGKILL), freeze
// (SIGSTOP) and have their links shaped; faults that wrap the agent's executors (script-exit, slow-step,
// disk-full) or skew its clock are refused when armed, since the agent runs in another process.
//
// The agents keep wall-clock time, so the environment runs on scaled wall time, and their timings — polling,
// retries, request and script timeouts — are divided by its time scale unless Agent sets them.
type Process struct {
	// Binary is the fleetlab-agent program (process.Build it once in TestMain); empty builds it for the fleet.
	Binary string
	// Agent gives the agents' timings (see process.Options.Agent).
	Agent agent.Options
}

var _ Backend = Process{}

// Name implements Backend.
func (b Process) Name() string { return "process" }

// DevicesOverHTTP implements Backend: the agents speak HTTP through their link proxies.
func (b Process) DevicesOverHTTP() error { return nil }

// Start implements Backend.
func (b Process) Start(ctx context.Context, s FleetSetup) (fleet.Fleet, error) {
	f, err := process.New(ctx, process.Options{Endpoint: s.Endpoint, Binary: b.Binary, Dir: s.Dir, Names: s.Names,
		Architectures: s.Architectures, Clock: s.Clock, Seed: s.Seed, OnEvent: s.OnEvent,
		Agent: scaledAgent(b.Agent, s.Scale), Credentials: s.Credentials, StopTimeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("start fleet: %w", err)
	}
	return f, nil
}

// scaledAgent fills the timings a left zero with the agent's defaults divided by scale, for agents that keep
// wall-clock time while the service runs scale times faster.
func scaledAgent(a agent.Options, scale float64) agent.Options {
	scale = max(scale, 1)
	shrink := func(d *time.Duration, policy time.Duration) {
		if *d == 0 {
			*d = max(time.Duration(float64(policy)/scale), time.Millisecond)
		}
	}
	shrink(&a.PollMin, 5*time.Second)
	shrink(&a.PollMax, 5*time.Minute)
	shrink(&a.RetryBase, time.Second)
	shrink(&a.RetryMax, time.Minute)
	shrink(&a.RequestTimeout, 2*time.Minute)
	if a.RequestTimeout < 2*time.Second {
		a.RequestTimeout = 2 * time.Second // a real process on a loaded machine: not less
	}
	shrink(&a.StopGrace, 10*time.Second)
	return a
}
