package harness

import (
	"context"
	"fmt"
	"time"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/fleet/container"
	"github.com/fleetlab/fleetlab/sim/fleet/process"
)

// ContainerTimeScale is the time scale of an environment on the Container backend that names none: policy time
// runs 60 times faster than the wall clock, so a ten-minute robot timeout is ten seconds — room for a few of the
// agents' two-second request timeouts, which a robot cut off by a partition waits out before it retries.
const ContainerTimeScale = 60

// TimeScaler is a Backend whose robots need policy time compressed less than DefaultTimeScale: an environment
// on it that names no time scale runs at DefaultTimeScale().
type TimeScaler interface {
	DefaultTimeScale() float64
}

// Container hosts each robot as a fleetlab-agent container (sim/fleet/container) on a Docker engine — or on
// several, the robots spread over them — each on a Docker network of the run's, with its device directory on a
// volume, reaching the service through a link proxy on this machine. The robots can crash (docker kill, then
// start), freeze (docker pause), be partitioned (disconnected from their network), be slowed (docker update of
// CPU and memory) and have their links shaped; their pre- and post-launch scripts can be failed (the file is
// replaced on the volume) and every strike at a step is exact (the link proxy holds the answer to the step's
// report). Faults that wrap the agent's downloads or skew its clock are refused when armed.
//
// The agents keep wall-clock time: their timings are divided by the time scale, as for Process, and an
// environment that names no time scale runs at ContainerTimeScale.
type Container struct {
	// Binary is the static fleetlab-agent program the robot image is built with (process.Build it once in
	// TestMain); empty builds it for the fleet.
	Binary string
	// Engines are the Docker engines (default: the one DOCKER_HOST names).
	Engines []container.Engine
	// Agent gives the agents' timings (see process.Options.Agent).
	Agent agent.Options
	// Limits are every robot's CPU and memory (default: one CPU, 256 MiB).
	Limits fleet.Limits
}

var (
	_ Backend    = Container{}
	_ TimeScaler = Container{}
)

// Name implements Backend.
func (b Container) Name() string { return "container" }

// DevicesOverHTTP implements Backend: the agents speak HTTP through their link proxies.
func (b Container) DevicesOverHTTP() error { return nil }

// DefaultTimeScale implements TimeScaler.
func (b Container) DefaultTimeScale() float64 { return ContainerTimeScale }

// Start implements Backend.
func (b Container) Start(ctx context.Context, s FleetSetup) (fleet.Fleet, error) {
	bin := b.Binary
	if bin == "" {
		var err error
		if bin, err = process.Build(ctx, s.Dir); err != nil {
			return nil, fmt.Errorf("start fleet: %w", err)
		}
	}
	f, err := container.New(ctx, container.Options{Endpoint: s.Endpoint, Engines: b.Engines, Binary: bin,
		Names: s.Names, Architectures: s.Architectures, Clock: s.Clock, Seed: s.Seed, OnEvent: s.OnEvent,
		Agent: scaledAgent(b.Agent, s.Scale), Credentials: s.Credentials, Limits: b.Limits, StopTimeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("start fleet: %w", err)
	}
	return f, nil
}
