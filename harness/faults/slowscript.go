package faults

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/event"
)

// SlowScript makes a script of its targets take Delay of the run's clock before it runs: a slow install, a
// startup that waits on a service. A script whose own timeout (agent.Script.Timeout) is shorter than Delay is
// stopped at its timeout and fails as timed out (agent.ErrScriptTimeout), as the device's runner stops a
// script that runs too long; one with a longer timeout, or none, runs after the delay. Script and Component
// are ScriptExit's: the script (whose step is the dialect's, Dialect.Scripts), of one component in Greengrass
// V2. Recover lets the scripts run at their own pace again; a script being held runs at once.
//
// Needs fleet.ExecutorHook (it wraps the agent's ScriptRunner).
type SlowScript struct {
	Script    string   `json:"script"`
	Component string   `json:"component,omitempty"`
	Delay     Duration `json:"delay"`
}

// Check implements Fault.
func (s *SlowScript) Check(sel Selector, d Dialect) error {
	if s.Delay <= 0 {
		return fmt.Errorf("delay %v must be positive", s.Delay.D())
	}
	se := ScriptExit{Script: s.Script, Component: s.Component, Code: 1}
	return se.Check(sel, d)
}

// Arm implements Fault.
func (s *SlowScript) Arm(a Arming) (Armed, error) {
	x := &slowScript{p: *s, a: a, names: &scriptExit{p: ScriptExit{Script: s.Script, Component: s.Component}, a: a},
		step: a.Dialect.Scripts[s.Script], tracker: newStepTracker(), release: make(chan struct{})}
	remove, err := wrapAll(a, func(dev string, ex agent.Executors) agent.Executors {
		ex.Transport = &trackingTransport{Transport: ex.Transport, dev: dev, tracker: x.tracker}
		ex.Scripts = &slowRunner{ScriptRunner: ex.Scripts, dev: dev, x: x}
		return ex
	})
	if err != nil {
		return nil, err
	}
	x.remove = remove
	return x, nil
}

type slowScript struct {
	p       SlowScript
	a       Arming
	names   *scriptExit // which scripts the fault takes
	step    string
	tracker *stepTracker
	active  atomic.Bool
	release chan struct{} // closed at Recover
	remove  func()
}

// slowRunner holds the scripts of the fault's step while the fault is injected.
type slowRunner struct {
	agent.ScriptRunner
	dev string
	x   *slowScript
}

// Run implements agent.ScriptRunner.
func (r *slowRunner) Run(ctx context.Context, s agent.Script) error {
	x := r.x
	if !x.active.Load() || x.tracker.get(r.dev) != x.step || !x.names.names(s.Name) {
		return r.ScriptRunner.Run(ctx, s)
	}
	hold, timedOut := x.p.Delay.D(), false
	if s.Timeout > 0 && s.Timeout < hold {
		hold, timedOut = s.Timeout, true
	}
	x.a.emit(event.FaultInjected, r.dev, x.step, fmt.Sprintf("%s takes %v", s.Name, x.p.Delay.D()))
	clk := x.a.World.Clock()
	if i, _ := clock.Wait(nil, clk, hold, clock.Done(x.release), clock.Done(ctx.Done())); i == 1 {
		return ctx.Err()
	} else if i == 0 {
		return r.ScriptRunner.Run(ctx, s) // recovered: it runs now
	}
	if timedOut {
		return fmt.Errorf("%s: killed after its timeout of %v: %w", s.Name, s.Timeout, agent.ErrScriptTimeout)
	}
	return r.ScriptRunner.Run(ctx, s)
}

func (x *slowScript) Inject(context.Context) error { x.active.Store(true); return nil }
func (x *slowScript) Recover(context.Context) error {
	if x.active.Swap(false) {
		close(x.release)
	}
	return nil
}
func (x *slowScript) Disarm() { x.remove() }
