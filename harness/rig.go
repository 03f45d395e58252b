package harness

import (
	"context"
	"fmt"
	"time"

	"github.com/fleetlab/fleetlab/rigs"
	"github.com/fleetlab/fleetlab/rigs/righost"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// Rig hosts each robot on a board of a rig file (rigs/righost): its agent runs on the board and speaks the
// device API over the board's serial console, through the rig's bridge to the service. The boards are checked
// before anything runs; a board that fails is an infrastructure failure, not the product's.
//
// A board can do what its lines allow: crash and power-cut with a power line, reset with a reset line, and
// serial-noise, serial-unplug, the link faults and step-exact strikes (through its bridge's link proxy) on
// every board. Faults that wrap the agent's executors, freeze it or skew its clock are refused when armed.
//
// The emulated boards' agents keep wall-clock time, so their timings are divided by the environment's time
// scale, as the process backend's are; a call's timeout is never below 5s, the time a serial line at 115200
// baud needs for a request and its answer under noise.
type Rig struct {
	// File is the rig file (rigs.Load); Path, when File is nil, is where to load it from.
	File *rigs.File
	Path string
	// Agent is the fleetlab-agent program emulated boards run (process.Build it once in TestMain).
	Agent string
	// CheckTimeout bounds the boards' health check (default 2m).
	CheckTimeout time.Duration
	// GPIO opens the real boards' lines (default: the Linux GPIO character devices).
	GPIO rigs.GPIO
}

var _ Backend = Rig{}

// Name implements Backend.
func (b Rig) Name() string { return "rig" }

// DevicesOverHTTP implements Backend: each board's bridge calls the service's device API over HTTP.
func (b Rig) DevicesOverHTTP() error { return nil }

// Start implements Backend.
func (b Rig) Start(ctx context.Context, s FleetSetup) (fleet.Fleet, error) {
	f := b.File
	if f == nil {
		var err error
		if f, err = rigs.Load(b.Path); err != nil {
			return nil, fmt.Errorf("start rig fleet: %w", err)
		}
	}
	timings := scaledAgent(agent.Options{}, s.Scale)
	timings.RequestTimeout = max(timings.RequestTimeout, 5*time.Second)
	fl, err := righost.Start(ctx, righost.Options{File: f, Agent: b.Agent, Endpoint: s.Endpoint, Names: s.Names,
		Architectures: s.Architectures, Clock: s.Clock, AgentTimings: timings, Seed: s.Seed, Dir: s.Dir,
		OnEvent: s.OnEvent, Events: s.Events, CheckTimeout: b.CheckTimeout, GPIO: b.GPIO})
	if err != nil {
		return nil, fmt.Errorf("start rig fleet: %w", err)
	}
	return fl, nil
}
