package rigs_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/rigs"
	"github.com/fleetlab/fleetlab/rigs/serial"
	"github.com/fleetlab/fleetlab/rigs/serial/serialtest"
	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
)

// fakePorts hands out the lab end of a serialtest pair for each address opened, and keeps the board's end.
type fakePorts struct {
	clk *clocktest.Fake

	mu     sync.Mutex
	opened map[string]*serialtest.Port // the lab's ends, by address
	boards map[string]*serialtest.Port
}

func (f *fakePorts) Open(addr string, _ serial.Options) (serial.Port, error) {
	board, lab := serialtest.Pair()
	lab.Clock = f.clk
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opened[addr], f.boards[addr] = lab, board
	return lab, nil
}

// TestModemLineReset resets a board wired to its USB serial adapter's DTR (RTS for the second): the rig
// releases the line when it opens the port — Linux asserts both on open, which would hold the board in reset —
// and Reset asserts it for exactly the pulse, in the line clock's time.
func TestModemLineReset(t *testing.T) {
	f, err := rigs.Parse("modem.yaml", strings.NewReader(`
rig: modem
boards:
  - name: esp-1
    thing: robot-0001
    serial: {port: /dev/ttyUSB0}
    modemReset: {signal: dtr, pulse: 250ms}
  - name: esp-2
    thing: robot-0002
    serial: {port: /dev/ttyUSB1}
    modemReset: {signal: rts, active: high, pulse: 40ms}
`))
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New(time.Time{})
	ports := &fakePorts{clk: clk, opened: map[string]*serialtest.Port{}, boards: map[string]*serialtest.Port{}}
	r, err := rigs.Open(f, rigs.Options{Endpoint: "http://127.0.0.1:1", Dir: t.TempDir(), Ports: ports, LineClock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	changes := func(p *serialtest.Port) ([]string, []time.Time) {
		p.Mu.Lock()
		defer p.Mu.Unlock()
		return append([]string(nil), p.Changes...), append([]time.Time(nil), p.ChangedAt...)
	}
	for _, c := range []struct {
		thing, port string
		pulse       time.Duration
		want        []string // at open, asserted, released
	}{
		{"robot-0001", "/dev/ttyUSB0", 250 * time.Millisecond, []string{"DTR=0", "DTR=1", "DTR=0"}},
		{"robot-0002", "/dev/ttyUSB1", 40 * time.Millisecond, []string{"RTS=1", "RTS=0", "RTS=1"}},
	} {
		p := ports.opened[c.port]
		if got, _ := changes(p); !reflect.DeepEqual(got, c.want[:1]) {
			t.Fatalf("%s at open: %v, want the line released: %v", c.thing, got, c.want[:1])
		}
		done := make(chan error, 1)
		go func() { done <- r.Board(c.thing).Reset(context.Background()) }()
		<-clk.BlockUntil(1) // the pulse has begun: the reset is asserted and held
		if got, _ := changes(p); !reflect.DeepEqual(got, c.want[:2]) {
			t.Fatalf("%s during the pulse: %v, want %v", c.thing, got, c.want[:2])
		}
		start := clk.Now()
		clk.Advance(c.pulse - time.Millisecond)
		select {
		case err := <-done:
			t.Fatalf("%s: the reset ended %v before its pulse of %v was over: %v", c.thing, time.Millisecond, c.pulse, err)
		default:
		}
		clk.Advance(time.Millisecond)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		got, at := changes(p)
		if !reflect.DeepEqual(got, c.want) {
			t.Fatalf("%s: %v, want %v", c.thing, got, c.want)
		}
		if held := at[2].Sub(at[1]); held != c.pulse || !at[1].Equal(start) {
			t.Errorf("%s: reset held %v from %v, want %v from %v", c.thing, held, at[1], c.pulse, start)
		}
	}
}

// A port without modem lines — a raw tcp:// port, a pseudo-terminal — cannot reset a board wired to them: the
// rig says so when it opens the board.
func TestModemResetNeedsModemLines(t *testing.T) {
	f, err := rigs.Parse("modem.yaml", strings.NewReader(`
rig: modem
boards:
  - name: esp-1
    thing: robot-0001
    serial: {port: /dev/ttyUSB0}
    modemReset: {signal: dtr}
`))
	if err != nil {
		t.Fatal(err)
	}
	ports := &noModemPorts{}
	_, err = rigs.Open(f, rigs.Options{Endpoint: "http://127.0.0.1:1", Dir: t.TempDir(), Ports: ports})
	var re *rigs.RigError
	if !errors.As(err, &re) || !errors.Is(err, serial.ErrNoModemLines) || re.Board != "esp-1" {
		t.Fatalf("open: %v, want a RigError of esp-1 wrapping ErrNoModemLines", err)
	}
	if ports.board == nil {
		t.Fatal("the port was never opened")
	}
}

type noModemPorts struct{ board *serialtest.Port }

func (n *noModemPorts) Open(string, serial.Options) (serial.Port, error) {
	board, lab := serialtest.Pair()
	lab.NoModemLines = true
	n.board = board
	return lab, nil
}
