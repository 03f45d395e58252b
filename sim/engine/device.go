package engine

import (
	"fmt"
	"maps"
	"time"

	"github.com/fleetlab/fleetlab/sim/event"
)

// Pending returns the device's released executions that have not ended: those in progress and those queued,
// each oldest first.
func (e *Engine) Pending(device string) (inProgress, queued []Execution) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, x := range e.byDevice[device] {
		switch {
		case !x.Released:
		case x.Status == ExecInProgress:
			inProgress = append(inProgress, x.clone())
		case x.Status == ExecQueued:
			queued = append(queued, x.clone())
		}
	}
	return inProgress, queued
}

// StartNext returns the device's oldest execution in progress, or else starts its oldest queued one with u's
// details and step timeout. ok is false when the device has nothing pending.
func (e *Engine) StartNext(device string, u Update) (x Execution, ok bool, err error) {
	e.mu.Lock()
	var next *Execution
	for _, c := range e.byDevice[device] {
		if !c.Released || c.Status.Terminal() {
			continue
		}
		if c.Status == ExecInProgress {
			next = c
			break
		}
		if next == nil {
			next = c
		}
	}
	if next == nil {
		e.mu.Unlock()
		return Execution{}, false, nil
	}
	if next.Status == ExecQueued {
		u.Status = ExecInProgress
		u.ExpectedVersion = 0
		if _, err := e.reportLocked(next, u); err != nil {
			e.mu.Unlock()
			return Execution{}, false, err
		}
	}
	out := next.clone()
	e.mu.Unlock()
	e.poke()
	return out, true, e.commit()
}

// Report applies a device's update to its execution of deployment id.
func (e *Engine) Report(device, id string, u Update) (Execution, error) {
	e.mu.Lock()
	x, err := e.findLocked(id, device)
	if err == nil && !x.Released {
		err = fmt.Errorf("execution of %s on %s is not released: %w", id, device, ErrNotFound)
	}
	if err != nil {
		e.mu.Unlock()
		return Execution{}, err
	}
	out, err := e.reportLocked(x, u)
	e.mu.Unlock()
	if err != nil {
		return out, err
	}
	e.poke()
	return out, e.commit()
}

func (e *Engine) reportLocked(x *Execution, u Update) (Execution, error) {
	if x.Status.Terminal() {
		return x.clone(), fmt.Errorf("execution of %s on %s is %s: %w", x.Deployment, x.Device, x.Status, ErrTerminal)
	}
	if u.ExpectedVersion != 0 && u.ExpectedVersion != x.Version {
		return x.clone(), fmt.Errorf("expected version %d, execution is at %d: %w", u.ExpectedVersion, x.Version,
			ErrVersionMismatch)
	}
	switch u.Status {
	case ExecInProgress, ExecSucceeded, ExecFailed, ExecRejected:
	default:
		return x.clone(), fmt.Errorf("%s to %s: %w", x.Status, u.Status, ErrInvalidTransition)
	}
	r := e.deps[x.Deployment]
	now := e.clock.Now()
	oldStep := x.Reported.Step
	oldDeadline := x.Deadline(r.d.Timeouts)
	if u.Details != nil {
		x.Details = maps.Clone(u.Details)
		x.Reported = u.Reported
	}
	if u.StepTimeout > 0 {
		x.StepDeadline = now.Add(u.StepTimeout)
	} else if u.Status != x.Status {
		x.StepDeadline = time.Time{}
	}
	if step := x.Reported.Step; step != "" && step != oldStep {
		e.emit(event.Event{Kind: event.ExecutionStep, Deployment: x.Deployment, Device: x.Device, Step: step,
			Percent: x.Reported.Percent, Time: now})
	}
	if u.Status != x.Status {
		e.transition(r, x, u.Status, "", now)
	} else {
		x.Version++
		x.UpdatedAt = now
		e.saveExecution(x)
	}
	if dl := x.Deadline(r.d.Timeouts); !dl.IsZero() && !dl.Equal(oldDeadline) {
		e.timeouts.push(deadline{at: dl, x: x})
	}
	e.settle(r, now)
	return x.clone(), nil
}
