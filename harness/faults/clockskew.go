package faults

import (
	"context"
	"errors"
	"fmt"

	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// ClockSkew sets its targets' clocks Skew off the service's (ahead when positive): a board whose RTC drifted or
// never synced. The agent stamps its events and measures its own timeouts on its clock; the service keeps its
// own time. Recover puts the clocks right.
//
// Needs fleet.ClockSkewer.
type ClockSkew struct {
	// Skew is how far the device clocks are off; not zero.
	Skew Duration `json:"skew"`
}

// Check implements Fault.
func (c *ClockSkew) Check(sel Selector, _ Dialect) error {
	if c.Skew == 0 {
		return errors.New("skew must not be zero")
	}
	if sel.Step != "" {
		return errors.New("clock-skew takes no step: a clock is off from the start")
	}
	return nil
}

// Arm implements Fault.
func (c *ClockSkew) Arm(a Arming) (Armed, error) {
	x := &clockSkew{p: *c, a: a}
	for _, dev := range a.Targets {
		s, err := device[fleet.ClockSkewer](a, dev, "fleet.ClockSkewer")
		if err != nil {
			return nil, err
		}
		x.skewers = append(x.skewers, s)
	}
	return x, nil
}

type clockSkew struct {
	p       ClockSkew
	a       Arming
	skewers []fleet.ClockSkewer
}

func (x *clockSkew) set(d Duration) {
	for _, s := range x.skewers {
		s.SetClockSkew(d.D())
	}
}

func (x *clockSkew) Inject(context.Context) error {
	x.set(x.p.Skew)
	for _, s := range x.skewers {
		x.a.emit(event.FaultInjected, s.Name(), "", fmt.Sprintf("clock %v off", x.p.Skew.D()))
	}
	return nil
}

func (x *clockSkew) Recover(context.Context) error { x.set(0); return nil }
func (x *clockSkew) Disarm()                       {}
