package engine

import (
	"fmt"
	"time"

	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/store"
)

// Create starts a deployment: at once, releasing what its pacing allows, or, when spec.Start is later, it is
// Pending until the first Tick at or after it. It is a control operation: when the store refuses the commit,
// Create fails and nothing of it remains, in memory or on disk.
func (e *Engine) Create(spec Spec) (Deployment, error) { return e.CreateWith(spec, nil) }

// CreateWith is Create whose commit also runs write, in the same store transaction: a dialect records its own
// resource (a job and its idempotency token) together with the deployment, so a failed commit leaves neither and
// a crash leaves both or neither. An error from write fails CreateWith and changes nothing. write runs with the
// engine locked: it must not call the engine.
func (e *Engine) CreateWith(spec Spec, write func(store.Tx) error) (Deployment, error) {
	if err := validate(spec); err != nil {
		return Deployment{}, err
	}
	var out Deployment
	err := e.control(func() (func(), error) {
		if _, ok := e.deps[spec.ID]; ok {
			return nil, fmt.Errorf("deployment %s: %w", spec.ID, ErrExists)
		}
		now := e.clock.Now()
		if spec.Group != "" && spec.OnActive != Allow {
			if active := e.activeLocked(spec.Group); active != nil {
				if spec.OnActive == Reject {
					return nil, fmt.Errorf("group %s has %s: %w", spec.Group, active.d.ID, ErrConflict)
				}
				e.endLocked(active, StatusSuperseded, "superseded by "+spec.ID, ReasonSuperseded, now)
			}
		}
		start := spec.Start
		if start.Before(now) {
			start = now
		}
		r := &rollout{
			d: Deployment{
				ID: spec.ID, Kind: spec.Kind, Group: spec.Group, Status: StatusPending, Continuous: spec.Continuous,
				Document: spec.Document, PacingSpec: spec.Pacing, Abort: spec.Abort, Timeouts: spec.Timeouts,
				Bake: spec.Bake, CreatedAt: now, StartAt: start, UpdatedAt: now, Initial: len(spec.Targets),
				Version: 1, Ordinal: len(e.order) + 1,
			},
			byDev: make(map[string]*Execution, len(spec.Targets)),
			execs: make([]*Execution, 0, len(spec.Targets)),
		}
		e.chg.created[r] = true
		e.deps[r.d.ID] = r
		e.order = append(e.order, r)
		e.live[r] = struct{}{}
		e.saveDeployment(r)
		e.emit(event.Event{Kind: event.DeploymentCreated, Deployment: r.d.ID, To: string(StatusPending), Time: now})
		for _, dev := range spec.Targets {
			e.addExecution(r, dev, now)
		}
		e.advance(r, now)
		return func() { out = r.d }, nil
	}, write)
	return out, err
}

// control runs a control operation (change.go): fn checks, and returns an error that changes nothing, or changes
// memory and returns publish, which is called once the changes and extra's writes are committed, to take the
// operation's results. When the commit fails, memory is put back and the error returned.
func (e *Engine) control(fn func() (publish func(), err error), extra func(store.Tx) error) error {
	e.commitMu.Lock()
	e.mu.Lock()
	e.begin()
	publish, err := fn()
	if err != nil {
		c := e.chg
		e.chg = nil
		e.undo(c)
	} else if err = e.finish(extra); err != nil {
		err = fmt.Errorf("commit: %w", err)
	} else {
		publish()
	}
	e.mu.Unlock()
	e.commitMu.Unlock()
	if err != nil {
		return err
	}
	e.poke()
	e.deliver()
	return nil
}

func validate(spec Spec) error {
	if spec.ID == "" {
		return fmt.Errorf("%w: empty id", ErrInvalid)
	}
	seen := make(map[string]bool, len(spec.Targets))
	for _, t := range spec.Targets {
		if t == "" {
			return fmt.Errorf("%w: empty target name", ErrInvalid)
		}
		if seen[t] {
			return fmt.Errorf("%w: target %s listed twice", ErrInvalid, t)
		}
		seen[t] = true
	}
	if err := spec.Pacing.Validate(); err != nil {
		return err
	}
	for _, a := range spec.Abort {
		if a.Percent < 0 || a.Percent > 100 {
			return fmt.Errorf("%w: abort threshold %v outside [0, 100]", ErrInvalid, a.Percent)
		}
		if len(a.FailureTypes) == 0 {
			return fmt.Errorf("%w: abort criterion without failure types", ErrInvalid)
		}
	}
	if spec.Timeouts.Execution < 0 || spec.Timeouts.InProgress < 0 || spec.Bake < 0 {
		return fmt.Errorf("%w: negative timeout or bake", ErrInvalid)
	}
	return nil
}

func (e *Engine) addExecution(r *rollout, dev string, now time.Time) *Execution {
	e.touch(r)
	if c := e.chg; c != nil {
		if _, ok := c.devices[dev]; !ok {
			c.devices[dev] = len(e.byDevice[dev])
		}
	}
	x := &Execution{Deployment: r.d.ID, Device: dev, Status: ExecQueued, Number: 1, Version: 1, QueuedAt: now,
		UpdatedAt: now, Order: len(r.execs)}
	r.execs = append(r.execs, x)
	r.byDev[dev] = x
	r.d.Counters.Total++
	r.d.Counters.add(x, 1)
	e.byDevice[dev] = append(e.byDevice[dev], x)
	e.saveExecution(x)
	return x
}

