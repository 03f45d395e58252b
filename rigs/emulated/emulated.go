// Package emulated is a board that runs on the lab host, for CI and for trying a rig file without hardware:
// a pseudo-terminal pair is its UART — the agent on one end, the rig's serial code on the other, a relay
// between them that paces bytes at the line's baud rate — and fake GPIO lines (periph's gpiotest pins) are
// wired to its power and reset: power low kills the agent process and everything it started at once, power high
// boots it (a boot banner and a login prompt on the console, then fleetlab-agent --serial on the board's end),
// reset restarts it, and the status line is high while the agent runs.
//
// The rig drives an emulated board exactly as a real one: it opens LabPort with package serial and drives the
// pins through the same interfaces.
package emulated

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/fleetlab/fleetlab/rigs/serial"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/fleet/process"
)

// Options configure a Board.
type Options struct {
	// Thing and Architecture are the agent's. Required: Thing.
	Thing, Architecture string
	// Agent is the fleetlab-agent program. Required.
	Agent string
	// AgentArgs are more flags for the agent (its timings).
	AgentArgs []string
	// Dir is the board's storage: the agent's device directory and the board's log. Required.
	Dir string
	// Baud paces the line (default 115200; 8N1, ten bits a byte).
	Baud int
	// Banner is printed at power on; Prompt once booted (default "<thing> login: "); Panic, when set, instead
	// of the prompt, and the agent never starts.
	Banner, Prompt, Panic string
	// BootDelay is the time from power on to the prompt (default 100ms).
	BootDelay time.Duration
	// Seed is the agent's seed.
	Seed uint64
	// Clock paces the line and times the boot: a real line, so the real clock by default.
	Clock clock.Clock
}

// Board is an emulated board. Its lines start low: the board is off until the rig powers it.
type Board struct {
	opts Options
	clk  clock.Clock

	boardPTY, labPTY *os.File    // masters
	boardEnd, labEnd serial.Port // slaves, held open (raw) so the masters never hang up
	boardPath        string
	labPath          string

	// Power, Reset and Status are the board's GPIO lines as the rig sees them: write Power and Reset, read
	// Status.
	Power, Reset *Pin
	Status       *gpiotest.Pin

	console chan []byte // text the board prints, relayed between the agent's frames
	done    chan struct{}
	wg      sync.WaitGroup

	mu      sync.Mutex
	powered bool
	boot    chan struct{} // closed to abort a boot in progress
	agent   *exec.Cmd
	exited  chan struct{}
	closed  bool
	boots   int
}

// Pin is a fake output line whose changes the board sees.
type Pin struct {
	*gpiotest.Pin
	changed func(gpio.Level)
}

// Out implements gpio.PinOut and tells the board.
func (p *Pin) Out(l gpio.Level) error {
	p.Pin.Lock()
	was := p.Pin.L
	p.Pin.L = l
	p.Pin.Unlock()
	if was != l && p.changed != nil {
		p.changed(l)
	}
	return nil
}

// New makes an emulated board, powered off.
func New(opts Options) (*Board, error) {
	if opts.Thing == "" || opts.Agent == "" || opts.Dir == "" {
		return nil, errors.New("emulated board: Thing, Agent and Dir are required")
	}
	if opts.Baud <= 0 {
		opts.Baud = 115200
	}
	if opts.Prompt == "" {
		opts.Prompt = opts.Thing + " login: "
	}
	if opts.Banner == "" {
		opts.Banner = "\r\nU-Boot 2024.01 (fleetlab emulated board)\r\nStarting kernel ...\r\n[    0.000000] Linux version 6.1.0 (fleetlab)\r\n[    0.412000] fleetlab-agent.service: starting\r\n\r\n"
	}
	if opts.BootDelay <= 0 {
		opts.BootDelay = 100 * time.Millisecond
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("emulated board %s: %w", opts.Thing, err)
	}
	b := &Board{opts: opts, clk: clock.Or(opts.Clock), console: make(chan []byte, 64), done: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			b.Close()
		}
	}()
	var err error
	if b.boardPTY, b.boardEnd, b.boardPath, err = openPTY(opts.Baud); err != nil {
		return nil, fmt.Errorf("emulated board %s: %w", opts.Thing, err)
	}
	if b.labPTY, b.labEnd, b.labPath, err = openPTY(opts.Baud); err != nil {
		return nil, fmt.Errorf("emulated board %s: %w", opts.Thing, err)
	}
	b.Power = &Pin{Pin: &gpiotest.Pin{N: "power", Num: 0}, changed: b.power}
	b.Reset = &Pin{Pin: &gpiotest.Pin{N: "reset", Num: 1, L: gpio.High}, changed: b.reset} // released
	b.Status = &gpiotest.Pin{N: "status", Num: 2}
	b.wg.Add(2)
	go b.relayToBoard()
	go b.relayToLab()
	ok = true
	return b, nil
}

