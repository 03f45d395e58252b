package faults

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// strikeFunc does a fault to one device. sync says it runs inside the device agent's report of the step, after
// the service acknowledged it: the agent goes no further until it returns, and ctx is the report's (it ends
// when the agent stops). Otherwise it runs on its own goroutine just after the agent entered the step.
type strikeFunc func(ctx context.Context, device string, sync bool) error

// trigger strikes a fault's targets: all of them at Inject when the fault has no step, or each one when it
// enters the step, once per execution (a device resumed at the step after a crash is not struck again).
//
// With a step, a device that is a fleet.ExecutorHook is watched through its transport — the strike happens in
// the agent's own call path, exactly at the step — a fleet.StepHooker through its link, where the answer to its
// report of the step is held until the strike is done (as exact: the agent waits for that answer), and any other
// device through its agent events, which is asynchronous: the agent may get a little further before the strike
// lands.
type trigger struct {
	a      Arming
	strike strikeFunc
	active atomic.Bool

	mu      sync.Mutex
	struck  map[string]bool // device + "/" + job
	removes []func()
	fires   *clock.Group // asynchronous strikes
	done    chan struct{}
}

// newTrigger arms the watch for a.Step (nothing to watch without one).
func newTrigger(a Arming, strike strikeFunc) (*trigger, error) {
	t := &trigger{a: a, strike: strike, struck: map[string]bool{}, fires: clock.NewGroup(a.World.Clock()),
		done: make(chan struct{})}
	if a.Step == "" {
		return t, nil
	}
	var watched []string
	for _, dev := range a.Targets {
		d, ok := a.World.Device(dev)
		if !ok {
			t.disarm()
			return nil, fmt.Errorf("fault %s: no device %s in the fleet", a.Name, dev)
		}
		if sh, ok := d.(fleet.StepHooker); ok {
			if _, hook := d.(fleet.ExecutorHook); !hook {
				t.removes = append(t.removes, sh.HookSteps(func(ctx context.Context, job, step string) error {
					if step != a.Step || !t.first(dev, job) {
						return nil
					}
					err := t.fire(ctx, dev, true)
					if err != nil && ctx.Err() == nil {
						t.a.emit(event.Log, dev, a.Step, "strike: "+err.Error())
					}
					return err
				}))
				continue
			}
		}
		if _, hook := d.(fleet.ExecutorHook); !hook {
			watched = append(watched, dev)
			continue
		}
		remove, err := a.World.WrapExecutors(dev, func(ex agent.Executors) agent.Executors {
			ex.Transport = &stepTransport{Transport: ex.Transport, after: func(ctx context.Context, job, step string) error {
				if step != a.Step || !t.first(dev, job) {
					return nil
				}
				return t.fire(ctx, dev, true)
			}}
			return ex
		})
		if err != nil {
			t.disarm()
			return nil, err
		}
		t.removes = append(t.removes, remove)
	}
	if len(watched) > 0 {
		targets := map[string]bool{}
		for _, d := range watched {
			targets[d] = true
		}
		t.removes = append(t.removes, a.World.WatchAgents(func(dev string, e agent.Event) {
			if e.Kind != agent.EventState || e.State != a.Step || !targets[dev] || !t.first(dev, e.JobID) {
				return
			}
			t.fires.Go("strike "+dev, func() { t.fire(context.Background(), dev, false) })
		}))
	}
	return t, nil
}

// first reports whether this is the first time dev reaches the step in job, while the fault is injected.
func (t *trigger) first(dev, job string) bool {
	if !t.active.Load() {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	k := dev + "/" + job
	if t.struck[k] {
		return false
	}
	t.struck[k] = true
	return true
}

// fire strikes one device and records it.
func (t *trigger) fire(ctx context.Context, dev string, sync bool) error {
	t.a.emit(event.FaultInjected, dev, t.a.Step, "struck")
	err := t.strike(ctx, dev, sync)
	if err != nil && !sync {
		t.a.emit(event.Log, dev, t.a.Step, "strike: "+err.Error())
	}
	return err
}

// inject starts striking: every target at once without a step, or each as it reaches the step.
func (t *trigger) inject(ctx context.Context) error {
	t.active.Store(true)
	if t.a.Step != "" {
		return nil
	}
	for _, dev := range t.a.Targets {
		if err := t.fire(ctx, dev, false); err != nil {
			return err
		}
	}
	return nil
}

// pause stops striking; devices struck stay struck until the fault undoes its effect.
func (t *trigger) pause() { t.active.Store(false) }

// disarm removes the watches and waits for asynchronous strikes to return.
func (t *trigger) disarm() {
	t.active.Store(false)
	for _, r := range t.removes {
		r()
	}
	t.removes = nil
	select {
	case <-t.done:
	default:
		close(t.done)
	}
	t.fires.Wait()
}

// stepTransport is a Transport that calls after with each step the agent reports in progress, once the
// service has acknowledged the report; an error from after is the report's error.
type stepTransport struct {
	agent.Transport
	after func(ctx context.Context, job, step string) error
}

// Update implements agent.Transport.
func (s *stepTransport) Update(ctx context.Context, job string, req wire.UpdateJobExecutionRequest) (wire.UpdateJobExecutionResponse, error) {
	out, err := s.Transport.Update(ctx, job, req)
	if err != nil || req.Status != wire.StatusInProgress {
		return out, err
	}
	if step := req.StatusDetails[wire.DetailStep]; step != "" {
		if err := s.after(ctx, job, step); err != nil {
			return out, err
		}
	}
	return out, nil
}

// stepTracker records the step each device last reported, for faults that act on what a step does (a script
// of the step) rather than on reaching it.
type stepTracker struct {
	mu   sync.Mutex
	step map[string]string
}

func newStepTracker() *stepTracker { return &stepTracker{step: map[string]string{}} }

func (s *stepTracker) set(dev, step string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.step[dev] = step
}

func (s *stepTracker) get(dev string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.step[dev]
}

// trackingTransport records each step the agent reports before sending the report.
type trackingTransport struct {
	agent.Transport
	dev     string
	tracker *stepTracker
}

// Update implements agent.Transport.
func (t *trackingTransport) Update(ctx context.Context, job string, req wire.UpdateJobExecutionRequest) (wire.UpdateJobExecutionResponse, error) {
	if step := req.StatusDetails[wire.DetailStep]; step != "" && req.Status == wire.StatusInProgress {
		t.tracker.set(t.dev, step)
	}
	return t.Transport.Update(ctx, job, req)
}

// wrapAll wraps the executors of every target, undoing the ones done when one fails.
func wrapAll(a Arming, wrap func(dev string, ex agent.Executors) agent.Executors) (remove func(), err error) {
	var removes []func()
	undo := func() {
		for _, r := range removes {
			r()
		}
	}
	for _, dev := range a.Targets {
		if _, err := device[fleet.ExecutorHook](a, dev, "fleet.ExecutorHook"); err != nil {
			undo()
			return nil, err
		}
		r, err := a.World.WrapExecutors(dev, func(ex agent.Executors) agent.Executors { return wrap(dev, ex) })
		if err != nil {
			undo()
			return nil, err
		}
		removes = append(removes, r)
	}
	return undo, nil
}
