package faults

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/event"
)

// State is where a Handle is in its lifecycle (see the package documentation's diagram).
type State string

// The lifecycle states.
const (
	StateDefined   State = "Defined"
	StateArmed     State = "Armed"
	StateInjected  State = "Injected"
	StateRecovered State = "Recovered"
	StateClosed    State = "Closed"
)

// Handle is one fault of a run, with its lifecycle guard. Its methods are safe for concurrent use; each one
// runs the fault's own method under the guard, so a fault never sees two lifecycle calls at once, and, when the
// world's clock is a virtual-time world's, as an actor of the world.
type Handle struct {
	name    string
	def     Definition
	fault   Fault
	sel     Selector
	dialect Dialect

	mu      sync.Mutex
	state   State
	armed   Armed
	arming  Arming
	targets []string
}

// Name returns the fault's registered name.
func (h *Handle) Name() string { return h.name }

// Layer returns the fault's layer.
func (h *Handle) Layer() Layer { return h.def.Layer }

// Fault returns the fault with its decoded parameters.
func (h *Handle) Fault() Fault { return h.fault }

// Selector returns the target selector.
func (h *Handle) Selector() Selector { return h.sel }

// State returns the lifecycle state.
func (h *Handle) State() State {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state
}

// Targets returns the devices the fault was armed against (none before Arm, or for faults that act on an API
// or an object).
func (h *Handle) Targets() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.targets...)
}

// illegal is the error of a call out of order.
func (h *Handle) illegal(call string, want ...State) error {
	return fmt.Errorf("%s %s: state %s, want %v: %w", call, h.name, h.state, want, ErrLifecycle)
}

// Arm selects the targets in w with its seed and arms the fault: Defined → Armed. A backend that cannot do the
// fault fails here with an *UnsupportedError; the handle then stays Defined.
func (h *Handle) Arm(w World) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != StateDefined {
		return h.illegal("arm", StateDefined)
	}
	a := Arming{Name: h.name, World: w, Step: h.sel.Step, Dialect: h.dialect}
	if h.def.Layer != LayerCloud || h.sel.selectsDevices() {
		targets, err := h.sel.Select(w.Robots(), w.Seed(), h.name)
		if err != nil {
			return fmt.Errorf("arm %s: %w", h.name, err)
		}
		a.Targets = targets
	}
	armed, err := h.fault.Arm(a)
	if err != nil {
		return fmt.Errorf("arm %s: %w", h.name, err)
	}
	h.armed, h.arming, h.targets, h.state = armed, a, a.Targets, StateArmed
	h.arming.emit(event.FaultArmed, "", h.sel.Step, targetsReason(a.Targets))
	return nil
}

// inWorld runs f as an actor of the world the fault is armed in, when its clock is a virtual-time world's: a
// fault acts on the world from inside it, whoever calls the handle.
func (h *Handle) inWorld(f func() error) error {
	h.mu.Lock()
	var c clock.Clock
	if h.arming.World != nil {
		c = h.arming.World.Clock()
	}
	h.mu.Unlock()
	var err error
	if derr := clock.Do(c, func() { err = f() }); derr != nil {
		return fmt.Errorf("fault %s: %w", h.name, derr)
	}
	return err
}

// Inject makes the fault take effect: Armed or Recovered → Injected.
func (h *Handle) Inject(ctx context.Context) error {
	return h.inWorld(func() error { return h.inject(ctx) })
}

func (h *Handle) inject(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != StateArmed && h.state != StateRecovered {
		return h.illegal("inject", StateArmed, StateRecovered)
	}
	if err := h.armed.Inject(ctx); err != nil {
		return fmt.Errorf("inject %s: %w", h.name, err)
	}
	h.state = StateInjected
	reason := "injected"
	if h.sel.Step != "" {
		reason = "waiting for " + h.sel.Step
	}
	h.arming.emit(event.FaultInjected, "", h.sel.Step, reason)
	return nil
}

// Recover undoes the fault: Injected → Recovered.
func (h *Handle) Recover(ctx context.Context) error {
	return h.inWorld(func() error { return h.recover(ctx) })
}

func (h *Handle) recover(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != StateInjected {
		return h.illegal("recover", StateInjected)
	}
	if err := h.armed.Recover(ctx); err != nil {
		return fmt.Errorf("recover %s: %w", h.name, err)
	}
	h.state = StateRecovered
	h.arming.emit(event.FaultRecovered, "", "", "recovered")
	return nil
}

// Close recovers an injected fault and removes its hooks; any state → Closed. Closing twice is a no-op.
func (h *Handle) Close(ctx context.Context) error {
	return h.inWorld(func() error { return h.close(ctx) })
}

func (h *Handle) close(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var err error
	switch h.state {
	case StateClosed:
		return nil
	case StateInjected:
		if err = h.armed.Recover(ctx); err != nil {
			err = fmt.Errorf("close %s: recover: %w", h.name, err)
		} else {
			h.arming.emit(event.FaultRecovered, "", "", "closed")
		}
	}
	if h.armed != nil {
		h.armed.Disarm()
	}
	h.state = StateClosed
	return err
}

// targetsReason names a fault's targets for its armed event, the first few of a long list.
func targetsReason(targets []string) string {
	const shown = 8
	switch {
	case len(targets) == 0:
		return "no device targets"
	case len(targets) <= shown:
		return "targets " + strings.Join(targets, ", ")
	}
	return fmt.Sprintf("%d targets: %s, …", len(targets), strings.Join(targets[:shown], ", "))
}
