package faults

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// SlowStep holds its targets in a step for Delay after they enter it, once per execution: a slow disk, a
// launch that takes long to come up. The service sees the step reached and then nothing for Delay; a Delay past
// the deployment's timeout ends the robot NoResponse. Recover releases a device being held at once.
//
// Needs fleet.ExecutorHook, or fleet.Freezer and fleet.StepHooker: a robot whose agent is out of reach (a
// container) is frozen when it reports the step, before it gets the answer, and thawed after Delay — the service
// sees the same, the step reached and then nothing; the robot's own connections stay idle meanwhile, so a
// notify channel the service pings may drop and come back.
type SlowStep struct {
	// Delay is how long each target is held in the step, in the run's clock.
	Delay Duration `json:"delay"`
}

// Check implements Fault.
func (s *SlowStep) Check(sel Selector, _ Dialect) error {
	if s.Delay <= 0 {
		return fmt.Errorf("delay %v must be positive", s.Delay.D())
	}
	if sel.Step == "" {
		return errors.New("slow-step needs the target's step")
	}
	return nil
}

// Arm implements Fault.
func (s *SlowStep) Arm(a Arming) (Armed, error) {
	x := &slowStep{p: *s, a: a, release: make(chan struct{})}
	strike := x.strike
	if onDevice(a) {
		x.freezers = map[string]fleet.Freezer{}
		for _, dev := range a.Targets {
			fz, err := device[fleet.Freezer](a, dev, "fleet.Freezer")
			if err != nil {
				return nil, err
			}
			x.freezers[dev] = fz
		}
		strike = x.strikeFrozen
	} else {
		for _, dev := range a.Targets {
			if _, err := device[fleet.ExecutorHook](a, dev, "fleet.ExecutorHook"); err != nil {
				return nil, err
			}
		}
	}
	t, err := newTrigger(a, strike)
	if err != nil {
		return nil, err
	}
	x.t = t
	return x, nil
}

type slowStep struct {
	p        SlowStep
	a        Arming
	t        *trigger
	freezers map[string]fleet.Freezer // the targets, when they are held frozen

	mu      sync.Mutex
	release chan struct{} // closed by Recover, made anew by Inject
}

func (x *slowStep) releaseCh() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.release
}

// strike holds the agent's report of the step — already acknowledged by the service — for the delay, then lets
// it return as the success it was, so the agent carries on as if the step's work had taken that long. The hold
// ends early at Recover, or when the agent stops (its context canceled). The agent's request timeout is not a
// reason to stop holding: a device busy in a step does not give up on it, and the report succeeded.
func (x *slowStep) strike(ctx context.Context, _ string, _ bool) error {
	clk := x.a.World.Clock()
	until := clk.Now().Add(x.p.Delay.D())
	evs := []clock.Event{clock.Done(x.releaseCh()), clock.Done(x.t.done), clock.Done(ctx.Done())}
	for {
		if i, _ := clock.Wait(nil, clk, until.Sub(clk.Now()), evs...); i != 2 {
			return nil // held for the delay, released, or disarmed
		}
		if errors.Is(context.Cause(ctx), context.Canceled) {
			return ctx.Err() // the agent is stopping
		}
		evs = evs[:2] // only the request's own timeout: hold on
	}
}

// strikeFrozen holds a device that cannot be wrapped: frozen for the delay, or until Recover, the fault's
// disarm or the end of the report, then thawed.
func (x *slowStep) strikeFrozen(ctx context.Context, dev string, _ bool) error {
	fz := x.freezers[dev]
	if err := fz.Freeze(); err != nil {
		return err
	}
	rel := x.releaseCh()
	timer := x.a.World.Clock().NewTimer(x.p.Delay.D())
	defer timer.Stop()
	select {
	case <-timer.C():
	case <-rel:
	case <-x.t.done:
	case <-ctx.Done():
	}
	return fz.Thaw()
}

func (x *slowStep) Inject(ctx context.Context) error {
	x.mu.Lock()
	select {
	case <-x.release:
		x.release = make(chan struct{})
	default:
	}
	x.mu.Unlock()
	return x.t.inject(ctx)
}

func (x *slowStep) Recover(context.Context) error {
	x.t.pause()
	x.mu.Lock()
	defer x.mu.Unlock()
	select {
	case <-x.release:
	default:
		close(x.release)
	}
	return nil
}

func (x *slowStep) Disarm() { x.t.disarm() }
