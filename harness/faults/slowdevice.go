package faults

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// SlowDevice cuts its targets' compute: CPU time down to CPUs, memory down to MemoryBytes (a container's limits,
// through docker update), as a slower board or a host starved by other work would have it. Everything on the
// device — the agent, the scripts, the application — runs slower; too little memory gets processes killed, as
// on a board. With a step it strikes each target when it enters the step; without one, at Inject. With Duration
// each target gets its compute back that long after it was struck (in the run's clock); Recover gives it back
// to all.
//
// Needs fleet.Limiter.
type SlowDevice struct {
	// CPUs is the CPU time left, in CPUs (0.05 is a twentieth of one), at least 0.01; zero leaves the CPU alone.
	CPUs float64 `json:"cpus,omitempty"`
	// MemoryBytes is the memory left, at least 6 MiB (Docker's floor); zero leaves the memory alone.
	MemoryBytes int64 `json:"memoryBytes,omitempty"`
	// Duration, when set, ends the fault on each target that long after it started.
	Duration Duration `json:"duration,omitempty"`
}

// Check implements Fault.
func (s *SlowDevice) Check(Selector, Dialect) error {
	switch {
	case s.CPUs == 0 && s.MemoryBytes == 0:
		return errors.New("give cpus, memoryBytes or both")
	case s.CPUs != 0 && !(s.CPUs >= 0.01 && s.CPUs <= 1024):
		return fmt.Errorf("cpus %v outside [0.01, 1024]", s.CPUs)
	case s.MemoryBytes != 0 && s.MemoryBytes < 6<<20:
		return fmt.Errorf("memoryBytes %d is below 6 MiB", s.MemoryBytes)
	case s.Duration < 0:
		return fmt.Errorf("duration %v is negative", s.Duration.D())
	}
	return nil
}

// Arm implements Fault.
func (s *SlowDevice) Arm(a Arming) (Armed, error) {
	x := &slowDevice{p: *s, a: a, limiters: map[string]fleet.Limiter{}, slowed: map[string]bool{},
		stop: make(chan struct{})}
	for _, dev := range a.Targets {
		l, err := device[fleet.Limiter](a, dev, "fleet.Limiter")
		if err != nil {
			return nil, err
		}
		x.limiters[dev] = l
	}
	t, err := newTrigger(a, x.strike)
	if err != nil {
		return nil, err
	}
	x.t = t
	return x, nil
}

type slowDevice struct {
	p        SlowDevice
	a        Arming
	t        *trigger
	limiters map[string]fleet.Limiter
	stop     chan struct{}
	wg       sync.WaitGroup

	mu     sync.Mutex
	slowed map[string]bool
}

// strike limits dev; at a step it returns once the limits are in force, before the robot goes on.
func (x *slowDevice) strike(_ context.Context, dev string, _ bool) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.slowed[dev] {
		return nil
	}
	if err := x.limiters[dev].Limit(fleet.Limits{CPUs: x.p.CPUs, MemoryBytes: x.p.MemoryBytes}); err != nil {
		return err
	}
	x.slowed[dev] = true
	if x.p.Duration > 0 {
		x.wg.Go(func() {
			if clock.Sleep(x.a.World.Clock(), x.p.Duration.D(), x.stop) {
				x.heal(dev, "healed after "+x.p.Duration.D().String())
			}
		})
	}
	return nil
}

// heal gives dev its compute back.
func (x *slowDevice) heal(dev, reason string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.slowed[dev] {
		return nil
	}
	if err := x.limiters[dev].Limit(fleet.Limits{}); err != nil {
		x.a.emit(event.Log, dev, "", "heal: "+err.Error())
		return fmt.Errorf("heal %s: %w", dev, err)
	}
	delete(x.slowed, dev)
	x.a.emit(event.FaultRecovered, dev, "", reason)
	return nil
}

func (x *slowDevice) Inject(ctx context.Context) error { return x.t.inject(ctx) }

func (x *slowDevice) Recover(context.Context) error {
	x.t.pause()
	var errs []error
	for _, dev := range x.a.Targets {
		errs = append(errs, x.heal(dev, "recovered"))
	}
	return errors.Join(errs...)
}

func (x *slowDevice) Disarm() {
	x.t.disarm()
	close(x.stop)
	x.wg.Wait()
}