// openPTY opens a pseudo-terminal and its end as a raw serial port, which stays open.
func openPTY(baud int) (*os.File, serial.Port, string, error) {
	pm, s, err := pty.Open()
	if err != nil {
		return nil, nil, "", err
	}
	path := s.Name()
	s.Close()
	// A non-blocking descriptor goes through the runtime's poller, so Close ends a read in progress.
	fd, err := syscall.Dup(int(pm.Fd()))
	pm.Close()
	if err != nil {
		return nil, nil, "", err
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, nil, "", err
	}
	m := os.NewFile(uintptr(fd), "/dev/ptmx")
	p, err := serial.Open(path, serial.Options{Baud: baud}) // raw mode: no echo, no line editing
	if err != nil {
		m.Close()
		return nil, nil, "", err
	}
	return m, p, path, nil
}

// LabPort is the device path the rig opens: the lab's end of the board's console.
func (b *Board) LabPort() string { return b.labPath }

// BoardPort is the device path the agent opens: the board's end.
func (b *Board) BoardPort() string { return b.boardPath }

// Line returns the board's line by name (power, reset, status) or number (0, 1, 2), whatever the chip: the board
// is the GPIO of its own lines (rigs.GPIO), for a rig file's emulated board or a test that wires a board's
// lines to a rig as a remote one's.
func (b *Board) Line(_, line string) (gpio.PinIO, error) {
	for _, p := range []gpio.PinIO{b.Power, b.Reset, b.Status} {
		if p.Name() == line || strconv.Itoa(p.Number()) == line {
			return p, nil
		}
	}
	return nil, fmt.Errorf("emulated board: no line %q (it has power, reset and status)", line)
}

// Powered reports whether the board has power.
func (b *Board) Powered() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.powered
}

// Boots counts the boots begun.
func (b *Board) Boots() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.boots
}

// AgentPid returns the running agent's process id, 0 when none runs.
func (b *Board) AgentPid() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.agent == nil {
		return 0
	}
	return b.agent.Process.Pid
}

func (b *Board) power(l gpio.Level) {
	if l == gpio.High {
		b.mu.Lock()
		if b.closed || b.powered {
			b.mu.Unlock()
			return
		}
		b.powered = true
		b.mu.Unlock()
		b.startBoot()
		return
	}
	b.cut()
}

// reset restarts the board on a falling edge (reset asserted, active low as wired) and holds it while low.
func (b *Board) reset(l gpio.Level) {
	if l == gpio.Low {
		b.mu.Lock()
		powered := b.powered
		b.mu.Unlock()
		b.cut()
		b.mu.Lock()
		b.powered = powered
		b.mu.Unlock()
		return
	}
	b.mu.Lock()
	powered := b.powered && !b.closed
	b.mu.Unlock()
	if powered {
		b.startBoot()
	}
}

// cut stops whatever runs, at once: a power cut.
func (b *Board) cut() {
	b.mu.Lock()
	b.powered = false
	if b.boot != nil {
		close(b.boot)
		b.boot = nil
	}
	cmd, exited := b.agent, b.exited
	b.mu.Unlock()
	b.Status.Out(gpio.Low)
	if cmd != nil {
		process.KillSession(cmd.Process.Pid)
		<-exited
	}
}

// startBoot runs the boot: banner, delay, then the prompt and the agent (or the panic).
func (b *Board) startBoot() {
	b.mu.Lock()
	if b.boot != nil || b.agent != nil {
		b.mu.Unlock()
		return
	}
	abort := make(chan struct{})
	b.boot = abort
	b.boots++
	b.mu.Unlock()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.print(b.opts.Banner)
		if !clock.Sleep(b.clk, b.opts.BootDelay, abort) {
			return
		}
		if b.opts.Panic != "" {
			b.print(b.opts.Panic + "\r\n")
			return
		}
		b.mu.Lock()
		if b.boot != abort {
			b.mu.Unlock()
			return
		}
		b.boot = nil
		err := b.startAgent()
		b.mu.Unlock()
		b.print(b.opts.Prompt)
		if err != nil {
			b.print(fmt.Sprintf("fleetlab-agent.service: failed: %v\r\n", err))
		}
	}()
}

