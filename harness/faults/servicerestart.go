package faults

import (
	"context"
	"fmt"
	"sync"

	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/event"
)

// ServiceRestart drops the running service — its listeners, its in-memory state, its notify channels — and
// starts it again on its data after Down (at once when zero), on the same ports, so agents reconnect and carry
// on. An in-progress rollout must resume where it was: nothing acknowledged may be lost, no execution doubled.
// Recover starts the service if it is still down.
//
// Needs the on-disk store, and a fleet that reaches the service over the network (an in-memory transport is
// bound to the service it started with); Arm says so otherwise.
type ServiceRestart struct {
	// Down is how long the service stays down, in the run's clock.
	Down Duration `json:"down,omitempty"`
}

// Check implements Fault.
func (s *ServiceRestart) Check(sel Selector, _ Dialect) error {
	if s.Down < 0 {
		return fmt.Errorf("down %v is negative", s.Down.D())
	}
	return noStep(sel)
}

// Arm implements Fault.
func (s *ServiceRestart) Arm(a Arming) (Armed, error) {
	if err := a.World.CanRestartService(); err != nil {
		return nil, fmt.Errorf("fault %s: %w", a.Name, err)
	}
	return &serviceRestart{p: *s, a: a, stop: make(chan struct{}), starts: clock.NewGroup(a.World.Clock())}, nil
}

type serviceRestart struct {
	p      ServiceRestart
	a      Arming
	stop   chan struct{}
	starts *clock.Group
	mu     sync.Mutex // serializes start with Recover
}

func (x *serviceRestart) Inject(ctx context.Context) error {
	x.a.emit(event.FaultInjected, "", "", "stopping the service")
	if err := x.a.World.StopService(ctx); err != nil {
		return err
	}
	if x.p.Down == 0 {
		return x.start(ctx)
	}
	x.starts.Go("restart service", func() {
		if clock.Sleep(x.a.World.Clock(), x.p.Down.D(), x.stop) {
			if err := x.start(context.Background()); err != nil {
				x.a.emit(event.Log, "", "", "restart service: "+err.Error())
			}
		}
	})
	return nil
}

func (x *serviceRestart) start(ctx context.Context) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.a.World.StartService(ctx); err != nil {
		return fmt.Errorf("start service: %w", err)
	}
	x.a.emit(event.FaultRecovered, "", "", "service started on its data")
	return nil
}

func (x *serviceRestart) Recover(ctx context.Context) error { return x.start(ctx) }

func (x *serviceRestart) Disarm() {
	close(x.stop)
	x.starts.Wait()
}
