package rigs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/fleetlab/fleetlab/rigs/bridge"
	"github.com/fleetlab/fleetlab/rigs/emulated"
	"github.com/fleetlab/fleetlab/rigs/frame"
	"github.com/fleetlab/fleetlab/rigs/serial"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/fleet/link"
)

// Options configure an open rig. Zero fields take the defaults listed.
type Options struct {
	// Endpoint is the service's device API base URL, which the boards' bridges call. Required.
	Endpoint string
	// Things, when set, opens only the boards of these things.
	Things []string
	// Dir holds the boards' console logs and the emulated boards' storage. Required.
	Dir string
	// Agent is the fleetlab-agent program emulated boards run; required when the rig has one.
	Agent string
	// AgentArgs are more flags for the emulated boards' agents (their timings).
	AgentArgs []string
	// GPIO opens the real boards' lines. Default: the Linux GPIO character devices.
	GPIO GPIO
	// Ports opens the boards' console ports. Default: SystemPorts.
	Ports Ports
	// LineClock times what happens on the boards and their lines — reset pulses, power-off times, boot and
	// expect timeouts, the consoles' log stamps. They are real, so the default is the real clock whatever the
	// run's; a test of the pulses gives a fake.
	LineClock clock.Clock
	// Clock is the run's clock: it stamps events and times the link shapers. The lines and boards are real and
	// keep the real clock.
	Clock clock.Clock
	// Events receives the boards' console lines and power changes.
	Events event.Sink
	// OnAgentEvent receives the agents' events, by thing.
	OnAgentEvent fleet.EventFunc
	// Seed seeds the line's session identifiers and the emulated agents.
	Seed uint64
}

// Rig is an open rig: its boards' ports, lines and bridges.
type Rig struct {
	file   *File
	boards []*Board
	once   sync.Once
	err    error
}

// Open opens the boards of f: each console port with its bridge to the device API, each GPIO line (driven
// inactive: power off, reset released), and for an emulated board the board itself, powered off.
func Open(f *File, opts Options) (*Rig, error) {
	if opts.Endpoint == "" || opts.Dir == "" {
		return nil, errors.New("open rig: Endpoint and Dir are required")
	}
	if opts.GPIO == nil {
		opts.GPIO = &LinuxGPIO{}
	}
	if opts.Ports == nil {
		opts.Ports = SystemPorts{}
	}
	r := &Rig{file: f}
	ok := false
	defer func() {
		if !ok {
			r.Close()
		}
	}()
	for _, spec := range f.Boards {
		if opts.Things != nil && !slices.Contains(opts.Things, spec.Thing) {
			continue
		}
		b, err := openBoard(spec, opts)
		if b != nil {
			r.boards = append(r.boards, b)
		}
		if err != nil {
			return nil, &RigError{Board: spec.Name, Err: err}
		}
	}
	for _, t := range opts.Things {
		if r.Board(t) == nil {
			return nil, fmt.Errorf("open rig: rig %s has no board for thing %s (its things: %v)", f.Rig, t, f.Things())
		}
	}
	ok = true
	return r, nil
}

// Things returns the boards' thing names, in file order.
func (f *File) Things() []string {
	var out []string
	for _, b := range f.Boards {
		out = append(out, b.Thing)
	}
	return out
}

