package rigs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/fleetlab/fleetlab/rigs/bridge"
	"github.com/fleetlab/fleetlab/rigs/emulated"
	"github.com/fleetlab/fleetlab/rigs/frame"
	"github.com/fleetlab/fleetlab/rigs/serial"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/fleet/link"
)

// Errors of a board that lacks a line.
var (
	ErrNoPower  = errors.New("the board has no power line")
	ErrNoReset  = errors.New("the board has no reset line (reset or modemReset)")
	ErrNoStatus = errors.New("the board has no status line")
)

// RigError is a failure of the rig — a board, its lines, its console — not of what runs on it.
type RigError struct {
	Board string
	Err   error
}

func (e *RigError) Error() string { return fmt.Sprintf("rig board %s: %v", e.Board, e.Err) }
func (e *RigError) Unwrap() error { return e.Err }

// Board is one board of an open rig.
type Board struct {
	spec   BoardSpec
	clk    clock.Clock // the run's clock, for event times
	line   clock.Clock // the real clock: the line and the board are real
	port   *faultPort
	power  PinOut
	reset  PinOut
	status PinIn
	emu    *emulated.Board

	console *Console
	log     *os.File
	events  event.Sink
	prompt  *regexp.Regexp

	shaper *link.Shaper
	proxy  *link.Proxy
	bridge *bridge.Bridge

	mu    sync.Mutex
	hello string // the thing the agent last said it is
	opens int
	on    bool // power as last set
	open  chan struct{}
}

// Name is the board's name on the rig.
func (b *Board) Name() string { return b.spec.Name }

// Thing is the agent's thing name.
func (b *Board) Thing() string { return b.spec.Thing }

// Spec returns the board's entry of the rig file.
func (b *Board) Spec() BoardSpec { return b.spec }

// Console returns the board's console.
func (b *Board) Console() *Console { return b.console }

// Bridge returns the board's bridge to the device API.
func (b *Board) Bridge() *bridge.Bridge { return b.bridge }

// Emulated returns the emulated board behind this one, nil for a real board.
func (b *Board) Emulated() *emulated.Board { return b.emu }

// Link returns the board's link shaper (between its bridge and the service).
func (b *Board) Link() *link.Shaper { return b.shaper }

// HookSteps holds the answer to each step report of the board's agent, on its way back from the service, until
// fn returns (see link.Proxy.HookSteps).
func (b *Board) HookSteps(fn link.StepHook) (remove func()) { return b.proxy.HookSteps(fn) }

// Stats returns the counts of the board's frame session.
func (b *Board) Stats() frame.Stats { return b.bridge.Session().Stats() }

// NoiseChanged counts the bytes a serial-noise fault changed.
func (b *Board) NoiseChanged() uint64 { return b.port.Changed() }

// LogPath is the board's console log.
func (b *Board) LogPath() string { return b.log.Name() }

// Hello returns the thing name the agent said in its last session, "" before any.
func (b *Board) Hello() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.hello
}

// sessions returns how many sessions the agent has opened, and a channel closed at the next one.
func (b *Board) sessions() (int, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.opens, b.open
}

func (b *Board) opened(thing string) {
	b.mu.Lock()
	b.hello = thing
	b.opens++
	close(b.open)
	b.open = make(chan struct{})
	b.mu.Unlock()
	b.emit(event.Log, "agent session opened as "+thing)
}

func (b *Board) emit(k event.Kind, text string) {
	if b.events != nil {
		b.events.Emit(event.Event{Kind: k, Time: b.clk.Now(), Device: b.spec.Thing, Reason: text})
	}
}

// consoleLine records one console line: in the board's log, and in the event stream.
func (b *Board) consoleLine(text string) {
	fmt.Fprintf(b.log, "%s %s\n", b.line.Now().Format("15:04:05.000"), text)
	b.emit(event.ConsoleLine, text)
}

// PowerOn switches the board's power on.
func (b *Board) PowerOn() error { return b.setPower(true) }

// PowerOff cuts the board's power.
func (b *Board) PowerOff() error { return b.setPower(false) }

func (b *Board) setPower(on bool) error {
	if b.power == nil {
		return &RigError{Board: b.spec.Name, Err: ErrNoPower}
	}
	if err := b.power.Out(level(on, b.spec.Power.ActiveLow)); err != nil {
		return &RigError{Board: b.spec.Name, Err: fmt.Errorf("power: %w", err)}
	}
	b.mu.Lock()
	b.on = on
	b.mu.Unlock()
	b.emit(event.Log, map[bool]string{true: "power on", false: "power off"}[on])
	return nil
}

// Powered reports the power as last set (true for a board without a power line).
func (b *Board) Powered() bool {
	if b.power == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.on
}

// PowerCycle cuts the power for the power line's off time, then switches it on.
func (b *Board) PowerCycle(ctx context.Context) error {
	if err := b.PowerOff(); err != nil {
		return err
	}
	if !clock.Sleep(b.line, b.spec.Power.Off, ctx.Done()) {
		return ctx.Err()
	}
	return b.PowerOn()
}

