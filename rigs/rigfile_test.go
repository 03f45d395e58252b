package rigs_test

import (
	"strings"
	"testing"

	"github.com/fleetlab/fleetlab/rigs"
)

func TestParseReportsEveryErrorWithItsLine(t *testing.T) {
	_, err := rigs.Parse("bad.yaml", strings.NewReader(`rig: bad rig
boards:
  - name: board-1
    thing: robot-0001
    serial: {port: ttyUSB0, baud: -5}
    power: {chip: gpiochip0}
    reset: {chip: gpiochip0, line: 27, active: sideways}
    colour: blue
  - name: board-1
    thing: robot-0001
    architecture: MIPS
    emulate: true
    power: {chip: gpiochip0, line: 3}
`))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`bad.yaml:1: rig "bad rig"`,
		`bad.yaml:5: board board-1: serial port "ttyUSB0"`,
		`bad.yaml:5: board board-1: serial.baud -5`,
		`bad.yaml:6: board board-1: power.line missing`,
		`bad.yaml:7: board board-1: reset.active "sideways"`,
		`bad.yaml:8: board: unknown field "colour"`,
		`bad.yaml:9: board board-1: name "board-1" is also the name of the board at line 3`,
		`bad.yaml:11: board board-1: architecture "MIPS"`,
		`bad.yaml:13: board board-1: power.chip "gpiochip0": an emulated board's lines are on chip "emulated"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

// TestParseArchitectures reads a board's architecture by its GOARCH name, amd64 when the file names none, and
// by RoboMaker's name as rig files once named it.
func TestParseArchitectures(t *testing.T) {
	for in, want := range map[string]string{"": "amd64", "amd64": "amd64", "arm64": "arm64", "arm": "arm",
		"X86_64": "amd64", "ARM64": "arm64", "ARMHF": "arm"} {
		text := "rig: r\nboards:\n  - name: b\n    thing: t\n    serial: {port: /dev/ttyUSB0}\n"
		if in != "" {
			text += "    architecture: " + in + "\n"
		}
		f, err := rigs.Parse("arch.yaml", strings.NewReader(text))
		if err != nil {
			t.Errorf("architecture %q: %v", in, err)
			continue
		}
		if got := f.Boards[0].Architecture; got != want {
			t.Errorf("architecture %q read as %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"x86_64", "armhf", "riscv64"} {
		_, err := rigs.Parse("arch.yaml", strings.NewReader("rig: r\nboards:\n  - name: b\n    thing: t\n"+
			"    serial: {port: /dev/ttyUSB0}\n    architecture: "+bad+"\n"))
		if err == nil || !strings.Contains(err.Error(), "arch.yaml:6: board b: architecture \""+bad+"\": want amd64, arm64 or arm") {
			t.Errorf("architecture %q: %v", bad, err)
		}
	}
}

func TestParseExamples(t *testing.T) {
	for _, p := range []string{"../fixtures/rigs/emulated-4.yaml", "../fixtures/rigs/raspberry-pi.yaml"} {
		f, err := rigs.Load(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if len(f.Boards) == 0 {
			t.Errorf("%s: no boards", p)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("rig: r\nboards:\n  - name: b\n    thing: t\n    serial: {port: /dev/ttyUSB0}\n")
	f.Add("rig: r\nboards:\n  - name: b\n    thing: t\n    emulate: {panic: x}\n    power: {chip: emulated, line: power, off: 1s}\n")
	f.Add("rig: [\n")
	f.Add("boards: 3\n")
	f.Fuzz(func(t *testing.T, text string) {
		rf, err := rigs.Parse("fuzz.yaml", strings.NewReader(text))
		if err != nil {
			return
		}
		// What parses is a rig a board driver can open: every board named, with a thing and a console.
		for _, b := range rf.Boards {
			if b.Name == "" || b.Thing == "" || (b.Serial.Port == "" && b.Emulate == nil) || b.Expect.Prompt == "" || b.Serial.Baud <= 0 {
				t.Fatalf("accepted an unusable board: %+v", b)
			}
		}
	})
}
