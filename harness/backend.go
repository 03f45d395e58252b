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
	"github.com/fleetlab/fleetlab/sim/service"
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

// FleetSetup is what a Backend starts a fleet with.
type FleetSetup struct {
	// Service is the running service; Endpoint its device API's URL.
	Service  *service.Service
	Endpoint string
	// Names are the robots' names, sorted; Architectures maps each name to its architecture.
	Names         []string
	Architectures map[string]string
	// Clock is the run's clock; the robots keep time by it: a clock.World on virtual time. Scale is how much
	// faster than the wall clock it runs on scaled wall time, for backends whose agents keep real time and must
	// have their timings shrunk to match; 0 on virtual time.
	Clock clock.Clock
	Scale float64
	// HTTP, on virtual time, serves the robots' requests in process (link.InProcess): the robots must use it,
	// not the sockets of Endpoint.
	HTTP http.RoundTripper
	// Seed is the run's seed.
	Seed uint64
	// Dir is a directory the backend may use for the robots' storage; removed at cleanup.
	Dir string
	// OnEvent receives every agent event.
	OnEvent fleet.EventFunc
	// Events is the run's event stream, for what a backend sees besides agent events (a board's console).
	Events event.Sink
}

// InProc hosts robots as goroutines in the test's process (sim/fleet/inproc): the default backend. Its robots
// can do every fault of the catalog, and run on virtual time.
type InProc struct {
	// OS gives each robot the agent's OS executors — files under the environment's directory, scripts and the
	// application as real processes — instead of the in-memory ones.
	OS bool
	// Memory makes robots call the service in process instead of over HTTP, for very large fleets. Cloud faults
	// on device requests and service-restart need HTTP and refuse to arm.
	Memory bool
	// Agent is the template of every agent's options (see inproc.Options.Agent). Zero durations get the
	// harness's defaults: a request timeout of two minutes of policy time, so a loaded test machine is not
	// mistaken for a slow link.
	Agent agent.Options
}

var _ VirtualTimeBackend = InProc{}

// Name implements Backend.
func (b InProc) Name() string { return "inproc" }

// VirtualTime implements VirtualTimeBackend.
func (b InProc) VirtualTime() bool { return true }

// DevicesOverHTTP implements Backend.
func (b InProc) DevicesOverHTTP() error {
	if b.Memory {
		return errors.New("backend inproc runs its robots on the in-memory transport: their requests never cross the service's HTTP listener (use InProc{} without Memory)")
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
	if b.OS {
		opts.Dir = s.Dir
	}
	switch {
	case b.Memory:
		opts.Transport = inproc.TransportMemory
		opts.Devices, opts.Objects = s.Service.Devices, s.Service.Artifacts
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
		Agent: scaledAgent(b.Agent, s.Scale), StopTimeout: 10 * time.Second})
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