// startAgent starts the agent on the board's end of the line. The caller holds mu.
func (b *Board) startAgent() error {
	args := []string{"--serial", b.boardPath, "--baud", strconv.Itoa(b.opts.Baud), "--thing", b.opts.Thing,
		"--dir", filepath.Join(b.opts.Dir, "agent"), "--seed", strconv.FormatUint(b.opts.Seed, 10)}
	if b.opts.Architecture != "" {
		args = append(args, "--arch", b.opts.Architecture)
	}
	args = append(args, b.opts.AgentArgs...)
	cmd := exec.Command(b.opts.Agent, args...)
	cmd.Dir = b.opts.Dir
	cmd.SysProcAttr = process.SessionAttr()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	b.agent, b.exited = cmd, exited
	b.Status.Out(gpio.High)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		// The agent's log goes to the console, as a board's service logging to it would.
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			b.print(sc.Text() + "\r\n")
		}
		cmd.Wait()
		b.mu.Lock()
		if b.agent == cmd {
			b.agent = nil
		}
		b.mu.Unlock()
		b.Status.Out(gpio.Low)
		close(exited)
	}()
	return nil
}

// print puts text on the board's console.
func (b *Board) print(s string) {
	select {
	case b.console <- []byte(s):
	case <-b.done:
	}
}

// pacer keeps one direction of the line at its baud rate. It reckons when the line will have carried what it
// was given, so sleeping late on a loaded machine does not slow the line: bytes that were waiting follow on
// from where the line was, as a UART sending a full buffer would, and only a line that ran dry starts afresh.
type pacer struct {
	clk      clock.Clock
	byteTime time.Duration
	done     <-chan struct{}
	free     time.Time // when the line has carried everything given so far
}

// catchUp is how late bytes may come after the line ran dry and still count as following on.
const catchUp = 20 * time.Millisecond

// pace waits until n more bytes have crossed the line; false when the board closed.
func (p *pacer) pace(n int) bool {
	now := p.clk.Now()
	start := p.free
	if now.Sub(start) > catchUp {
		start = now
	}
	p.free = start.Add(time.Duration(n) * p.byteTime)
	return clock.Sleep(p.clk, p.free.Sub(now), p.done)
}

func (b *Board) newPacer() *pacer {
	return &pacer{clk: b.clk, byteTime: 10 * time.Second / time.Duration(b.opts.Baud), done: b.done}
}

// relayToBoard carries the lab's bytes to the board, at the line's pace. With the power off they are lost.
func (b *Board) relayToBoard() {
	defer b.wg.Done()
	relay(b.labPTY, b.boardPTY, b.newPacer(), b.Powered)
}

// relayToLab carries the board's bytes — the agent's frames and the console text — to the lab, at the line's
// pace. Console text goes between the agent's lines, as a console that logs whole lines would put it.
func (b *Board) relayToLab() {
	defer b.wg.Done()
	data := make(chan []byte)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer close(data)
		for {
			buf := make([]byte, 64)
			n, err := b.boardPTY.Read(buf)
			if err != nil {
				return
			}
			select {
			case data <- buf[:n]:
			case <-b.done:
				return
			}
		}
	}()
	midLine := false
	var held [][]byte
	pc := b.newPacer()
	write := func(p []byte) bool {
		for len(p) > 0 {
			n := min(len(p), 64)
			if !pc.pace(n) {
				return false
			}
			if _, err := b.labPTY.Write(p[:n]); err != nil {
				return false
			}
			p = p[n:]
		}
		return true
	}
	for {
		if !midLine && len(held) > 0 {
			if !write(held[0]) {
				return
			}
			held = held[1:]
			continue
		}
		select {
		case p, ok := <-data:
			if !ok {
				return
			}
			if len(p) == 0 {
				continue
			}
			if !write(p) {
				return
			}
			midLine = p[len(p)-1] != '\n'
		case s := <-b.console:
			held = append(held, s)
		case <-b.done:
			return
		}
	}
}

// Close cuts the power, stops the relays and closes the pseudo-terminals.
func (b *Board) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	if b.Power != nil {
		b.cut()
	}
	close(b.done)
	var errs []error
	for _, c := range []io.Closer{b.boardEnd, b.labEnd, b.boardPTY, b.labPTY} {
		if c != nil && !isNil(c) {
			errs = append(errs, c.Close())
		}
	}
	b.wg.Wait()
	return errors.Join(errs...)
}

func isNil(c io.Closer) bool {
	switch v := c.(type) {
	case *os.File:
		return v == nil
	case serial.Port:
		return v == nil
	}
	return false
}
