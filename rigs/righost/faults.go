package righost

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/rigs"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/event"
)

// Faults returns the rig faults, for a fault registry. Each acts through the board's lines, for real: the
// lifecycle is the catalog's (arm, inject, recover), and a board without the line a fault needs refuses it when
// armed.
//
//	power-cut      GPIO power off (at a step); back on after down, or at recover unless stay
//	reset          pulse the reset line (GPIO or DTR/RTS) (at a step): the board reboots
//	serial-noise   change a fraction (rate) of the console's bytes, both ways, until recovered
//	serial-unplug  nothing passes the console line for a duration (or until recovered)
func Faults() []faults.Definition {
	return []faults.Definition{
		{Name: "power-cut", Layer: faults.LayerDevice, Summary: "cut a board's power through its GPIO power line (at a step)",
			New: func() faults.Fault { return &PowerCut{} }},
		{Name: "reset", Layer: faults.LayerDevice, Summary: "pulse a board's reset line (at a step): it reboots",
			New: func() faults.Fault { return &Reset{} }},
		{Name: "serial-noise", Layer: faults.LayerLink, Summary: "change a fraction of the bytes on a board's console line",
			New: func() faults.Fault { return &SerialNoise{} }},
		{Name: "serial-unplug", Layer: faults.LayerLink, Summary: "unplug a board's console line for a duration",
			New: func() faults.Fault { return &SerialUnplug{} }},
	}
}

// boards returns the armed targets' boards, refusing devices that are not rig boards or lack need.
func boards(a faults.Arming, ability string, need func(*rigs.Board) bool) (map[string]*rigs.Board, error) {
	out := map[string]*rigs.Board{}
	for _, name := range a.Targets {
		d, ok := a.World.Device(name)
		if !ok {
			return nil, fmt.Errorf("fault %s: no device %s", a.Name, name)
		}
		rd, ok := d.(*Device)
		if !ok || (need != nil && !need(rd.b)) {
			return nil, &faults.UnsupportedError{Fault: a.Name, Backend: a.World.Backend(), Device: name, Ability: ability}
		}
		out[name] = rd.b
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("fault %s: no target device", a.Name)
	}
	return out, nil
}

// striker strikes targets at Inject, or each as it enters the step, once per execution.
type striker struct {
	a      faults.Arming
	strike func(dev string)

	mu     sync.Mutex
	active bool
	struck map[string]bool
	stop   func()
	wg     sync.WaitGroup
}

func newStriker(a faults.Arming, strike func(string)) *striker {
	s := &striker{a: a, strike: strike, struck: map[string]bool{}}
	if a.Step != "" {
		targets := map[string]bool{}
		for _, t := range a.Targets {
			targets[t] = true
		}
		s.stop = a.World.WatchAgents(func(dev string, e agent.Event) {
			if e.Kind != agent.EventState || e.State != a.Step || !targets[dev] {
				return
			}
			s.mu.Lock()
			k := dev + "/" + e.JobID
			fire := s.active && !s.struck[k]
			s.struck[k] = true
			s.mu.Unlock()
			if fire {
				s.wg.Add(1)
				go func() {
					defer s.wg.Done()
					s.fire(dev)
				}()
			}
		})
	}
	return s
}

func (s *striker) fire(dev string) {
	s.a.World.Emit(event.Event{Kind: event.FaultInjected, Fault: s.a.Name, Device: dev, Step: s.a.Step,
		Time: s.a.World.Clock().Now(), Reason: "struck"})
	s.strike(dev)
}

func (s *striker) inject() {
	s.mu.Lock()
	s.active = true
	s.mu.Unlock()
	if s.a.Step == "" {
		for _, t := range s.a.Targets {
			s.fire(t)
		}
	}
}

func (s *striker) pause() {
	s.mu.Lock()
	s.active = false
	s.mu.Unlock()
}

func (s *striker) disarm() {
	s.pause()
	if s.stop != nil {
		s.stop()
	}
	s.wg.Wait()
}

// PowerCut cuts the targets' power through their GPIO power line — at Inject, or as each enters the step — and
// switches it back on after Down (at once when zero) unless Stay, when Recover does. A board powered on boots
// and its agent resumes from its saved state. Needs a power line.
type PowerCut struct {
	Down faults.Duration `json:"down,omitempty"`
	Stay bool            `json:"stay,omitempty"`
}

// Check implements faults.Fault.
func (p *PowerCut) Check(faults.Selector) error {
	if p.Down < 0 {
		return errors.New("down is negative")
	}
	if p.Stay && p.Down != 0 {
		return errors.New("give down or stay, not both")
	}
	return nil
}

// Arm implements faults.Fault.
func (p *PowerCut) Arm(a faults.Arming) (faults.Armed, error) {
	bs, err := boards(a, "a GPIO power line", func(b *rigs.Board) bool { return b.Spec().Power != nil })
	if err != nil {
		return nil, err
	}
	k := &powerCut{p: *p, a: a, boards: bs, done: make(chan struct{})}
	k.s = newStriker(a, k.cut)
	return k, nil
}

type powerCut struct {
	p      PowerCut
	a      faults.Arming
	s      *striker
	boards map[string]*rigs.Board
	done   chan struct{}
	wg     sync.WaitGroup
}

func (k *powerCut) cut(dev string) {
	b := k.boards[dev]
	if err := b.PowerOff(); err != nil {
		k.a.World.Emit(event.Event{Kind: event.Log, Fault: k.a.Name, Device: dev, Reason: err.Error(), Time: k.a.World.Clock().Now()})
		return
	}
	if k.p.Stay {
		return
	}
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		if clock.Sleep(k.a.World.Clock(), k.p.Down.D(), k.done) {
			k.on(dev)
		}
	}()
}

