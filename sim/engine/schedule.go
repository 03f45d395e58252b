package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/event"
)

// transition moves an execution to a new status, keeping counters and writing it.
func (e *Engine) transition(r *rollout, x *Execution, to ExecStatus, reason string, now time.Time) {
	e.touch(r)
	e.saveExec(x)
	from := x.Status
	r.d.Counters.add(x, -1)
	x.Status = to
	x.Version++
	x.UpdatedAt = now
	if reason != "" {
		x.Reason = reason
	}
	if to == ExecInProgress && x.StartedAt.IsZero() {
		x.StartedAt = now
	}
	r.d.Counters.add(x, 1)
	if x.Released && !from.Terminal() && to.Terminal() {
		r.inFlight--
	}
	e.saveExecution(x)
	ev := event.Event{Kind: event.ExecutionState, Deployment: x.Deployment, Device: x.Device, From: string(from),
		To: string(to), Step: x.Reported.Step, Code: x.Reported.Code, Reason: reason, Time: now}
	if ev.Reason == "" {
		ev.Reason = x.Reported.Reason
	}
	e.emit(ev)
}

func (e *Engine) setStatus(r *rollout, to Status, reason string, now time.Time) {
	e.touch(r)
	from := r.d.Status
	r.d.Status = to
	r.d.UpdatedAt = now
	r.d.Version++
	if reason != "" {
		r.d.Reason = reason
	}
	switch {
	case to == StatusInProgress:
		r.d.StartedAt = now
	case to.Terminal():
		r.d.EndedAt = now
		delete(e.live, r)
	}
	e.saveDeployment(r)
	e.emit(event.Event{Kind: event.DeploymentState, Deployment: r.d.ID, From: string(from), To: string(to),
		Reason: reason, Time: now})
}

// Tick does the work due at the clock's now — starts, releases, timeouts, abort, bake and completion — and
// returns when work is next due (zero when only a device or an API call can cause more).
func (e *Engine) Tick() time.Time {
	e.mu.Lock()
	now := e.clock.Now()
	for {
		top, ok := e.timeouts.peek()
		if !ok || top.at.After(now) {
			break
		}
		e.timeouts.pop()
		x := top.x
		r := e.deps[x.Deployment]
		if r == nil || r.byDev[x.Device] != x || x.Status.Terminal() || !x.Deadline(r.d.Timeouts).Equal(top.at) {
			continue // stale: the execution ended, its deadline moved, or a failed control operation undid it
		}
		e.transition(r, x, ExecTimedOut, ReasonTimeout, now)
		e.settle(r, now)
	}
	var next time.Time
	for _, r := range e.order {
		if _, ok := e.live[r]; !ok {
			continue
		}
		next = earliest(next, e.advance(r, now))
	}
	if top, ok := e.timeouts.peek(); ok {
		next = earliest(next, top.at)
	}
	e.mu.Unlock()
	if err := e.commit(); err != nil {
		// The store refused a write; the next Tick writes the same records again.
		e.emit(event.Event{Kind: event.Log, Reason: "engine: commit: " + err.Error(), Time: now})
	}
	return next
}

// advance starts, paces and settles one deployment at now; it returns when it next needs a Tick.
func (e *Engine) advance(r *rollout, now time.Time) time.Time {
	if r.d.Status == StatusPending {
		if now.Before(r.d.StartAt) {
			return r.d.StartAt
		}
		e.setStatus(r, StatusInProgress, "", now)
	}
	var next time.Time
	if r.d.Status == StatusInProgress {
		n, at := r.d.PacingSpec.Allowance(now, e.progress(r))
		for ; n > 0 && r.cursor < len(r.execs); n-- {
			e.release(r, r.execs[r.cursor], now)
		}
		next = at
	}
	return earliest(next, e.settle(r, now))
}

func (e *Engine) progress(r *rollout) Progress {
	return Progress{Start: r.d.StartedAt, Initial: r.d.Initial, Released: r.paced, InFlight: r.inFlight,
		Succeeded: r.d.Counters.Succeeded, LastRelease: r.d.LastRelease}
}

