package faults

import (
	"context"
	"errors"
	"fmt"

	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// Crash kills its targets abruptly — a power cut, a SIGKILL: no cleanup, on-device storage kept — and starts
// them again after Down (at once when zero) unless Stay is set. The agent restarts, finds the execution it had
// in flight in its saved state and resumes it at the step it reached. With a step it strikes each target when
// it enters the step, once per execution; without one, at Inject. Recover restarts any target still down.
//
// Needs fleet.Crasher.
type Crash struct {
	// Down is how long a crashed device stays down, in the run's clock.
	Down Duration `json:"down,omitempty"`
	// Stay keeps crashed devices down until Recover.
	Stay bool `json:"stay,omitempty"`
}

// Check implements Fault.
func (c *Crash) Check(Selector, Dialect) error {
	if c.Down < 0 {
		return fmt.Errorf("down %v is negative", c.Down.D())
	}
	if c.Stay && c.Down != 0 {
		return errors.New("give down or stay, not both")
	}
	return nil
}

// Arm implements Fault.
func (c *Crash) Arm(a Arming) (Armed, error) {
	clk := a.World.Clock()
	k := &crash{p: *c, a: a, crashers: map[string]fleet.Crasher{}, stop: make(chan struct{}),
		strikes: clock.NewGroup(clk), mu: clock.NewMutex(clk)}
	for _, dev := range a.Targets {
		cr, err := device[fleet.Crasher](a, dev, "fleet.Crasher")
		if err != nil {
			return nil, err
		}
		k.crashers[dev] = cr
	}
	t, err := newTrigger(a, k.strike)
	if err != nil {
		return nil, err
	}
	k.t = t
	return k, nil
}

type crash struct {
	p        Crash
	a        Arming
	t        *trigger
	crashers map[string]fleet.Crasher
	stop     chan struct{}
	strikes  *clock.Group
	mu       *clock.Mutex // serializes crash and restart of one device with Recover; held while a device stops
}

// strike kills dev. Called in the agent's own report, the kill runs beside it (killing the agent waits for it to
// stop) and the report returns only when the agent's context ends.
func (k *crash) strike(ctx context.Context, dev string, sync bool) error {
	clk := k.a.World.Clock()
	crashed := clock.NewQueue[error](clk, 1)
	k.strikes.Go("crash "+dev, func() {
		k.mu.Lock()
		err := k.crashers[dev].Crash()
		k.mu.Unlock()
		crashed.Push(err)
		if err != nil || k.p.Stay {
			return
		}
		if !clock.Sleep(clk, k.p.Down.D(), k.stop) {
			return
		}
		k.restart(dev)
	})
	if !sync {
		err, _ := crashed.Next(nil)
		return err
	}
	if _, err := clock.Wait(ctx, clk, clock.Forever, crashed); err != nil {
		return err
	}
	if err, _ := crashed.TryNext(); err != nil {
		return err
	}
	_, err := clock.Wait(ctx, clk, clock.Forever) // the report ends with the agent
	return err
}

// restart starts dev again if it is down.
func (k *crash) restart(dev string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	cr := k.crashers[dev]
	if cr.Running() {
		return nil
	}
	if err := cr.Restart(context.Background()); err != nil {
		k.a.emit(event.Log, dev, "", "restart: "+err.Error())
		return fmt.Errorf("restart %s: %w", dev, err)
	}
	k.a.emit(event.FaultRecovered, dev, "", "restarted")
	return nil
}

// Inject implements Armed.
func (k *crash) Inject(ctx context.Context) error { return k.t.inject(ctx) }

// Recover implements Armed: every target that is down is started again.
func (k *crash) Recover(context.Context) error {
	k.t.pause()
	var errs []error
	for _, dev := range k.a.Targets {
		errs = append(errs, k.restart(dev))
	}
	return errors.Join(errs...)
}

// Disarm implements Armed.
func (k *crash) Disarm() {
	k.t.disarm()
	close(k.stop)
	k.strikes.Wait()
}
