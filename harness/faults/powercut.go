package faults

import "fmt"

// PowerCut cuts its targets' power for Duration: they stop at once, with no cleanup and nothing flushed but what
// was already on their storage, and come back Duration later (in the run's clock), booting on that storage —
// the agent resumes the execution it was in, or rolls it back. With a step it strikes each target when it
// enters the step, once per execution; without one, at Inject. Recover powers up any target still down.
//
// It is crash with a time off that matters: a deployment timeout shorter than Duration ends the robot
// NoResponse. Needs fleet.Crasher.
type PowerCut struct {
	// Duration is how long the power stays off; positive.
	Duration Duration `json:"duration"`
}

// Check implements Fault.
func (p *PowerCut) Check(Selector, Dialect) error {
	if p.Duration <= 0 {
		return fmt.Errorf("duration %v must be positive: how long the power stays off", p.Duration.D())
	}
	return nil
}

// Arm implements Fault.
func (p *PowerCut) Arm(a Arming) (Armed, error) { return (&Crash{Down: p.Duration}).Arm(a) }