func (e *Engine) release(r *rollout, x *Execution, now time.Time) {
	e.touch(r)
	e.saveExec(x)
	x.Released = true
	x.ReleasedAt = now
	x.UpdatedAt = now
	r.d.Counters.Released++
	r.inFlight++
	if x.Order < r.d.Initial {
		r.paced++
		r.d.LastRelease = now
	}
	r.advanceCursor()
	e.saveExecution(x)
	if dl := x.Deadline(r.d.Timeouts); !dl.IsZero() {
		e.timeouts.push(deadline{at: dl, x: x})
	}
	e.emit(event.Event{Kind: event.ExecutionReleased, Deployment: x.Deployment, Device: x.Device,
		To: string(x.Status), Time: now})
}

func (r *rollout) advanceCursor() {
	for r.cursor < len(r.execs) && (r.execs[r.cursor].Released || r.execs[r.cursor].Status.Terminal()) {
		r.cursor++
	}
}

// settle applies abort criteria, completion and bake to r, and paces it when an execution ended; it returns
// when r next needs a Tick.
func (e *Engine) settle(r *rollout, now time.Time) time.Time {
	switch r.d.Status {
	case StatusInProgress:
		if c, ok := r.abortMet(); ok {
			e.endLocked(r, StatusAborted, c, ReasonAborted, now)
			return time.Time{}
		}
		if r.d.Continuous || r.d.Counters.Ended() < r.d.Counters.Total {
			// A slot may have freed: pace again (Batch releases on endings, not on time).
			if r.d.PacingSpec.Kind == PaceBatch {
				n, _ := r.d.PacingSpec.Allowance(now, e.progress(r))
				for ; n > 0 && r.cursor < len(r.execs); n-- {
					e.release(r, r.execs[r.cursor], now)
				}
			}
			return time.Time{}
		}
		if done := r.d.PacingSpec.GrowthDone(r.d.StartedAt); now.Before(done) {
			return done
		}
		if r.d.Bake > 0 {
			e.touch(r)
			r.d.BakeUntil = now.Add(r.d.Bake)
			e.setStatus(r, StatusBaking, "", now)
			return r.d.BakeUntil
		}
		e.complete(r, now)
	case StatusBaking:
		if now.Before(r.d.BakeUntil) {
			return r.d.BakeUntil
		}
		e.complete(r, now)
	}
	return time.Time{}
}

func (e *Engine) complete(r *rollout, now time.Time) {
	if r.d.Counters.Succeeded == r.d.Counters.Total {
		e.setStatus(r, StatusSucceeded, "", now)
		return
	}
	c := r.d.Counters
	e.setStatus(r, StatusFailed, fmt.Sprintf("%d of %d executions did not succeed", c.Total-c.Succeeded, c.Total),
		now)
}

// abortMet evaluates the abort criteria; it returns the reason of the first one met.
func (r *rollout) abortMet() (string, bool) {
	c := r.d.Counters
	for _, a := range r.d.Abort {
		failed := 0
		for _, t := range a.FailureTypes {
			switch t {
			case ExecFailed:
				failed += c.Failed
			case ExecTimedOut:
				failed += c.TimedOut
			case ExecRejected:
				failed += c.Rejected
			}
		}
		executed := c.Released
		if executed < a.MinExecuted || failed == 0 {
			continue
		}
		denom := executed
		if a.OfTotal {
			denom = c.Total
		}
		// Compare in hundredths of a percent, in integers, so a threshold exactly met is met.
		lhs := int64(failed) * 100 * 100
		rhs := int64(a.Percent*100+0.5) * int64(denom)
		if lhs > rhs || (a.AtLeast && lhs == rhs) {
			return fmt.Sprintf("abort criteria met: %d of %d executions failed (threshold %v%%)", failed, denom,
				a.Percent), true
		}
	}
	return "", false
}

// Run ticks whenever work is due or the engine's state changed, until ctx ends. It waits through the clock's
// primitives, so on a virtual-time world's clock it is one of the world's actors.
func (e *Engine) Run(ctx context.Context) error {
	for {
		next := e.Tick()
		d := clock.Forever
		if !next.IsZero() {
			d = next.Sub(e.clock.Now())
		}
		if _, err := clock.Wait(ctx, e.clock, d, e.kick); err != nil {
			return nil
		}
	}
}

// poke wakes Run so it recomputes when work is next due.
func (e *Engine) poke() { e.kick.Notify() }

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
