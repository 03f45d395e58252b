package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// The scripts a ScriptExit can fail.
const (
	ScriptDownloadCondition = "download-condition"
	ScriptPreLaunch         = "pre-launch"
	ScriptPostLaunch        = "post-launch"
)

// The lifecycle scripts of Greengrass V2 components a ScriptExit can fail (in a dialect that runs them).
const (
	ScriptInstall  = "install"
	ScriptStartup  = "startup"
	ScriptShutdown = "shutdown"
	ScriptRun      = "run"
)

// ScriptExit makes a script of its targets exit with Code: in its place a script of the same name that does
// just that runs for real on the device. It fails the download condition
// (DownloadConditionFailed), the pre-launch file (PreLaunchFileFailure) or the post-launch file
// (PostLaunchFileFailure). The script must be part of the deployment: a job without a download condition runs
// none, and the fault then has nothing to fail. Recover lets the scripts run again.
//
// Needs fleet.ExecutorHook (it wraps the agent's ScriptRunner), or for the pre- and post-launch files
// fleet.ScriptFailer and fleet.StepHooker: when the robot reports the step, before it runs the file, the file of
// the unpacked version on the device is replaced by one that exits Code (a robot in a container). The download
// condition, fetched and run in one step, needs fleet.ExecutorHook. The step each script runs in is the
// dialect's (Dialect.Scripts); a script the dialect does not run is refused.
//
// In Greengrass V2 the scripts are the components' lifecycle steps: install, startup, shutdown or run (the
// run step as the in-memory family runs it before the launch), of every component or, with Component, of that
// one. A step that fails three times makes its component BROKEN: a run that exits is a crash loop.
type ScriptExit struct {
	// Script is download-condition, pre-launch or post-launch (RoboMaker), install, startup or shutdown
	// or run (Greengrass V2).
	Script string `json:"script"`
	// Code is the exit status, 1-255 (default 1).
	Code int `json:"code,omitempty"`
	// Component, in Greengrass V2, fails only that component's script.
	Component string `json:"component,omitempty"`
}

// Check implements Fault.
func (s *ScriptExit) Check(sel Selector, d Dialect) error {
	switch s.Script {
	case ScriptDownloadCondition, ScriptPreLaunch, ScriptPostLaunch, ScriptInstall, ScriptStartup, ScriptShutdown,
		ScriptRun:
	default:
		return fmt.Errorf("script %q: want %s, %s, %s, %s, %s, %s or %s", s.Script, ScriptDownloadCondition,
			ScriptPreLaunch, ScriptPostLaunch, ScriptInstall, ScriptStartup, ScriptShutdown, ScriptRun)
	}
	step, ok := d.Scripts[s.Script]
	if !ok {
		return fmt.Errorf("script %s: the %s dialect runs no such script", s.Script, d.Name)
	}
	if _, named := d.ScriptSuffix[s.Script]; s.Component != "" && !named {
		return fmt.Errorf("component %s: the %s dialect's %s script belongs to no component", s.Component, d.Name, s.Script)
	}
	if s.Code == 0 {
		s.Code = 1
	}
	if s.Code < 1 || s.Code > 255 {
		return fmt.Errorf("code %d outside 1-255", s.Code)
	}
	if sel.Step != "" && sel.Step != step {
		return fmt.Errorf("the %s script runs in %s, not %s; leave the target's step out", s.Script, step, sel.Step)
	}
	return nil
}

// Arm implements Fault.
func (s *ScriptExit) Arm(a Arming) (Armed, error) {
	if _, named := a.Dialect.ScriptSuffix[s.Script]; onDevice(a) && named {
		return nil, fmt.Errorf("script-exit of the %s script needs fleet.ExecutorHook: the %s dialect runs it among "+
			"others of its step", s.Script, a.Dialect.Name)
	}
	if onDevice(a) && s.Script != ScriptDownloadCondition {
		return s.armOnDevice(a)
	}
	x := &scriptExit{p: *s, a: a, step: a.Dialect.Scripts[s.Script], tracker: newStepTracker()}
	remove, err := wrapAll(a, func(dev string, ex agent.Executors) agent.Executors {
		ex.Transport = &trackingTransport{Transport: ex.Transport, dev: dev, tracker: x.tracker}
		ex.Scripts = &exitRunner{ScriptRunner: ex.Scripts, dev: dev, x: x}
		return ex
	})
	if err != nil {
		return nil, err
	}
	x.remove = remove
	return x, nil
}

type scriptExit struct {
	p       ScriptExit
	a       Arming
	step    string
	tracker *stepTracker
	active  atomic.Bool
	remove  func()
}

// exitRunner fails the script of the fault's step while the fault is injected.
type exitRunner struct {
	agent.ScriptRunner
	dev string
	x   *scriptExit
}

