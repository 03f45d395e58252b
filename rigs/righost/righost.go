// Package righost hosts a harness fleet on a rig: harness.New(t, harness.WithBackend(righost.Backend{...}))
// and `fleetlab run --rig RIG.yaml` run scenarios on the boards of a rig file, each robot a board whose agent
// speaks the device API over its console. The boards are health-checked first: a board that fails is a rig
// failure and no scenario runs on it.
//
// A board's device is a fleet.Crasher when it has a power line (Crash cuts the power, Restart powers it on and
// waits for the boot prompt) and a fleet.Linker (its bridge calls the service through a link proxy). It cannot
// be frozen or have its executors wrapped: those faults are refused when armed. The rig's own faults —
// power-cut, reset, serial-noise, serial-unplug — come with the backend (see Faults).
//
// It imports the harness, whose Backend it implements; the harness does not import it.
package righost

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/rigs"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// Backend hosts robots on the boards of a rig file.
type Backend struct {
	// Rig is the rig file's path; File, when set, is the parsed file instead.
	Rig  string
	File *rigs.File
	// Agent is the fleetlab-agent program emulated boards run.
	Agent string
	// CheckTimeout bounds the health check (default 2m).
	CheckTimeout time.Duration
}

var (
	_ harness.Backend       = Backend{}
	_ harness.FaultProvider = Backend{}
)

// Name implements harness.Backend.
func (b Backend) Name() string { return "rig" }

// DevicesOverHTTP implements harness.Backend: each bridge calls the service's device API over HTTP.
func (b Backend) DevicesOverHTTP() error { return nil }

// Faults implements harness.FaultProvider.
func (b Backend) Faults() []faults.Definition { return Faults() }

// Start implements harness.Backend: it opens the boards of the robots named, checks each, and returns them as
// a fleet. A board's architecture must be the robot's.
func (b Backend) Start(ctx context.Context, s harness.FleetSetup) (fleet.Fleet, error) {
	f := b.File
	if f == nil {
		var err error
		if f, err = rigs.Load(b.Rig); err != nil {
			return nil, err
		}
	}
	for _, name := range s.Names {
		i := slices.IndexFunc(f.Boards, func(bs rigs.BoardSpec) bool { return bs.Thing == name })
		if i < 0 {
			return nil, fmt.Errorf("rig %s has no board for robot %s (its boards' things: %v)", f.Rig, name, f.Things())
		}
		if a := s.Architectures[name]; a != "" && a != f.Boards[i].Architecture {
			return nil, fmt.Errorf("robot %s is %s but its board %s is %s", name, a, f.Boards[i].Name, f.Boards[i].Architecture)
		}
	}
	r, err := rigs.Open(f, rigs.Options{Endpoint: s.Endpoint, Things: s.Names, Dir: s.Dir, Agent: b.Agent,
		AgentArgs: agentArgs(s.Scale), Clock: s.Clock, Events: s.Events, OnAgentEvent: s.OnEvent, Seed: s.Seed})
	if err != nil {
		return nil, err
	}
	timeout := b.CheckTimeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var errs []error
	for _, h := range r.Check(cctx) {
		if !h.Healthy() {
			errs = append(errs, h.Err)
		}
	}
	if len(errs) > 0 {
		r.Close()
		return nil, fmt.Errorf("rig %s failed its health check: %w", f.Rig, errors.Join(errs...))
	}
	fl := &Fleet{rig: r}
	for _, bd := range r.Boards() {
		fl.devs = append(fl.devs, &Device{b: bd})
	}
	slices.SortFunc(fl.devs, func(x, y *Device) int {
		if x.Name() < y.Name() {
			return -1
		}
		return 1
	})
	return fl, nil
}

// agentArgs are an emulated agent's timings, shrunk by the run's time scale as the process backend does.
func agentArgs(scale float64) []string {
	scale = max(scale, 1)
	shrink := func(d time.Duration) string {
		return max(time.Duration(float64(d)/scale), time.Millisecond).String()
	}
	req := max(time.Duration(float64(2*time.Minute)/scale), 5*time.Second) // a serial line is slow: not less
	return []string{"--poll-min", shrink(5 * time.Second), "--poll-max", shrink(5 * time.Minute),
		"--retry-base", shrink(time.Second), "--retry-max", shrink(time.Minute), "--request-timeout", req.String(),
		"--stop-grace", shrink(10 * time.Second)}
}

// Fleet is a rig's boards as a fleet.
type Fleet struct {
	rig  *rigs.Rig
	devs []*Device
}

var _ fleet.Fleet = (*Fleet)(nil)

// Rig returns the open rig.
func (f *Fleet) Rig() *rigs.Rig { return f.rig }

// Devices implements fleet.Fleet.
func (f *Fleet) Devices() []fleet.Device {
	out := make([]fleet.Device, len(f.devs))
	for i, d := range f.devs {
		out[i] = d
	}
	return out
}

// Device implements fleet.Fleet.
func (f *Fleet) Device(name string) (fleet.Device, bool) {
	for _, d := range f.devs {
		if d.Name() == name {
			return d, true
		}
	}
	return nil, false
}

// Close implements fleet.Fleet: boards off, bridges and ports closed, emulated boards stopped.
func (f *Fleet) Close() error { return f.rig.Close() }

// Device is one board as a robot.
type Device struct{ b *rigs.Board }

var (
	_ fleet.Crasher = (*Device)(nil)
	_ fleet.Linker  = (*Device)(nil)
)

// Board returns the board.
func (d *Device) Board() *rigs.Board { return d.b }

// Name implements fleet.Device: the board's thing.
func (d *Device) Name() string { return d.b.Thing() }

// Architecture implements fleet.Device.
func (d *Device) Architecture() string { return d.b.Spec().Architecture }

// Crash implements fleet.Crasher: it cuts the board's power.
func (d *Device) Crash() error {
	if !d.b.Powered() {
		return fmt.Errorf("crash %s: not running", d.Name())
	}
	return d.b.PowerOff()
}

// Restart implements fleet.Crasher: power on, and wait for the boot prompt.
func (d *Device) Restart(ctx context.Context) error {
	if d.b.Powered() {
		return fmt.Errorf("restart %s: already running", d.Name())
	}
	return d.b.Boot(ctx)
}

// Running implements fleet.Crasher: whether the board has power.
func (d *Device) Running() bool { return d.b.Powered() }

// SetLink implements fleet.Linker.
func (d *Device) SetLink(l fleet.Link) { d.b.Link().Set(l) }
