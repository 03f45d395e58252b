// Package rigs drives physical lab rigs: boards with a serial console and GPIO lines for power, reset and
// status, running fleetlab-agent, which speaks the device API as frames on the console (package bridge). A rig
// file (YAML) names the boards; Open opens their ports and lines — or starts an emulated board (package
// emulated) for a board the file says is emulated — and Board drives one: console capture into the event
// stream and a log, expect-style waits on the console, power on, off and cycle, reset by a GPIO line or the
// DTR/RTS modem lines, the status input, and the bridge to the service. Check is the health check that comes
// before a rig is used; a board that fails it is a rig failure, never a deployment failure.
//
// Serial ports and GPIO lines sit behind small interfaces (Ports and serial.Port, GPIO, PinOut, PinIn) so tests
// drive fakes (serialtest, periph's gpiotest) through the same code; the boards' own timings (reset pulses,
// power-off times, boot timeouts) run on Options.LineClock, which a test can fake.
package rigs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fleetlab/fleetlab/rigs/serial"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// File is a rig file.
type File struct {
	// Rig names the rig, in reports.
	Rig string
	// Boards are the rig's boards, in file order.
	Boards []BoardSpec
	// Path is where the file was read from, for messages.
	Path string
}

// robomakerArchitectures are RoboMaker's names of the architectures, which rig files may still use: a rig file
// is read once per run, so the old spelling costs nothing to keep.
var robomakerArchitectures = map[string]string{"X86_64": fleet.ArchAMD64, "ARM64": fleet.ArchARM64, "ARMHF": fleet.ArchARM}

// BoardSpec is one board of a rig file.
type BoardSpec struct {
	// Name names the board on the rig (board-1, pi-lab-3); Thing is the agent's thing (robot) name.
	Name, Thing string
	// Architecture is the board's architecture by its GOARCH name: amd64 (the default), arm64 or arm. For rig
	// files written before fleetlab named architectures so, RoboMaker's names are read too and given as
	// theirs: X86_64 is amd64, ARM64 arm64, ARMHF arm.
	Architecture string
	// Serial is the console.
	Serial SerialSpec
	// Power, Reset and Status are the board's GPIO lines; nil when it has none.
	Power, Reset, Status *LineSpec
	// ModemReset resets the board through a modem line of the console port; nil when it has none.
	ModemReset *ModemSpec
	// Expect is what the console shows when the board has booted.
	Expect ExpectSpec
	// Emulate, when set, makes the board an emulated one (package emulated): the lab host runs its agent
	// behind a pseudo-terminal and fake GPIO lines.
	Emulate *EmulateSpec
	// Line is the line of the board's entry in the file.
	Line int
}

// SerialSpec is a board's console port.
type SerialSpec struct {
	// Port is a device path, tcp://host:port or rfc2217://host:port; empty for an emulated board, which makes
	// its own.
	Port string
	// Baud is the line speed (default 115200).
	Baud int
}

// LineSpec is one GPIO line.
type LineSpec struct {
	// Chip is the GPIO character device's name (gpiochip0) or "emulated" on an emulated board.
	Chip string
	// Line is the line's name (GPIO17) or its offset on the chip (17).
	Line string
	// ActiveLow says the line's active level is low (a relay board that switches on low, an active-low reset).
	ActiveLow bool
	// Pulse is how long a reset line is held active (default 200ms).
	Pulse time.Duration
	// Off is how long the power stays off in a power cycle (default 1s).
	Off time.Duration
}

// ModemSpec is a reset wired to a modem line of the console's USB serial adapter (as ESP32 and many
// development boards are).
type ModemSpec struct {
	// Signal is "dtr" or "rts".
	Signal string
	// ActiveLow: asserting the signal drives the reset pin low (the usual wiring: assert = reset held).
	ActiveLow bool
	// Pulse is how long reset is held (default 100ms).
	Pulse time.Duration
}

