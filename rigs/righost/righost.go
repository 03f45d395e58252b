// Package righost hosts a fleet of robots on the boards of a rig file: each robot is a board whose agent speaks
// the device API over its serial console, through the board's bridge to the service. The boards are
// health-checked first: a board that fails is a rig failure, and no scenario runs on it.
//
// A board's device has the fleet abilities its lines give it, and no others, so a fault that needs a line the
// board lacks is refused when it is armed:
//
//	fleet.Crasher     a power line: Crash cuts the power, Restart powers it on and waits for the boot prompt
//	fleet.Resetter    a reset line (GPIO) or a modem-line reset (DTR/RTS): Reset pulses it
//	fleet.SerialLine  every board: noise and an unplugged cable on its console port, and the line's counts
//	fleet.StepHooker  every board: its bridge calls the service through a link proxy, which holds step reports
//	fleet.Linker      every board: the same proxy shapes the bridge's link to the service
//
// It imports no harness: the harness's rig backend (harness.Rig) starts a fleet here.
package righost

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/fleetlab/fleetlab/rigs"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// Options say which boards host which robots, and what their agents serve.
type Options struct {
	// File is the rig file. Required.
	File *rigs.File
	// Agent is the fleetlab-agent program emulated boards run; required when the robots' boards include one.
	Agent string
	// Endpoint is the service's device API base URL. Required.
	Endpoint string
	// Names are the robots: each must be the thing of one of the file's boards. Architectures, when it has a
	// robot, must match its board's.
	Names         []string
	Architectures map[string]string
	// Clock is the run's clock: it stamps events and times link shapes.
	Clock clock.Clock
	// AgentTimings are the emulated agents' timings (polling, retries, request timeout…): they keep the wall
	// clock, so a run faster than it shrinks them. Zero durations keep the agent's defaults.
	AgentTimings agent.Options
	// Seed seeds the lines' session identifiers and the emulated agents.
	Seed uint64
	// Dir holds the boards' console logs and the emulated boards' storage. Required.
	Dir string
	// OnEvent receives the agents' events; Events the boards' console lines and power changes.
	OnEvent fleet.EventFunc
	Events  event.Sink
	// CheckTimeout bounds the health check (default 2m).
	CheckTimeout time.Duration
	// GPIO opens the real boards' lines (default: the Linux GPIO character devices).
	GPIO rigs.GPIO
}

// Start opens the robots' boards, checks each, and returns them as a fleet. A board that fails its check is a
// *rigs.RigError (among the joined errors).
func Start(ctx context.Context, o Options) (*Fleet, error) {
	f := o.File
	if f == nil {
		return nil, errors.New("rig fleet: no rig file")
	}
	for _, name := range o.Names {
		i := slices.IndexFunc(f.Boards, func(bs rigs.BoardSpec) bool { return bs.Thing == name })
		if i < 0 {
			return nil, fmt.Errorf("rig %s has no board for robot %s (its boards' things: %v)", f.Rig, name, f.Things())
		}
		if a := o.Architectures[name]; a != "" && a != f.Boards[i].Architecture {
			return nil, fmt.Errorf("robot %s is %s but its board %s is %s", name, a, f.Boards[i].Name, f.Boards[i].Architecture)
		}
	}
	r, err := rigs.Open(f, rigs.Options{Endpoint: o.Endpoint, Things: o.Names, Dir: o.Dir, Agent: o.Agent,
		AgentArgs: fleet.AgentTimingFlags(o.AgentTimings), GPIO: o.GPIO, Clock: o.Clock, Events: o.Events, OnAgentEvent: o.OnEvent, Seed: o.Seed})
	if err != nil {
		return nil, err
	}
	timeout := o.CheckTimeout
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
	for _, b := range r.Boards() {
		fl.devs = append(fl.devs, deviceOf(b))
	}
	slices.SortFunc(fl.devs, func(x, y fleet.Device) int {
		if x.Name() < y.Name() {
			return -1
		}
		return 1
	})
	return fl, nil
}

