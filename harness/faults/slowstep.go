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
// Needs fleet.ExecutorHook.
type SlowStep struct {
	// Delay is how long each target is held in the step, in the run's clock.
	Delay Duration `json:"delay"`
}

// Check implements Fault.
func (s *SlowStep) Check(sel Selector) error {
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
	for _, dev := range a.Targets {
		if _, err := device[fleet.ExecutorHook](a, dev, "fleet.ExecutorHook"); err != nil {
			return nil, err
		}
	}
	x := &slowStep{p: *s, a: a, release: make(chan struct{})}
	t, err := newTrigger(a, x.strike)
	if err != nil {
		return nil, err
	}
	x.t = t
	return x, nil
}

type slowStep struct {
	p SlowStep
	a Arming
	t *trigger

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
