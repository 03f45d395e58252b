package faults

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// NoResponse freezes its targets: a hung board, a paused process. Frozen, a device answers nothing and sends
// nothing, so the service times its execution out (RoboMaker: NoResponse / RobotDeploymentNoResponse).
// With a step it strikes each target when it enters the step; without one, at Inject. Recover thaws them and
// they carry on exactly where they were: the agent then finds its execution ended and abandons it.
//
// Needs fleet.Freezer.
type NoResponse struct{}

// Check implements Fault.
func (*NoResponse) Check(Selector, Dialect) error { return nil }

// Arm implements Fault.
func (*NoResponse) Arm(a Arming) (Armed, error) {
	n := &noResponse{a: a, freezers: map[string]fleet.Freezer{}, frozen: map[string]bool{}}
	for _, dev := range a.Targets {
		f, err := device[fleet.Freezer](a, dev, "fleet.Freezer")
		if err != nil {
			return nil, err
		}
		n.freezers[dev] = f
	}
	t, err := newTrigger(a, n.strike)
	if err != nil {
		return nil, err
	}
	n.t = t
	return n, nil
}

type noResponse struct {
	a        Arming
	t        *trigger
	freezers map[string]fleet.Freezer

	mu     sync.Mutex
	frozen map[string]bool
}

// strike freezes dev. Called in the agent's own report, the freeze runs beside it and the report waits until
// the device is frozen, so the agent takes no step past the one it reached.
func (n *noResponse) strike(ctx context.Context, dev string, sync bool) error {
	n.mu.Lock()
	n.frozen[dev] = true
	n.mu.Unlock()
	if !sync {
		return n.freezers[dev].Freeze()
	}
	clk := n.a.World.Clock()
	done := clock.NewQueue[error](clk, 1)
	clock.Go(clk, "freeze "+dev, func() { done.Push(n.freezers[dev].Freeze()) })
	if _, err := clock.Wait(ctx, clk, clock.Forever, done); err != nil {
		return err
	}
	err, _ := done.TryNext()
	return err
}

func (n *noResponse) Inject(ctx context.Context) error { return n.t.inject(ctx) }

func (n *noResponse) Recover(context.Context) error {
	n.t.pause()
	n.mu.Lock()
	defer n.mu.Unlock()
	var errs []error
	for dev := range n.frozen {
		if err := n.freezers[dev].Thaw(); err != nil {
			errs = append(errs, fmt.Errorf("thaw %s: %w", dev, err))
		}
		delete(n.frozen, dev)
	}
	return errors.Join(errs...)
}

func (n *noResponse) Disarm() { n.t.disarm() }