// Run implements agent.ScriptRunner.
func (r *exitRunner) Run(ctx context.Context, s agent.Script) error {
	if !r.x.active.Load() || r.x.tracker.get(r.dev) != r.x.step || !r.x.names(s.Name) {
		return r.ScriptRunner.Run(ctx, s)
	}
	r.x.a.emit(event.FaultInjected, r.dev, r.x.step, fmt.Sprintf("%s exits %d", s.Name, r.x.p.Code))
	// The script really runs and really exits with the code: a script of the same name whose text is `exit N`
	// goes to the device's own runner (a process in the OS family, the simulated runner in memory).
	text := []byte(fmt.Sprintf("#!/bin/sh\n# %s, failed by the script-exit fault\nexit %d\n", s.Name, r.x.p.Code))
	s.Read = func() ([]byte, error) { return text, nil }
	if s.Path != "" {
		f, err := os.CreateTemp("", "fleetlab-script-exit-*.sh")
		if err != nil {
			return fmt.Errorf("script-exit: %w", err)
		}
		defer os.Remove(f.Name())
		_, werr := f.Write(text)
		cerr := f.Close()
		if err := errors.Join(werr, cerr, os.Chmod(f.Name(), 0o700)); err != nil {
			return fmt.Errorf("script-exit: %w", err)
		}
		s.Path = f.Name()
	}
	return r.ScriptRunner.Run(ctx, s)
}

// names reports whether the fault fails the script of that name: every script of its step, unless the dialect
// names the script among others of the step (Dialect.ScriptSuffix) — then those so named, of the fault's
// component when it has one ("<component> <step>").
func (x *scriptExit) names(name string) bool {
	suffix, ok := x.a.Dialect.ScriptSuffix[x.p.Script]
	if !ok {
		return true
	}
	if !strings.HasSuffix(name, suffix) {
		return false
	}
	return x.p.Component == "" || strings.TrimSuffix(name, suffix) == x.p.Component
}

func (x *scriptExit) Inject(context.Context) error  { x.active.Store(true); return nil }
func (x *scriptExit) Recover(context.Context) error { x.active.Store(false); return nil }
func (x *scriptExit) Disarm()                       { x.remove() }

// onDevice reports whether the targets are out of the harness's reach but can be acted on at their steps: none
// is a fleet.ExecutorHook, and each is a fleet.StepHooker.
func onDevice(a Arming) bool {
	if len(a.Targets) == 0 {
		return false
	}
	for _, dev := range a.Targets {
		d, ok := a.World.Device(dev)
		if !ok {
			return false
		}
		_, hook := d.(fleet.ExecutorHook)
		_, steps := d.(fleet.StepHooker)
		if hook || !steps {
			return false
		}
	}
	return true
}

// armOnDevice arms the fault on devices whose script files it replaces.
func (s *ScriptExit) armOnDevice(a Arming) (Armed, error) {
	x := &deviceScriptExit{p: *s, a: a, step: a.Dialect.Scripts[s.Script]}
	for _, dev := range a.Targets {
		sf, err := device[fleet.ScriptFailer](a, dev, "fleet.ScriptFailer")
		if err != nil {
			x.Disarm()
			return nil, err
		}
		sh, _ := sf.(fleet.StepHooker)
		x.removes = append(x.removes, sh.HookSteps(func(ctx context.Context, job, step string) error {
			return x.strike(ctx, sf, job, step)
		}))
	}
	return x, nil
}

// deviceScriptExit is a ScriptExit acting through the devices' script files.
type deviceScriptExit struct {
	p       ScriptExit
	a       Arming
	step    string
	active  atomic.Bool
	removes []func()
}

// strike replaces the script of the step on the device, before the answer to the step's report reaches it. A
// job that runs no such script is left alone, as on any other device; a replacement that fails is recorded and
// the device left to carry on.
func (x *deviceScriptExit) strike(ctx context.Context, sf fleet.ScriptFailer, job, step string) error {
	if !x.active.Load() || step != x.step {
		return nil
	}
	err := sf.FailScript(ctx, job, step, x.p.Code)
	switch {
	case errors.Is(err, fleet.ErrNoScript):
	case err != nil:
		x.a.emit(event.Log, sf.Name(), step, "strike: "+err.Error())
	default:
		x.a.emit(event.FaultInjected, sf.Name(), step, fmt.Sprintf("the %s file exits %d", x.p.Script, x.p.Code))
	}
	return nil
}

func (x *deviceScriptExit) Inject(context.Context) error  { x.active.Store(true); return nil }
func (x *deviceScriptExit) Recover(context.Context) error { x.active.Store(false); return nil }
func (x *deviceScriptExit) Disarm() {
	for _, r := range x.removes {
		r()
	}
	x.removes = nil
}