func (k *powerCut) on(dev string) error {
	b := k.boards[dev]
	if b.Powered() {
		return nil
	}
	if err := b.Boot(context.Background()); err != nil {
		return err
	}
	k.a.World.Emit(event.Event{Kind: event.FaultRecovered, Fault: k.a.Name, Device: dev, Reason: "power back on", Time: k.a.World.Clock().Now()})
	return nil
}

func (k *powerCut) Inject(context.Context) error { k.s.inject(); return nil }

func (k *powerCut) Recover(context.Context) error {
	k.s.pause()
	var errs []error
	for dev := range k.boards {
		errs = append(errs, k.on(dev))
	}
	return errors.Join(errs...)
}

func (k *powerCut) Disarm() {
	k.s.disarm()
	close(k.done)
	k.wg.Wait()
}

// Reset pulses the targets' reset line — at Inject, or as each enters the step: the board reboots and its
// agent starts again on its saved state. Needs a reset line (GPIO, or modemReset on the console).
type Reset struct{}

// Check implements faults.Fault.
func (*Reset) Check(faults.Selector) error { return nil }

// Arm implements faults.Fault.
func (*Reset) Arm(a faults.Arming) (faults.Armed, error) {
	bs, err := boards(a, "a reset line", func(b *rigs.Board) bool { return b.Spec().Reset != nil || b.Spec().ModemReset != nil })
	if err != nil {
		return nil, err
	}
	k := &reset{a: a, boards: bs}
	k.s = newStriker(a, func(dev string) {
		if err := bs[dev].Reset(context.Background()); err != nil {
			a.World.Emit(event.Event{Kind: event.Log, Fault: a.Name, Device: dev, Reason: err.Error(), Time: a.World.Clock().Now()})
		}
	})
	return k, nil
}

type reset struct {
	a      faults.Arming
	s      *striker
	boards map[string]*rigs.Board
}

func (k *reset) Inject(context.Context) error  { k.s.inject(); return nil }
func (k *reset) Recover(context.Context) error { k.s.pause(); return nil }
func (k *reset) Disarm()                       { k.s.disarm() }

// SerialNoise changes a fraction Rate (0..1) of the bytes on the targets' console lines, both ways, from the
// run's seed, until recovered: frames arrive corrupted and the line's session resends them.
type SerialNoise struct {
	Rate float64 `json:"rate"`
}

// Check implements faults.Fault.
func (n *SerialNoise) Check(faults.Selector) error {
	if n.Rate <= 0 || n.Rate > 0.5 {
		return fmt.Errorf("rate %v: want a fraction above 0 and at most 0.5", n.Rate)
	}
	return nil
}

// Arm implements faults.Fault.
func (n *SerialNoise) Arm(a faults.Arming) (faults.Armed, error) {
	if a.Step != "" {
		return nil, errors.New("fault serial-noise: takes no step: it lasts from inject to recover")
	}
	bs, err := boards(a, "a rig console", nil)
	if err != nil {
		return nil, err
	}
	return &noise{rate: n.Rate, a: a, boards: bs}, nil
}

type noise struct {
	rate   float64
	a      faults.Arming
	boards map[string]*rigs.Board
}

func (k *noise) Inject(context.Context) error {
	i := uint64(0)
	for dev, b := range k.boards {
		i++
		b.SetNoise(k.rate, k.a.World.Seed()+i)
		k.a.World.Emit(event.Event{Kind: event.FaultInjected, Fault: k.a.Name, Device: dev, Time: k.a.World.Clock().Now(),
			Reason: fmt.Sprintf("%.2f%% of bytes changed", 100*k.rate)})
	}
	return nil
}

func (k *noise) Recover(context.Context) error {
	for dev, b := range k.boards {
		b.SetNoise(0, 0)
		k.a.World.Emit(event.Event{Kind: event.FaultRecovered, Fault: k.a.Name, Device: dev, Time: k.a.World.Clock().Now()})
	}
	return nil
}

func (k *noise) Disarm() {}

// SerialUnplug unplugs the targets' console lines for For (in the run's clock; zero: until recovered):
// nothing passes either way, as with the cable pulled.
type SerialUnplug struct {
	For faults.Duration `json:"for,omitempty"`
}

// Check implements faults.Fault.
func (u *SerialUnplug) Check(faults.Selector) error {
	if u.For < 0 {
		return errors.New("for is negative")
	}
	return nil
}

// Arm implements faults.Fault.
func (u *SerialUnplug) Arm(a faults.Arming) (faults.Armed, error) {
	bs, err := boards(a, "a rig console", nil)
	if err != nil {
		return nil, err
	}
	k := &unplug{p: *u, a: a, boards: bs, done: make(chan struct{})}
	k.s = newStriker(a, k.pull)
	return k, nil
}

type unplug struct {
	p      SerialUnplug
	a      faults.Arming
	s      *striker
	boards map[string]*rigs.Board
	done   chan struct{}
	wg     sync.WaitGroup
}

func (k *unplug) pull(dev string) {
	k.boards[dev].SetUnplugged(true)
	if k.p.For == 0 {
		return
	}
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		if clock.Sleep(k.a.World.Clock(), k.p.For.D(), k.done) {
			k.boards[dev].SetUnplugged(false)
			k.a.World.Emit(event.Event{Kind: event.FaultRecovered, Fault: k.a.Name, Device: dev, Time: k.a.World.Clock().Now()})
		}
	}()
}

func (k *unplug) Inject(context.Context) error { k.s.inject(); return nil }

func (k *unplug) Recover(context.Context) error {
	k.s.pause()
	for _, b := range k.boards {
		b.SetUnplugged(false)
	}
	return nil
}

func (k *unplug) Disarm() {
	k.s.disarm()
	close(k.done)
	k.wg.Wait()
}