// ExpectSpec is what booting looks like on the console.
type ExpectSpec struct {
	// Prompt is a regular expression the console shows once the board has booted (default "login: ?$" on the
	// current line).
	Prompt string
	// BootTimeout bounds the wait for it after power on or reset (default 60s).
	BootTimeout time.Duration
}

// EmulateSpec configures an emulated board.
type EmulateSpec struct {
	// Banner is what its console prints at power on before the prompt (default: a short boot log).
	Banner string
	// Prompt is the prompt it prints when booted (default "<thing> login: ").
	Prompt string
	// BootDelay is how long the boot takes before the prompt (default 100ms).
	BootDelay time.Duration
	// Panic, when set, is printed instead of the prompt, and the agent never starts: a board that does not
	// boot.
	Panic string
}

// DefaultPrompt matches a login prompt.
const DefaultPrompt = `login: ?$`

// EmulatedChip is the chip name of an emulated board's lines.
const EmulatedChip = "emulated"

// Load reads and validates a rig file.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, bytes.NewReader(b))
}

// Parse reads and validates a rig file from r; name is its path in messages. Every problem found is reported,
// each with its line, as one error.
func Parse(name string, r io.Reader) (*File, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(r)
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty rig file", name)
		}
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	p := &parser{name: name}
	f := p.file(&doc)
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	f.Path = name
	return f, nil
}

// parser walks the YAML tree, collecting every error with its line.
type parser struct {
	name string
	errs []error
}

func (p *parser) bad(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s:%d: %s", p.name, n.Line, fmt.Sprintf(format, args...)))
}

// fields returns a mapping's values by key, reporting keys not in allowed and duplicate keys.
func (p *parser) fields(n *yaml.Node, what string, allowed ...string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		p.bad(n, "%s: want a mapping", what)
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case !slices.Contains(allowed, k.Value):
			p.bad(k, "%s: unknown field %q (want one of %s)", what, k.Value, strings.Join(allowed, ", "))
		case out[k.Value] != nil:
			p.bad(k, "%s: %s given twice", what, k.Value)
		default:
			out[k.Value] = v
		}
	}
	return out
}

func (p *parser) str(n *yaml.Node, what string) string {
	if n == nil {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		p.bad(n, "%s: want a string", what)
		return ""
	}
	return n.Value
}

func (p *parser) integer(n *yaml.Node, what string) int {
	if n == nil {
		return 0
	}
	v, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		p.bad(n, "%s %q: want a whole number", what, n.Value)
	}
	return v
}

func (p *parser) duration(n *yaml.Node, what string) time.Duration {
	if n == nil {
		return 0
	}
	d, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil || d < 0 {
		p.bad(n, "%s %q: want a duration such as 200ms or 60s", what, n.Value)
	}
	return d
}

var (
	validName  = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	validThing = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)
)

func (p *parser) file(doc *yaml.Node) *File {
	f := &File{}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		p.bad(doc, "want a rig: a mapping with rig and boards")
		return f
	}
	top := p.fields(doc.Content[0], "rig file", "rig", "boards")
	f.Rig = p.str(top["rig"], "rig")
	if top["rig"] == nil {
		p.bad(doc.Content[0], "rig: missing: name the rig")
	} else if !validName.MatchString(f.Rig) {
		p.bad(top["rig"], "rig %q: want 1 to 64 of [a-zA-Z0-9_-]", f.Rig)
	}
	bs := top["boards"]
	switch {
	case bs == nil:
		p.bad(doc.Content[0], "boards: missing: a rig has at least one board")
		return f
	case bs.Kind != yaml.SequenceNode || len(bs.Content) == 0:
		p.bad(bs, "boards: want a list of at least one board")
		return f
	}
	names, things, ports := map[string]int{}, map[string]int{}, map[string]int{}
	for _, bn := range bs.Content {
		b := p.board(bn)
		for _, u := range []struct {
			seen  map[string]int
			key   string
			label string
		}{{names, b.Name, "name"}, {things, b.Thing, "thing"}, {ports, b.Serial.Port, "serial port"}} {
			if u.key == "" {
				continue
			}
			if line, dup := u.seen[u.key]; dup {
				p.bad(bn, "board %s: %s %q is also the %s of the board at line %d", b.Name, u.label, u.key, u.label, line)
			} else {
				u.seen[u.key] = bn.Line
			}
		}
		f.Boards = append(f.Boards, b)
	}
	return f
}