// Fleet is a rig's boards as a fleet.
type Fleet struct {
	rig  *rigs.Rig
	devs []fleet.Device
}

var _ fleet.Fleet = (*Fleet)(nil)

// Rig returns the open rig.
func (f *Fleet) Rig() *rigs.Rig { return f.rig }

// Devices implements fleet.Fleet.
func (f *Fleet) Devices() []fleet.Device { return slices.Clone(f.devs) }

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

// Device is one board as a robot, with the abilities every board has. Board reaches the board itself.
type Device struct{ b *rigs.Board }

var (
	_ fleet.SerialLine = (*Device)(nil)
	_ fleet.StepHooker = (*Device)(nil)
	_ fleet.Linker     = (*Device)(nil)
	_ fleet.Crasher    = poweredDevice{}
	_ fleet.Resetter   = resetDevice{}
	_ fleet.Crasher    = fullDevice{}
	_ fleet.Resetter   = fullDevice{}
)

// deviceOf returns b as a device with the abilities its lines give it.
func deviceOf(b *rigs.Board) fleet.Device {
	d := &Device{b: b}
	spec := b.Spec()
	hasPower, hasReset := spec.Power != nil, spec.Reset != nil || spec.ModemReset != nil
	switch {
	case hasPower && hasReset:
		return fullDevice{d, power{b}, resetLine{b}}
	case hasPower:
		return poweredDevice{d, power{b}}
	case hasReset:
		return resetDevice{d, resetLine{b}}
	}
	return d
}

// Board returns the board.
func (d *Device) Board() *rigs.Board { return d.b }

// Name implements fleet.Device: the board's thing.
func (d *Device) Name() string { return d.b.Thing() }

// Architecture implements fleet.Device.
func (d *Device) Architecture() string { return d.b.Spec().Architecture }

// SetLink implements fleet.Linker.
func (d *Device) SetLink(l fleet.Link) { d.b.Link().Set(l) }

// HookSteps implements fleet.StepHooker: the bridge's link proxy holds the answer to each step report until fn
// returns, so the agent on the board goes no further.
func (d *Device) HookSteps(fn func(ctx context.Context, job, step string) error) (remove func()) {
	return d.b.HookSteps(fn)
}

// SetSerialNoise implements fleet.SerialLine.
func (d *Device) SetSerialNoise(rate float64, seed uint64) { d.b.SetNoise(rate, seed) }

// SetSerialUnplugged implements fleet.SerialLine.
func (d *Device) SetSerialUnplugged(u bool) { d.b.SetUnplugged(u) }

// SerialStats implements fleet.SerialLine.
func (d *Device) SerialStats() fleet.SerialStats {
	st := d.b.Stats()
	return fleet.SerialStats{BytesChanged: d.b.NoiseChanged(), FramesSent: st.FramesSent, FramesResent: st.FramesResent,
		FramesCorrupt: st.FramesCorrupt}
}

// power is the fleet.Crasher of a board with a power line.
type power struct{ b *rigs.Board }

// Crash implements fleet.Crasher: it cuts the board's power.
func (p power) Crash() error {
	if !p.b.Powered() {
		return fmt.Errorf("crash %s: not running", p.b.Thing())
	}
	return p.b.PowerOff()
}

// Restart implements fleet.Crasher: power on, and wait for the boot prompt.
func (p power) Restart(ctx context.Context) error {
	if p.b.Powered() {
		return fmt.Errorf("restart %s: already running", p.b.Thing())
	}
	return p.b.Boot(ctx)
}

// Running implements fleet.Crasher: whether the board has power.
func (p power) Running() bool { return p.b.Powered() }

// resetLine is the fleet.Resetter of a board with a reset line.
type resetLine struct{ b *rigs.Board }

// Reset implements fleet.Resetter.
func (r resetLine) Reset(ctx context.Context) error { return r.b.Reset(ctx) }

// The devices of boards with lines: the abilities of both embedded values.
type (
	poweredDevice struct {
		*Device
		power
	}
	resetDevice struct {
		*Device
		resetLine
	}
	fullDevice struct {
		*Device
		power
		resetLine
	}
)