func openBoard(spec BoardSpec, opts Options) (*Board, error) {
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(logPath(opts.Dir, spec.Name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("console log: %w", err)
	}
	b := &Board{spec: spec, clk: clock.Or(opts.Clock), line: clock.Or(opts.LineClock), log: logf, events: opts.Events,
		open: make(chan struct{})}
	b.prompt, err = regexp.Compile(spec.Expect.Prompt)
	if err != nil {
		return b, fmt.Errorf("expect.prompt: %w", err)
	}
	b.console = newConsole(b.consoleLine)
	addr := spec.Serial.Port
	gp := opts.GPIO
	if spec.Emulate != nil {
		if opts.Agent == "" {
			return b, errors.New("an emulated board needs the fleetlab-agent program (give it with --agent)")
		}
		e := spec.Emulate
		b.emu, err = emulated.New(emulated.Options{Thing: spec.Thing, Architecture: spec.Architecture, Agent: opts.Agent,
			AgentArgs: opts.AgentArgs, Dir: opts.Dir + "/" + spec.Name, Baud: spec.Serial.Baud, Banner: e.Banner,
			Prompt: e.Prompt, Panic: e.Panic, BootDelay: e.BootDelay, Seed: opts.Seed})
		if err != nil {
			return b, err
		}
		addr = b.emu.LabPort()
		gp = b.emu
		if spec.Power == nil { // an emulated board without a power line is always on
			b.emu.Power.Out(gpio.High)
		}
	}
	for _, l := range []struct {
		spec *LineSpec
		out  *PinOut
		in   *PinIn
		idle bool // the level to drive at open: inactive
	}{{spec.Power, &b.power, nil, false}, {spec.Reset, &b.reset, nil, false}, {spec.Status, nil, &b.status, false}} {
		if l.spec == nil {
			continue
		}
		p, err := gp.Line(l.spec.Chip, l.spec.Line)
		if err != nil {
			return b, err
		}
		if l.out != nil {
			*l.out = p
			if err := p.Out(level(false, l.spec.ActiveLow)); err != nil {
				return b, fmt.Errorf("gpio %s/%s: %w", l.spec.Chip, l.spec.Line, err)
			}
		} else {
			if err := p.In(gpio.PullNoChange, gpio.NoEdge); err != nil {
				return b, fmt.Errorf("gpio %s/%s: %w", l.spec.Chip, l.spec.Line, err)
			}
			*l.in = p
		}
	}
	port, err := opts.Ports.Open(addr, serial.Options{Baud: spec.Serial.Baud})
	if err != nil {
		return b, err
	}
	b.port = &faultPort{Port: port}
	if m := spec.ModemReset; m != nil {
		// Opening a port asserts DTR and RTS (Linux does so on open): a board wired to them would be held in
		// reset. Release it.
		if err := b.modemLine(m.Signal, !m.ActiveLow); err != nil {
			port.Close()
			return b, fmt.Errorf("release the modem-line reset: %w", err)
		}
	}
	b.shaper = link.NewShaper(opts.Clock)
	if b.proxy, err = link.NewProxy(opts.Endpoint, b.shaper); err != nil {
		port.Close()
		return b, err
	}
	b.bridge, err = bridge.New(b.port, bridge.Options{Thing: spec.Thing, Endpoint: b.proxy.URL(),
		OnEvent: agentEvents(spec.Thing, opts.OnAgentEvent), OnOpen: b.opened,
		OnConsole: func(p []byte) { b.console.Write(p) }, Seed: opts.Seed, Session: frame.Options{Baud: spec.Serial.Baud}})
	if err != nil {
		port.Close()
		return b, err
	}
	return b, nil
}

// An emulated board is the GPIO of its own lines.
var _ GPIO = (*emulated.Board)(nil)

// File returns the rig file.
func (r *Rig) File() *File { return r.file }

// Boards returns the open boards, in file order.
func (r *Rig) Boards() []*Board { return slices.Clone(r.boards) }

// Board returns the board of thing, or nil.
func (r *Rig) Board(thing string) *Board {
	for _, b := range r.boards {
		if b.spec.Thing == thing {
			return b
		}
	}
	return nil
}

// Close powers the boards off, closes their bridges, ports and lines, and stops emulated boards.
func (r *Rig) Close() error {
	r.once.Do(func() {
		var errs []error
		for _, b := range r.boards {
			if b.power != nil {
				b.PowerOff()
			}
			errs = append(errs, b.close())
		}
		r.err = errors.Join(errs...)
	})
	return r.err
}

// Health is one board's health check.
type Health struct {
	Board, Thing string
	// Booted: the console showed the prompt after power on; Agent: the agent opened a session as the board's
	// thing and a request of it was answered; Status: the status line is active (nil without one).
	Booted, Agent bool
	Status        *bool
	// BootTime is from power on to the prompt; Err what failed first.
	BootTime time.Duration
	Err      error
}

// Healthy reports whether every check passed.
func (h Health) Healthy() bool { return h.Err == nil }

// Check boots every board and checks that its agent answers over the console, boards in parallel. It returns
// one Health per board, in file order.
func (r *Rig) Check(ctx context.Context) []Health {
	out := make([]Health, len(r.boards))
	var wg sync.WaitGroup
	for i, b := range r.boards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = b.Check(ctx)
		}()
	}
	wg.Wait()
	return out
}

// Check is one board's health check: boot, prompt, agent session, status line.
func (b *Board) Check(ctx context.Context) Health {
	h := Health{Board: b.spec.Name, Thing: b.spec.Thing}
	start := b.line.Now()
	n, _ := b.sessions()
	if err := b.Boot(ctx); err != nil {
		h.Err = err
		return h
	}
	h.Booted, h.BootTime = true, b.line.Now().Sub(start)
	if err := b.WaitAgent(ctx, n, b.spec.Expect.BootTimeout); err != nil {
		h.Err = err
		return h
	}
	h.Agent = true
	if b.status != nil {
		ok, _ := b.Status()
		h.Status = &ok
		if !ok {
			h.Err = &RigError{Board: b.spec.Name, Err: errors.New("the status line is not active")}
		}
	}
	return h
}