func (p *parser) board(n *yaml.Node) BoardSpec {
	b := BoardSpec{Line: n.Line}
	m := p.fields(n, "board", "name", "thing", "architecture", "serial", "power", "reset", "status", "modemReset", "expect", "emulate")
	b.Name = p.str(m["name"], "name")
	what := "board " + b.Name
	if b.Name == "" {
		what = "board"
		p.bad(n, "board: name missing")
	} else if !validName.MatchString(b.Name) {
		p.bad(m["name"], "board name %q: want 1 to 64 of [a-zA-Z0-9_-]", b.Name)
	}
	b.Thing = p.str(m["thing"], "thing")
	if b.Thing == "" {
		p.bad(n, "%s: thing missing: the agent's thing (robot) name", what)
	} else if !validThing.MatchString(b.Thing) {
		p.bad(m["thing"], "%s: thing %q: want 1 to 128 of [a-zA-Z0-9_-] (it is also the RoboMaker robot name)", what, b.Thing)
	}
	b.Architecture = p.str(m["architecture"], "architecture")
	if a, ok := robomakerArchitectures[b.Architecture]; ok {
		b.Architecture = a
	}
	if b.Architecture == "" {
		b.Architecture = fleet.ArchAMD64
	} else if err := fleet.CheckArchitecture(b.Architecture); err != nil {
		p.bad(m["architecture"], "%s: %v", what, err)
	}
	if e := m["emulate"]; e != nil {
		b.Emulate = p.emulate(e, what)
	}
	if s := m["serial"]; s != nil {
		sm := p.fields(s, what+": serial", "port", "baud")
		b.Serial.Port = p.str(sm["port"], "serial.port")
		b.Serial.Baud = p.integer(sm["baud"], what+": serial.baud")
		if b.Serial.Port != "" {
			if _, _, err := serial.Parse(b.Serial.Port); err != nil {
				p.bad(sm["port"], "%s: %v", what, err)
			} else if b.Emulate != nil {
				p.bad(sm["port"], "%s: an emulated board makes its own console: give no serial.port", what)
			}
		}
		if sm["baud"] != nil && (b.Serial.Baud <= 0 || b.Serial.Baud > 4000000) {
			p.bad(sm["baud"], "%s: serial.baud %d: want a line speed such as 115200", what, b.Serial.Baud)
		}
	}
	if b.Serial.Port == "" && b.Emulate == nil {
		p.bad(n, "%s: serial.port missing: the console's device path, tcp://host:port or rfc2217://host:port", what)
	}
	if b.Serial.Baud == 0 {
		b.Serial.Baud = 115200
	}
	for _, l := range []struct {
		key string
		dst **LineSpec
	}{{"power", &b.Power}, {"reset", &b.Reset}, {"status", &b.Status}} {
		if ln := m[l.key]; ln != nil {
			*l.dst = p.line(ln, what+": "+l.key, l.key, b.Emulate != nil)
		}
	}
	if mr := m["modemReset"]; mr != nil {
		mm := p.fields(mr, what+": modemReset", "signal", "active", "pulse")
		b.ModemReset = &ModemSpec{Signal: strings.ToLower(p.str(mm["signal"], "signal")), Pulse: p.duration(mm["pulse"], what+": modemReset.pulse")}
		if b.ModemReset.Signal != "dtr" && b.ModemReset.Signal != "rts" {
			p.bad(mr, "%s: modemReset.signal %q: want dtr or rts", what, b.ModemReset.Signal)
		}
		b.ModemReset.ActiveLow = p.active(mm["active"], what+": modemReset", true)
		if b.ModemReset.Pulse == 0 {
			b.ModemReset.Pulse = 100 * time.Millisecond
		}
		if b.Reset != nil {
			p.bad(mr, "%s: give reset or modemReset, not both", what)
		}
	}
	b.Expect = ExpectSpec{Prompt: DefaultPrompt, BootTimeout: 60 * time.Second}
	if e := m["expect"]; e != nil {
		em := p.fields(e, what+": expect", "prompt", "bootTimeout")
		if pr := m["expect"]; pr != nil && em["prompt"] != nil {
			b.Expect.Prompt = p.str(em["prompt"], "expect.prompt")
			if _, err := regexp.Compile(b.Expect.Prompt); err != nil || b.Expect.Prompt == "" {
				p.bad(em["prompt"], "%s: expect.prompt %q: want a regular expression the booted console shows", what, b.Expect.Prompt)
			}
		}
		if em["bootTimeout"] != nil {
			b.Expect.BootTimeout = p.duration(em["bootTimeout"], what+": expect.bootTimeout")
			if b.Expect.BootTimeout == 0 {
				p.bad(em["bootTimeout"], "%s: expect.bootTimeout: want more than 0", what)
			}
		}
	}
	return b
}

