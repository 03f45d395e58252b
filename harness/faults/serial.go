package faults

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"

	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// serialLines returns the targets as fleet.SerialLine.
func serialLines(a Arming) (map[string]fleet.SerialLine, error) {
	out := map[string]fleet.SerialLine{}
	for _, dev := range a.Targets {
		l, err := device[fleet.SerialLine](a, dev, "fleet.SerialLine")
		if err != nil {
			return nil, err
		}
		out[dev] = l
	}
	return out, nil
}

// SerialNoise changes a fraction Rate of the bytes on its targets' serial lines, both ways, from Inject to
// Recover, the bytes chosen with the run's seed: frames arrive damaged, are found so by their checksum and sent
// again. The recovery's event says how many bytes were changed and frames resent while it lasted.
//
// Needs fleet.SerialLine (a rig board).
type SerialNoise struct {
	// Rate is the fraction of bytes changed, above 0 and at most 0.5.
	Rate float64 `json:"rate"`
}

// Check implements Fault.
func (n *SerialNoise) Check(sel Selector, _ Dialect) error {
	if n.Rate <= 0 || n.Rate > 0.5 {
		return fmt.Errorf("rate %v: want a fraction above 0 and at most 0.5", n.Rate)
	}
	if sel.Step != "" {
		return errors.New("serial-noise takes no step: it lasts from inject to recover")
	}
	return nil
}

// Arm implements Fault.
func (n *SerialNoise) Arm(a Arming) (Armed, error) {
	lines, err := serialLines(a)
	if err != nil {
		return nil, err
	}
	return &serialNoise{rate: n.Rate, a: a, lines: lines, at: map[string]fleet.SerialStats{}}, nil
}

type serialNoise struct {
	rate  float64
	a     Arming
	lines map[string]fleet.SerialLine
	at    map[string]fleet.SerialStats // the counts at Inject
}

func (k *serialNoise) Inject(context.Context) error {
	for _, dev := range k.a.Targets {
		h := fnv.New64a()
		h.Write([]byte(dev))
		k.at[dev] = k.lines[dev].SerialStats()
		k.lines[dev].SetSerialNoise(k.rate, k.a.World.Seed()^h.Sum64())
		k.a.emit(event.FaultInjected, dev, "", fmt.Sprintf("%.2f%% of the line's bytes changed", 100*k.rate))
	}
	return nil
}

func (k *serialNoise) Recover(context.Context) error {
	for _, dev := range k.a.Targets {
		k.lines[dev].SetSerialNoise(0, 0)
		now, was := k.lines[dev].SerialStats(), k.at[dev]
		k.a.emit(event.FaultRecovered, dev, "", fmt.Sprintf("%d bytes changed; lab side: %d frames sent, %d resent, %d received damaged",
			now.BytesChanged-was.BytesChanged, now.FramesSent-was.FramesSent, now.FramesResent-was.FramesResent,
			now.FramesCorrupt-was.FramesCorrupt))
	}
	return nil
}

func (k *serialNoise) Disarm() {}

// SerialUnplug unplugs its targets' serial lines: nothing passes either way, as with the cable pulled. With a
// step it strikes each target when it enters the step; without one, at Inject. With For the line is plugged back
// that long after (in the run's clock); without, at Recover. An unplug that outlasts the deployment's timeout
// ends the robot NoResponse; a shorter one leaves it to finish once its frames get through again.
//
// Needs fleet.SerialLine (a rig board).
type SerialUnplug struct {
	// For, when set, plugs each line back that long after it was pulled.
	For Duration `json:"for,omitempty"`
}

// Check implements Fault.
func (u *SerialUnplug) Check(Selector, Dialect) error {
	if u.For < 0 {
		return fmt.Errorf("for %v is negative", u.For.D())
	}
	return nil
}

// Arm implements Fault.
func (u *SerialUnplug) Arm(a Arming) (Armed, error) {
	lines, err := serialLines(a)
	if err != nil {
		return nil, err
	}
	k := &serialUnplug{p: *u, a: a, lines: lines, out: map[string]bool{}, stop: make(chan struct{})}
	if k.t, err = newTrigger(a, k.pull); err != nil {
		return nil, err
	}
	return k, nil
}

type serialUnplug struct {
	p     SerialUnplug
	a     Arming
	t     *trigger
	lines map[string]fleet.SerialLine
	stop  chan struct{}
	wg    sync.WaitGroup

	mu  sync.Mutex
	out map[string]bool
}

func (k *serialUnplug) pull(_ context.Context, dev string, _ bool) error {
	k.mu.Lock()
	k.out[dev] = true
	k.lines[dev].SetSerialUnplugged(true)
	k.mu.Unlock()
	if k.p.For > 0 {
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			if clock.Sleep(k.a.World.Clock(), k.p.For.D(), k.stop) {
				k.plug(dev, "plugged back after "+k.p.For.D().String())
			}
		}()
	}
	return nil
}

func (k *serialUnplug) plug(dev, reason string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.out[dev] {
		k.lines[dev].SetSerialUnplugged(false)
		delete(k.out, dev)
		k.a.emit(event.FaultRecovered, dev, "", reason)
	}
}

func (k *serialUnplug) Inject(ctx context.Context) error { return k.t.inject(ctx) }

func (k *serialUnplug) Recover(context.Context) error {
	k.t.pause()
	for _, dev := range k.a.Targets {
		k.plug(dev, "plugged back")
	}
	return nil
}

func (k *serialUnplug) Disarm() {
	k.t.disarm()
	close(k.stop)
	k.wg.Wait()
}
