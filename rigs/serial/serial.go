// Package serial opens the serial lines of a rig: a local device (a USB serial adapter, a board's UART, a
// pseudo-terminal) through go.bug.st/serial, a raw TCP port as ser2net exports one (tcp://host:port), or a
// telnet port with the RFC 2217 com-port option (rfc2217://host:port). Every kind is a Port; a port whose
// modem lines can be driven (DTR and RTS, to reset a board wired to them) is also a ModemLines.
//
// Fakes for tests are in package serialtest.
package serial

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	bugst "go.bug.st/serial"
)

// Port is an open serial line: bytes in, bytes out. Close unblocks a Read in progress.
type Port interface {
	io.ReadWriteCloser
}

// ModemLines is a port whose modem control outputs can be driven.
type ModemLines interface {
	// SetDTR and SetRTS drive Data Terminal Ready and Request To Send: true asserts the line.
	SetDTR(on bool) error
	SetRTS(on bool) error
}

// ErrNoModemLines is returned by a port that has no modem lines to drive (a pseudo-terminal, a raw TCP port).
var ErrNoModemLines = errors.New("the port has no modem lines")

// Kind is how a port is reached.
type Kind string

// The kinds of port address.
const (
	Device  Kind = "device"  // a path such as /dev/ttyUSB0
	TCP     Kind = "tcp"     // tcp://host:port, raw bytes (ser2net's tcp accepter)
	RFC2217 Kind = "rfc2217" // rfc2217://host:port, telnet with the com-port option (ser2net's telnet(rfc2217))
)

// Parse splits a port address into its kind and the device path or host:port. It checks the form only.
func Parse(addr string) (Kind, string, error) {
	switch {
	case addr == "":
		return "", "", errors.New("empty serial port")
	case strings.HasPrefix(addr, "tcp://"), strings.HasPrefix(addr, "rfc2217://"):
		kind, hostport, _ := strings.Cut(addr, "://")
		if _, _, err := net.SplitHostPort(hostport); err != nil || strings.ContainsAny(hostport, "/?#") {
			return "", "", fmt.Errorf("serial port %q: want %s://host:port", addr, kind)
		}
		return Kind(kind), hostport, nil
	case strings.Contains(addr, "://"):
		return "", "", fmt.Errorf("serial port %q: unknown scheme (want a device path, tcp://host:port or rfc2217://host:port)", addr)
	case !strings.HasPrefix(addr, "/"):
		return "", "", fmt.Errorf("serial port %q: want an absolute device path such as /dev/ttyUSB0", addr)
	}
	return Device, addr, nil
}

// Options are how a port is opened.
type Options struct {
	// Baud is the line speed (default 115200); 8 data bits, no parity, one stop bit. A raw TCP port ignores it:
	// ser2net sets the speed from its own configuration.
	Baud int
	// DialTimeout bounds connecting to a network port (default 5s).
	DialTimeout time.Duration
}

// Open opens the port at addr (see Parse).
func Open(addr string, opts Options) (Port, error) {
	kind, target, err := Parse(addr)
	if err != nil {
		return nil, err
	}
	if opts.Baud <= 0 {
		opts.Baud = 115200
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	switch kind {
	case TCP:
		c, err := net.DialTimeout("tcp", target, opts.DialTimeout)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", addr, err)
		}
		return rawTCP{c}, nil
	case RFC2217:
		c, err := net.DialTimeout("tcp", target, opts.DialTimeout)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", addr, err)
		}
		p, err := newTelnet(c, opts.Baud)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("open %s: %w", addr, err)
		}
		return p, nil
	}
	p, err := bugst.Open(target, &bugst.Mode{BaudRate: opts.Baud, DataBits: 8, Parity: bugst.NoParity, StopBits: bugst.OneStopBit})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", addr, err)
	}
	return &device{p: p, path: target}, nil
}

// device is a local serial device.
type device struct {
	p    bugst.Port
	path string
}

var (
	_ Port       = (*device)(nil)
	_ ModemLines = (*device)(nil)
)

func (d *device) Read(b []byte) (int, error) {
	n, err := d.p.Read(b)
	if err == nil && n == 0 {
		// go.bug.st/serial returns 0, nil when the port was closed under the read.
		return 0, io.EOF
	}
	return n, err
}

func (d *device) Write(b []byte) (int, error) { return d.p.Write(b) }
func (d *device) Close() error                { return d.p.Close() }

// SetDTR implements ModemLines; a device without modem lines (a pseudo-terminal) answers ErrNoModemLines.
func (d *device) SetDTR(on bool) error { return d.modem("DTR", d.p.SetDTR(on)) }

// SetRTS implements ModemLines.
func (d *device) SetRTS(on bool) error { return d.modem("RTS", d.p.SetRTS(on)) }

func (d *device) modem(line string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("set %s on %s: %w (%v)", line, d.path, ErrNoModemLines, err)
}

// rawTCP is a serial port exported as raw bytes over TCP.
type rawTCP struct{ net.Conn }

// SetDTR implements ModemLines: a raw TCP port carries no modem lines (rfc2217:// does).
func (rawTCP) SetDTR(bool) error {
	return fmt.Errorf("set DTR over tcp://: %w (use rfc2217://)", ErrNoModemLines)
}

// SetRTS implements ModemLines.
func (rawTCP) SetRTS(bool) error {
	return fmt.Errorf("set RTS over tcp://: %w (use rfc2217://)", ErrNoModemLines)
}