func (p *parser) active(n *yaml.Node, what string, def bool) bool {
	switch v := p.str(n, what+".active"); v {
	case "":
		return def
	case "low":
		return true
	case "high":
		return false
	default:
		p.bad(n, "%s.active %q: want high or low", what, v)
		return def
	}
}

func (p *parser) line(n *yaml.Node, what, role string, emulated bool) *LineSpec {
	m := p.fields(n, what, "chip", "line", "active", "pulse", "off")
	l := &LineSpec{Chip: p.str(m["chip"], what+".chip"), Line: p.str(m["line"], what+".line")}
	switch {
	case l.Chip == "":
		p.bad(n, "%s.chip missing: the GPIO chip (gpiochip0)%s", what, map[bool]string{true: ` or "emulated"`, false: ""}[emulated])
	case emulated && l.Chip != EmulatedChip:
		p.bad(m["chip"], "%s.chip %q: an emulated board's lines are on chip %q", what, l.Chip, EmulatedChip)
	case !emulated && l.Chip == EmulatedChip:
		p.bad(m["chip"], "%s.chip %q: only an emulated board (emulate:) has emulated lines", what, l.Chip)
	}
	if l.Line == "" {
		p.bad(n, "%s.line missing: the line's name (GPIO17) or offset (17)", what)
	}
	l.ActiveLow = p.active(m["active"], what, role == "reset")
	l.Pulse = p.duration(m["pulse"], what+".pulse")
	l.Off = p.duration(m["off"], what+".off")
	if m["pulse"] != nil && role != "reset" {
		p.bad(m["pulse"], "%s: pulse is for a reset line", what)
	}
	if m["off"] != nil && role != "power" {
		p.bad(m["off"], "%s: off is for a power line", what)
	}
	if l.Pulse == 0 {
		l.Pulse = 200 * time.Millisecond
	}
	if l.Off == 0 {
		l.Off = time.Second
	}
	return l
}

func (p *parser) emulate(n *yaml.Node, what string) *EmulateSpec {
	if n.Kind == yaml.ScalarNode && (n.Value == "true" || n.Value == "") {
		return &EmulateSpec{BootDelay: 100 * time.Millisecond}
	}
	m := p.fields(n, what+": emulate", "banner", "prompt", "bootDelay", "panic")
	e := &EmulateSpec{Banner: p.str(m["banner"], "emulate.banner"), Prompt: p.str(m["prompt"], "emulate.prompt"),
		BootDelay: p.duration(m["bootDelay"], what+": emulate.bootDelay"), Panic: p.str(m["panic"], "emulate.panic")}
	if m["bootDelay"] == nil {
		e.BootDelay = 100 * time.Millisecond
	}
	return e
}
