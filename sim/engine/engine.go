// Package engine is the rollout engine: deployments, one execution per target device, pacing, abort criteria,
// timeouts, bake, cancel and rollback. It knows no dialect's names; the API dialects in sim/awsapi translate to
// and from it, and the device API is a thin layer over its device-side methods.
//
// The engine is logic over a Clock and a Store. Every method is synchronous; time-driven work (releases,
// timeouts, bake) is done by Tick, which a caller (Run, or a test with a fake clock) calls when work is due.
// State changes are written to the store before a method returns (group-committed across concurrent callers),
// and every transition is delivered to the subscribed sinks as an event, in order. Control operations (Create,
// Cancel, Alarm, AddTarget, RemoveTarget) are all or nothing: nobody sees their changes before they are
// committed, and a failed commit leaves memory as it was (change.go).
package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/store"
)

// Store buckets the engine owns.
const (
	bucketDeployments = "engine.deployments"
	bucketExecutions  = "engine.executions"
)

// Options are the engine's dependencies. Nil fields get defaults in New.
type Options struct {
	// Clock is the service clock; nil means the real clock.
	Clock clock.Clock
	// Store persists deployments and executions; required. Control operations commit to it with the engine
	// locked, so the engine must not be called from inside a transaction of this store (a View that asked the
	// engine for something would wait on a commit that waits on the View).
	Store store.Store
	// Events, when set, receives every transition (as if passed to Subscribe).
	Events event.Sink
}

// Engine runs rollouts. It is safe for concurrent use.
type Engine struct {
	clock clock.Clock
	store store.Store

	mu       sync.Mutex
	deps     map[string]*rollout
	order    []*rollout              // creation order
	byDevice map[string][]*Execution // every execution of a device, in creation order
	live     map[*rollout]struct{}   // deployments whose status is not terminal
	timeouts deadlines
	seq      uint64
	pending  map[string][]byte // store writes not yet committed, by bucket+key
	pendSeq  uint64            // sequence of the last queued write
	evq      []event.Event     // events not yet delivered
	chg      *change           // the control operation under way (change.go), nil outside one

	commitMu sync.Mutex
	durable  uint64 // sequence up to which writes are committed (guarded by commitMu)

	deliverMu sync.Mutex
	subsMu    sync.Mutex
	subs      map[int]event.Sink
	nextSub   int

	kick *clock.Signal // wakes Run
}

// rollout is a deployment with its executions.
type rollout struct {
	d        Deployment
	execs    []*Execution // release order
	byDev    map[string]*Execution
	cursor   int // every execution before it is released or ended
	inFlight int // released and not ended
	paced    int // executions of the initial targets released (pacing counts only these)
}

// New returns an engine over opts.Store, with every deployment and execution the store holds. Rollouts that were
// in progress resume: the next Tick releases, times out and completes them as the clock says.
func New(opts Options) (*Engine, error) {
	if opts.Store == nil {
		return nil, fmt.Errorf("engine: a store is required")
	}
	e := &Engine{
		clock:    clock.Or(opts.Clock),
		store:    opts.Store,
		deps:     map[string]*rollout{},
		byDevice: map[string][]*Execution{},
		live:     map[*rollout]struct{}{},
		pending:  map[string][]byte{},
		subs:     map[int]event.Sink{},
	}
	e.kick = clock.NewSignal(e.clock)
	if opts.Events != nil {
		e.Subscribe(opts.Events)
	}
	if err := e.load(); err != nil {
		return nil, fmt.Errorf("engine: load: %w", err)
	}
	return e, nil
}

func (e *Engine) load() error {
	var deps []*rollout
	err := e.store.View(func(tx store.Tx) error {
		if err := tx.ForEach(bucketDeployments, "", func(_ string, v []byte) error {
			r := &rollout{byDev: map[string]*Execution{}}
			if err := json.Unmarshal(v, &r.d); err != nil {
				return err
			}
			deps = append(deps, r)
			return nil
		}); err != nil {
			return err
		}
		for _, r := range deps {
			e.deps[r.d.ID] = r
		}
		return tx.ForEach(bucketExecutions, "", func(_ string, v []byte) error {
			x := &Execution{}
			if err := json.Unmarshal(v, x); err != nil {
				return err
			}
			r := e.deps[x.Deployment]
			if r == nil {
				return fmt.Errorf("execution %s/%s of an unknown deployment", x.Deployment, x.Device)
			}
			r.execs = append(r.execs, x)
			r.byDev[x.Device] = x
			return nil
		})
	})
	if err != nil {
		return err
	}
	slices.SortFunc(deps, func(a, b *rollout) int {
		if c := cmp.Compare(a.d.Ordinal, b.d.Ordinal); c != 0 {
			return c
		}
		if c := a.d.CreatedAt.Compare(b.d.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.d.ID, b.d.ID)
	})
	created := make(map[string]int, len(deps)) // deployment id → place in creation order
	for i, r := range deps {
		created[r.d.ID] = i
		slices.SortFunc(r.execs, func(a, b *Execution) int { return cmp.Compare(a.Order, b.Order) })
		// Counters and the last release are derived from the executions, which are written on every change.
		r.d.Counters = Counters{}
		r.d.LastRelease = time.Time{}
		for _, x := range r.execs {
			r.d.Counters.Total++
			r.d.Counters.add(x, 1)
			if x.Released {
				r.d.Counters.Released++
				if !x.Status.Terminal() {
					r.inFlight++
				}
				// Pacing counts only the initial targets; a device that joined later is released all the same.
				if x.Order < r.d.Initial {
					r.paced++
					if x.ReleasedAt.After(r.d.LastRelease) {
						r.d.LastRelease = x.ReleasedAt
					}
				}
			}
			e.byDevice[x.Device] = append(e.byDevice[x.Device], x)
			if dl := x.Deadline(r.d.Timeouts); !dl.IsZero() {
				e.timeouts.push(deadline{at: dl, x: x})
			}
		}
		r.advanceCursor()
		e.order = append(e.order, r)
		if !r.d.Status.Terminal() {
			e.live[r] = struct{}{}
		}
	}
	for dev, xs := range e.byDevice {
		slices.SortFunc(xs, func(a, b *Execution) int {
			if c := a.QueuedAt.Compare(b.QueuedAt); c != 0 {
				return c
			}
			return cmp.Compare(created[a.Deployment], created[b.Deployment])
		})
		e.byDevice[dev] = xs
	}
	return nil
}