// Reset pulses the board's reset: the GPIO reset line, or the modem line of its console.
func (b *Board) Reset(ctx context.Context) error {
	switch {
	case b.reset != nil:
		l := b.spec.Reset
		if err := b.reset.Out(level(true, l.ActiveLow)); err != nil {
			return &RigError{Board: b.spec.Name, Err: fmt.Errorf("reset: %w", err)}
		}
		b.emit(event.Log, "reset")
		clock.Sleep(b.line, l.Pulse, ctx.Done())
		if err := b.reset.Out(level(false, l.ActiveLow)); err != nil {
			return &RigError{Board: b.spec.Name, Err: fmt.Errorf("reset: %w", err)}
		}
		return ctx.Err()
	case b.spec.ModemReset != nil:
		m := b.spec.ModemReset
		// Asserting the signal drives the reset pin low through the adapter's inverter, as wired by default.
		if err := b.modemLine(m.Signal, m.ActiveLow); err != nil {
			return &RigError{Board: b.spec.Name, Err: fmt.Errorf("reset: %w", err)}
		}
		b.emit(event.Log, "reset by "+m.Signal)
		clock.Sleep(b.line, m.Pulse, ctx.Done())
		if err := b.modemLine(m.Signal, !m.ActiveLow); err != nil {
			return &RigError{Board: b.spec.Name, Err: fmt.Errorf("reset: %w", err)}
		}
		return ctx.Err()
	}
	return &RigError{Board: b.spec.Name, Err: ErrNoReset}
}

// modemLine sets the console port's DTR or RTS (true: asserted).
func (b *Board) modemLine(signal string, on bool) error {
	ml, ok := b.port.Port.(serial.ModemLines)
	if !ok {
		return fmt.Errorf("%s: %w", signal, serial.ErrNoModemLines)
	}
	set := ml.SetDTR
	if signal == "rts" {
		set = ml.SetRTS
	}
	return set(on)
}

// Status reads the status line: true when it is at its active level.
func (b *Board) Status() (bool, error) {
	if b.status == nil {
		return false, &RigError{Board: b.spec.Name, Err: ErrNoStatus}
	}
	return b.status.Read() == level(true, b.spec.Status.ActiveLow), nil
}

// Expect waits up to timeout for a console line after from to match re (see Console.Expect).
func (b *Board) Expect(ctx context.Context, re *regexp.Regexp, from int64, timeout time.Duration) (string, error) {
	ctx, cancel := withTimeout(ctx, b.line, timeout)
	defer cancel()
	s, err := b.console.Expect(ctx, re, from)
	if err != nil {
		return "", &RigError{Board: b.spec.Name, Err: err}
	}
	return s, nil
}

// Boot powers the board on (cycling it when it is on, resetting it when it has no power line but a reset) and
// waits for the boot prompt. A board with neither line is only waited for: its prompt must come by itself.
func (b *Board) Boot(ctx context.Context) error {
	mark := b.console.Mark()
	switch {
	case b.power != nil && b.Powered():
		if err := b.PowerCycle(ctx); err != nil {
			return err
		}
	case b.power != nil:
		if err := b.PowerOn(); err != nil {
			return err
		}
	case b.reset != nil || b.spec.ModemReset != nil:
		if err := b.Reset(ctx); err != nil {
			return err
		}
	}
	_, err := b.Expect(ctx, b.prompt, mark, b.spec.Expect.BootTimeout)
	if err != nil {
		return fmt.Errorf("boot: %w", err)
	}
	b.emit(event.Log, "booted: prompt seen")
	return nil
}

// WaitAgent waits up to timeout for the agent to open a session after the n-th one (see sessions), say the
// board's thing name, and have a request answered by the service through the bridge.
func (b *Board) WaitAgent(ctx context.Context, after int, timeout time.Duration) error {
	ctx, cancel := withTimeout(ctx, b.line, timeout)
	defer cancel()
	for {
		n, next := b.sessions()
		if n > after {
			break
		}
		select {
		case <-next:
		case <-ctx.Done():
			return &RigError{Board: b.spec.Name, Err: fmt.Errorf("the agent opened no session on the console within %v; last lines:\n%s", timeout, b.console.Tail(8))}
		}
	}
	if h := b.Hello(); h != b.spec.Thing {
		return &RigError{Board: b.spec.Name, Err: fmt.Errorf("the agent says it is %q, the rig file says %q", h, b.spec.Thing)}
	}
	served := b.bridge.Served()
	for b.bridge.Served() == served {
		// The agent polls at start; its first answered request shows the whole path works.
		t := b.line.NewTimer(10 * time.Millisecond)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return &RigError{Board: b.spec.Name, Err: fmt.Errorf("the agent's session opened but no request of it was answered within %v", timeout)}
		}
	}
	return nil
}

// withTimeout is context.WithTimeout on clock c.
func withTimeout(ctx context.Context, c clock.Clock, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	t := c.NewTimer(d)
	stop := make(chan struct{})
	go func() {
		select {
		case <-t.C():
			cancel()
		case <-stop:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() { close(stop) })
		cancel()
	}
}

// SetNoise makes a fraction of the bytes each way change on the line, from seed; 0 ends it.
func (b *Board) SetNoise(rate float64, seed uint64) { b.port.setNoise(rate, seed) }

// SetUnplugged cuts the console line (nothing passes either way) or plugs it back.
func (b *Board) SetUnplugged(u bool) {
	b.port.setUnplugged(u)
	b.emit(event.Log, map[bool]string{true: "serial unplugged", false: "serial plugged back"}[u])
}

// close stops the bridge, the board, its lines and log.
func (b *Board) close() error {
	var errs []error
	if b.bridge != nil {
		errs = append(errs, b.bridge.Close())
	} else if b.port != nil {
		errs = append(errs, b.port.Close())
	}
	if b.proxy != nil {
		errs = append(errs, b.proxy.Close())
	}
	if b.emu != nil {
		errs = append(errs, b.emu.Close())
	}
	if b.log != nil {
		errs = append(errs, b.log.Close())
	}
	return errors.Join(errs...)
}

// agentEvents returns the bridge's event callback for the board.
func agentEvents(thing string, on fleet.EventFunc) func(agent.Event) {
	if on == nil {
		return nil
	}
	return func(e agent.Event) { on(thing, e) }
}

var _ io.Writer = (*Console)(nil)

// logPath is the board's console log in dir.
func logPath(dir, name string) string { return filepath.Join(dir, name+".console.log") }
