package serial_test

import (
	"errors"
	"io"
	"os"
	"testing"

	"github.com/creack/pty"

	"github.com/fleetlab/fleetlab/rigs/serial"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		addr   string
		kind   serial.Kind
		target string
		bad    bool
	}{
		{addr: "/dev/ttyUSB0", kind: serial.Device, target: "/dev/ttyUSB0"},
		{addr: "tcp://lab-2:3001", kind: serial.TCP, target: "lab-2:3001"},
		{addr: "rfc2217://10.0.0.5:2217", kind: serial.RFC2217, target: "10.0.0.5:2217"},
		{addr: "", bad: true},
		{addr: "ttyUSB0", bad: true},
		{addr: "tcp://lab-2", bad: true},
		{addr: "tcp://lab-2:3001/x", bad: true},
		{addr: "ssh://lab-2:22", bad: true},
	} {
		kind, target, err := serial.Parse(c.addr)
		if c.bad {
			if err == nil {
				t.Errorf("Parse(%q) accepted", c.addr)
			}
			continue
		}
		if err != nil || kind != c.kind || target != c.target {
			t.Errorf("Parse(%q) = %s, %q, %v", c.addr, kind, target, err)
		}
	}
}

// A pseudo-terminal opened through go.bug.st/serial carries bytes both ways and says it has no modem lines.
func TestDeviceOnAPseudoTerminal(t *testing.T) {
	ptm, pts, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	defer ptm.Close()
	name := pts.Name()
	pts.Close()
	p, err := serial.Open(name, serial.Options{Baud: 115200})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(ptm, buf); err != nil || string(buf) != "ping\n" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if _, err := ptm.Write([]byte("pong\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(p, buf); err != nil || string(buf) != "pong\n" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if err := p.(serial.ModemLines).SetDTR(false); !errors.Is(err, serial.ErrNoModemLines) {
		t.Errorf("SetDTR on a pty: %v, want ErrNoModemLines", err)
	}
	// Close unblocks a read in progress.
	done := make(chan error, 1)
	go func() {
		_, err := p.Read(buf)
		done <- err
	}()
	p.Close()
	if err := <-done; err == nil {
		t.Error("a read on a closed port returned no error")
	}
	if _, err := serial.Open("/dev/fleetlab-no-such-port", serial.Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("open a missing device: %v", err)
	}
}