// Subscribe delivers every later event to s, in order, until cancel is called. Sinks are called one at a time
// and must not call methods of the engine that change state.
func (e *Engine) Subscribe(s event.Sink) (cancel func()) {
	e.subsMu.Lock()
	defer e.subsMu.Unlock()
	id := e.nextSub
	e.nextSub++
	e.subs[id] = s
	return func() {
		e.subsMu.Lock()
		defer e.subsMu.Unlock()
		delete(e.subs, id)
	}
}

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
	oldStep := x.Details[DetailStep]
	oldDeadline := x.Deadline(r.d.Timeouts)
	if u.Details != nil {
		x.Details = maps.Clone(u.Details)
	}
	if u.StepTimeout > 0 {
		x.StepDeadline = now.Add(u.StepTimeout)
	} else if u.Status != x.Status {
		x.StepDeadline = time.Time{}
	}
	if step := x.Details[DetailStep]; step != "" && step != oldStep {
		ev := event.Event{Kind: event.ExecutionStep, Deployment: x.Deployment, Device: x.Device, Step: step,
			Time: now}
		if pct, ok := x.Details[DetailPercent]; ok {
			fmt.Sscan(pct, &ev.Percent)
		}
		e.emit(ev)
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
		To: string(to), Step: x.Details[DetailStep], Code: x.Details[DetailCode], Reason: reason, Time: now}
	if ev.Reason == "" {
		ev.Reason = x.Details[DetailReason]
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

func (e *Engine) emit(ev event.Event) {
	if ev.Deployment != "" { // every event of a deployment is emitted with e.mu held
		if r, ok := e.deps[ev.Deployment]; ok {
			ev.Dialect = r.d.Kind
		}
	}
	e.seq++
	ev.Seq = e.seq
	e.evq = append(e.evq, ev)
}

func (e *Engine) saveDeployment(r *rollout) {
	b, err := json.Marshal(&r.d)
	if err != nil {
		panic(fmt.Sprintf("engine: encode deployment: %v", err)) // plain data: cannot fail
	}
	e.queueWrite(bucketDeployments, r.d.ID, b)
}

func (e *Engine) saveExecution(x *Execution) {
	e.queueWrite(bucketExecutions, x.Deployment+"/"+x.Device, appendExecution(make([]byte, 0, 256), x))
}

func (e *Engine) queueWrite(bucket, key string, v []byte) {
	e.pending[bucket+"\x00"+key] = v
	e.pendSeq++
}

// commit writes every queued change to the store and then delivers queued events. Concurrent callers share
// commits: whoever holds commitMu writes everything queued so far, and the others find their writes durable.
func (e *Engine) commit() error {
	e.mu.Lock()
	mine := e.pendSeq
	e.mu.Unlock()
	e.commitMu.Lock()
	var err error
	if e.durable < mine {
		e.mu.Lock()
		batch, upto := e.pending, e.pendSeq
		e.pending = make(map[string][]byte, len(batch))
		e.mu.Unlock()
		err = e.store.Update(func(tx store.Tx) error {
			for k, v := range batch {
				bucket, key, _ := strings.Cut(k, "\x00")
				if err := tx.Put(bucket, key, v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			// Put the batch back, under anything newer queued since, so nothing acknowledged is dropped.
			e.mu.Lock()
			for k, v := range batch {
				if _, newer := e.pending[k]; !newer {
					e.pending[k] = v
				}
			}
			e.mu.Unlock()
		} else {
			e.durable = upto
		}
	}
	e.commitMu.Unlock()
	e.deliver()
	return err
}

// deliver hands queued events to the subscribers, in sequence order.
func (e *Engine) deliver() {
	e.deliverMu.Lock()
	defer e.deliverMu.Unlock()
	e.mu.Lock()
	evs := e.evq
	e.evq = nil
	e.mu.Unlock()
	if len(evs) == 0 {
		return
	}
	e.subsMu.Lock()
	subs := make([]event.Sink, 0, len(e.subs))
	for id := 0; id < e.nextSub; id++ {
		if s, ok := e.subs[id]; ok {
			subs = append(subs, s)
		}
	}
	e.subsMu.Unlock()
	for _, ev := range evs {
		for _, s := range subs {
			s.Emit(ev)
		}
	}
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// add counts x's status n times (1 or -1).
func (c *Counters) add(x *Execution, n int) {
	switch x.Status {
	case ExecQueued:
		c.Queued += n
	case ExecInProgress:
		c.InProgress += n
	case ExecSucceeded:
		c.Succeeded += n
	case ExecFailed:
		c.Failed += n
	case ExecTimedOut:
		c.TimedOut += n
	case ExecRejected:
		c.Rejected += n
	case ExecCanceled:
		c.Canceled += n
	case ExecRemoved:
		c.Removed += n
	}
}

func (x *Execution) clone() Execution {
	out := *x
	out.Details = maps.Clone(x.Details)
	return out
}
