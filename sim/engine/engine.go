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
//
// One file per job: control.go (the control API: create, cancel, alarm, targets, queries), device.go (the device
// API: pending, start, report), schedule.go (Tick and Run: release under pacing, timeouts, abort, bake,
// completion), commit.go (the group commit of queued writes), events.go (subscribers and ordered delivery).
package engine

import (
	"cmp"
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
