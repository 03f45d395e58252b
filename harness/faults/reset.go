package faults

import (
	"context"

	"github.com/fleetlab/fleetlab/sim/fleet"
)

// Reset pulses its targets' reset line: each reboots at once — the agent and everything it started stop with no
// cleanup, as in a power cut, and the agent starts again on the device's storage and resumes (or rolls back) the
// execution it was in. With a step it strikes each target when it enters the step, once per execution; without
// one, at Inject. The device comes back by itself, so Recover only stops further strikes.
//
// Needs fleet.Resetter (a rig board with a GPIO reset line or a DTR/RTS reset).
type Reset struct{}

// Check implements Fault.
func (*Reset) Check(Selector, Dialect) error { return nil }

// Arm implements Fault.
func (*Reset) Arm(a Arming) (Armed, error) {
	k := &reset{resetters: map[string]fleet.Resetter{}}
	for _, dev := range a.Targets {
		r, err := device[fleet.Resetter](a, dev, "fleet.Resetter")
		if err != nil {
			return nil, err
		}
		k.resetters[dev] = r
	}
	t, err := newTrigger(a, func(ctx context.Context, dev string, _ bool) error { return k.resetters[dev].Reset(ctx) })
	if err != nil {
		return nil, err
	}
	k.t = t
	return k, nil
}

type reset struct {
	t         *trigger
	resetters map[string]fleet.Resetter
}

func (k *reset) Inject(ctx context.Context) error { return k.t.inject(ctx) }
func (k *reset) Recover(context.Context) error    { k.t.pause(); return nil }
func (k *reset) Disarm()                          { k.t.disarm() }
