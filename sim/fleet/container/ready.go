package container

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/fleetlab/fleetlab/sim/clock"
)

// agentConnected is the readiness of a robot's container, as testcontainers-go waits for it: the agent has
// connected its notify channel to the service, so it is up, has its device directory, and hears of jobs.
type agentConnected struct {
	d       *Device
	timeout time.Duration
}

var _ wait.Strategy = agentConnected{}

// WaitUntilReady implements wait.Strategy.
func (w agentConnected) WaitUntilReady(ctx context.Context, _ wait.StrategyTarget) error {
	r := w.d.life.Current()
	if r == nil {
		return errors.New("the robot's container is not attached")
	}
	t := clock.Real{}.NewTimer(w.timeout)
	defer t.Stop()
	select {
	case <-r.connected:
		return nil
	case <-r.exited:
		return fmt.Errorf("the agent stopped before it reached the service at %s", w.d.proxy.URL())
	case <-t.C():
		return fmt.Errorf("the agent did not reach the service at %s within %v", w.d.proxy.URL(), w.timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}