// Deployment returns the deployment with the id.
func (e *Engine) Deployment(id string) (Deployment, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.deps[id]
	if !ok {
		return Deployment{}, fmt.Errorf("deployment %s: %w", id, ErrNotFound)
	}
	return r.d, nil
}

// Deployments returns the deployments of a kind ("" for all), in creation order.
func (e *Engine) Deployments(kind string) []Deployment {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Deployment
	for _, r := range e.order {
		if kind == "" || r.d.Kind == kind {
			out = append(out, r.d)
		}
	}
	return out
}

// Executions returns the deployment's executions in release order.
func (e *Engine) Executions(id string) ([]Execution, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.deps[id]
	if !ok {
		return nil, fmt.Errorf("deployment %s: %w", id, ErrNotFound)
	}
	out := make([]Execution, len(r.execs))
	for i, x := range r.execs {
		out[i] = x.clone()
	}
	return out, nil
}

// Execution returns one device's execution of a deployment.
func (e *Engine) Execution(id, device string) (Execution, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, err := e.findLocked(id, device)
	if err != nil {
		return Execution{}, err
	}
	return x.clone(), nil
}

func (e *Engine) findLocked(id, device string) (*Execution, error) {
	r, ok := e.deps[id]
	if !ok {
		return nil, fmt.Errorf("deployment %s: %w", id, ErrNotFound)
	}
	x, ok := r.byDev[device]
	if !ok {
		return nil, fmt.Errorf("execution of %s on %s: %w", id, device, ErrNotFound)
	}
	return x, nil
}

// Active returns the group's deployment that is not terminal, if any.
func (e *Engine) Active(group string) (Deployment, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r := e.activeLocked(group); r != nil {
		return r.d, true
	}
	return Deployment{}, false
}

func (e *Engine) activeLocked(group string) *rollout {
	var found *rollout
	for r := range e.live {
		if r.d.Group == group && (found == nil || r.d.CreatedAt.Before(found.d.CreatedAt)) {
			found = r
		}
	}
	return found
}

// LatestForDevice returns the device's most recently created execution.
func (e *Engine) LatestForDevice(device string) (Execution, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	xs := e.byDevice[device]
	if len(xs) == 0 {
		return Execution{}, false
	}
	return xs[len(xs)-1].clone(), true
}

// Cancel ends a deployment that is not terminal: queued executions are canceled; executions in progress run on
// and may still report.
func (e *Engine) Cancel(id, reason string) (Deployment, error) {
	return e.end(id, StatusCanceled, reason, ReasonCanceled)
}

// Alarm rolls back a deployment that is deploying or baking: it becomes RolledBack and its queued executions
// are canceled. Devices learn of the rollback from their dialect (a configuration served again, a previous
// revision redeployed).
func (e *Engine) Alarm(id, reason string) (Deployment, error) {
	return e.end(id, StatusRolledBack, reason, ReasonRolledBack)
}

func (e *Engine) end(id string, to Status, reason, execReason string) (Deployment, error) {
	var d Deployment
	err := e.control(func() (func(), error) {
		r, ok := e.deps[id]
		if !ok {
			return nil, fmt.Errorf("deployment %s: %w", id, ErrNotFound)
		}
		if r.d.Status.Terminal() {
			d = r.d
			return nil, fmt.Errorf("deployment %s is %s: %w", id, r.d.Status, ErrInvalidTransition)
		}
		e.endLocked(r, to, reason, execReason, e.clock.Now())
		return func() { d = r.d }, nil
	}, nil)
	return d, err
}

// endLocked moves r to a terminal status and cancels its queued executions.
func (e *Engine) endLocked(r *rollout, to Status, reason, execReason string, now time.Time) {
	for _, x := range r.execs {
		if x.Status == ExecQueued {
			e.transition(r, x, ExecCanceled, execReason, now)
		}
	}
	e.setStatus(r, to, reason, now)
}

// AddTarget adds a device to a continuous deployment. Once the deployment has started, the device's execution is
// released at once: pacing governs only the devices present at creation, as IoT Jobs does. It is a control
// operation: a failed commit leaves the deployment as it was.
func (e *Engine) AddTarget(id, device string) error {
	if device == "" {
		return fmt.Errorf("%w: empty target name", ErrInvalid)
	}
	return e.control(func() (func(), error) {
		r, ok := e.deps[id]
		switch {
		case !ok:
			return nil, fmt.Errorf("deployment %s: %w", id, ErrNotFound)
		case !r.d.Continuous:
			return nil, fmt.Errorf("deployment %s is not continuous: %w", id, ErrInvalidTransition)
		case r.d.Status.Terminal():
			return nil, fmt.Errorf("deployment %s is %s: %w", id, r.d.Status, ErrInvalidTransition)
		case r.byDev[device] != nil:
			return nil, fmt.Errorf("%s in deployment %s: %w", device, id, ErrExists)
		}
		now := e.clock.Now()
		x := e.addExecution(r, device, now)
		if r.d.Status == StatusPending {
			r.d.Initial++
		} else {
			e.release(r, x, now)
		}
		return func() {}, nil
	}, nil)
}

// RemoveTarget ends a device's unfinished execution as REMOVED (the device left the target group). It is a
// control operation: a failed commit leaves the execution as it was.
func (e *Engine) RemoveTarget(id, device string) error {
	return e.control(func() (func(), error) {
		x, err := e.findLocked(id, device)
		if err != nil {
			return nil, err
		}
		if !x.Status.Terminal() {
			r := e.deps[id]
			now := e.clock.Now()
			e.transition(r, x, ExecRemoved, ReasonRemoved, now)
			e.settle(r, now)
		}
		return func() {}, nil
	}, nil)
}
