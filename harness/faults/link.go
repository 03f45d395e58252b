package faults

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"slices"
	"sync"

	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// linkFault is what the four link faults share: a shape added to each target's link when the fault strikes it
// (at Inject, or when it enters the step), taken away when the fault recovers or, with a duration, when that
// much of the run's clock has passed since the strike.
type linkFault struct {
	a     Arming
	shape fleet.Link
	// dur, when positive, heals each target that long after it was struck.
	dur Duration
	t   *trigger

	mu      sync.Mutex
	removes map[string]func() // the shapes in force, by device
	stop    chan struct{}
	heals   *clock.Group
}

// armLink arms a link fault; every target must be a fleet.Linker with a link to shape (a robot of the
// in-process host's direct path has none: fleet.CanShapeLink).
func armLink(a Arming, shape fleet.Link, dur Duration) (Armed, error) {
	for _, dev := range a.Targets {
		lk, err := device[fleet.Linker](a, dev, "fleet.Linker")
		if err != nil {
			return nil, err
		}
		if err := fleet.CanShapeLink(lk); err != nil {
			return nil, fmt.Errorf("fault %s: %w", a.Name, err)
		}
	}
	l := &linkFault{a: a, shape: shape, dur: dur, removes: map[string]func(){}, stop: make(chan struct{}),
		heals: clock.NewGroup(a.World.Clock())}
	t, err := newTrigger(a, l.strike)
	if err != nil {
		return nil, err
	}
	l.t = t
	return l, nil
}

// strike shapes dev's link. In the agent's report of the step it returns as soon as the shape is in force: the
// agent's next request meets it.
func (l *linkFault) strike(_ context.Context, dev string, _ bool) error {
	shape := l.shape
	h := fnv.New64a()
	h.Write([]byte(dev))
	shape.Seed = l.a.World.Seed() ^ h.Sum64()
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, on := l.removes[dev]; on {
		return nil
	}
	remove, err := l.a.World.ShapeLink(dev, shape)
	if err != nil {
		return err
	}
	l.removes[dev] = remove
	if l.dur > 0 {
		l.heals.Go("heal "+dev, func() {
			if clock.Sleep(l.a.World.Clock(), l.dur.D(), l.stop) {
				l.heal(dev, "healed after "+l.dur.D().String())
			}
		})
	}
	return nil
}

// heal takes the shape off dev's link.
func (l *linkFault) heal(dev, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if remove, on := l.removes[dev]; on {
		remove()
		delete(l.removes, dev)
		l.a.emit(event.FaultRecovered, dev, "", reason)
	}
}

func (l *linkFault) Inject(ctx context.Context) error { return l.t.inject(ctx) }

func (l *linkFault) Recover(context.Context) error {
	l.t.pause()
	l.mu.Lock()
	devs := slices.Sorted(maps.Keys(l.removes)) // in name order, so the events come in one order
	l.mu.Unlock()
	for _, dev := range devs {
		l.heal(dev, "recovered")
	}
	return nil
}

func (l *linkFault) Disarm() {
	l.t.disarm()
	close(l.stop)
	l.heals.Wait()
}

// Partition cuts its targets' link to the service: no request gets through, open notify channels drop. With
// Duration the link heals by itself that long after the cut (in the run's clock); without, at Recover. A
// partition that heals before the deployment's timeout leaves the robot to finish; one that outlasts it ends
// the robot NoResponse. With a step, each target is cut when it enters the step.
//
// Needs fleet.Linker.
type Partition struct {
	// Duration, when set, heals each target's link that long after it was cut.
	Duration Duration `json:"duration,omitempty"`
}

// Check implements Fault.
func (p *Partition) Check(Selector, Dialect) error {
	if p.Duration < 0 {
		return fmt.Errorf("duration %v is negative", p.Duration.D())
	}
	return nil
}

// Arm implements Fault.
func (p *Partition) Arm(a Arming) (Armed, error) {
	return armLink(a, fleet.Link{Partition: true}, p.Duration)
}

// Latency delays every request of its targets by Latency before it is sent. A latency past the agent's request
// timeout turns every call into a retry; past the deployment's timeout, the robot ends NoResponse.
//
// Needs fleet.Linker.
type Latency struct {
	// Latency is added to each request; positive.
	Latency Duration `json:"latency"`
	// Duration, when set, ends the fault on each target that long after it started.
	Duration Duration `json:"duration,omitempty"`
}

// Check implements Fault.
func (l *Latency) Check(Selector, Dialect) error {
	if l.Latency <= 0 {
		return fmt.Errorf("latency %v must be positive", l.Latency.D())
	}
	if l.Duration < 0 {
		return fmt.Errorf("duration %v is negative", l.Duration.D())
	}
	return nil
}

// Arm implements Fault.
func (l *Latency) Arm(a Arming) (Armed, error) {
	return armLink(a, fleet.Link{Latency: l.Latency.D()}, l.Duration)
}

// Drop loses Rate of its targets' requests, as a reset connection loses them; which ones is decided by the
// run's seed. The agent retries what was lost.
//
// Needs fleet.Linker.
type Drop struct {
	// Rate is the fraction of requests lost, in (0, 1].
	Rate float64 `json:"rate"`
	// Duration, when set, ends the fault on each target that long after it started.
	Duration Duration `json:"duration,omitempty"`
}

// Check implements Fault.
func (d *Drop) Check(Selector, Dialect) error {
	if !(d.Rate > 0 && d.Rate <= 1) || math.IsNaN(d.Rate) {
		return fmt.Errorf("rate %v outside (0, 1]", d.Rate)
	}
	if d.Duration < 0 {
		return fmt.Errorf("duration %v is negative", d.Duration.D())
	}
	return nil
}

// Arm implements Fault.
func (d *Drop) Arm(a Arming) (Armed, error) {
	return armLink(a, fleet.Link{DropRate: d.Rate}, d.Duration)
}

// Bandwidth throttles what its targets download to BytesPerSecond (in the run's clock): a bundle takes
// size/BytesPerSecond to arrive, and a deployment timeout shorter than that ends the robot NoResponse.
//
// Needs fleet.Linker.
type Bandwidth struct {
	// BytesPerSecond is the rate; positive.
	BytesPerSecond int64 `json:"bytesPerSecond"`
	// Duration, when set, ends the fault on each target that long after it started.
	Duration Duration `json:"duration,omitempty"`
}

// Check implements Fault.
func (b *Bandwidth) Check(Selector, Dialect) error {
	if b.BytesPerSecond <= 0 {
		return errors.New("bytesPerSecond must be positive")
	}
	if b.Duration < 0 {
		return fmt.Errorf("duration %v is negative", b.Duration.D())
	}
	return nil
}

// Arm implements Fault.
func (b *Bandwidth) Arm(a Arming) (Armed, error) {
	return armLink(a, fleet.Link{BytesPerSecond: b.BytesPerSecond}, b.Duration)
}
