// Package serialtest has fakes of the rig's serial ports: a pair of ports joined like a null-modem cable, in
// memory, recording what was done to the modem lines.
package serialtest

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/fleetlab/fleetlab/rigs/serial"
	"github.com/fleetlab/fleetlab/sim/clock"
)

// Port is one end of a Pair. Writes never block; reads wait for the other end's writes. Its exported fields
// drive and record it; take Mu to read them while the port is in use.
type Port struct {
	// NoModemLines makes SetDTR and SetRTS fail as on a pseudo-terminal.
	NoModemLines bool
	// Clock stamps the modem-line changes (nil: the real clock).
	Clock clock.Clock

	// Mu guards the fields below.
	Mu sync.Mutex
	// DTR and RTS are the modem lines' levels (true: asserted); Changes records every change, in order, as
	// "DTR=1" or "RTS=0", and ChangedAt when each was made, on Clock.
	DTR, RTS  bool
	Changes   []string
	ChangedAt []time.Time

	in   *buffer
	out  *buffer
	once sync.Once
}

var (
	_ serial.Port       = (*Port)(nil)
	_ serial.ModemLines = (*Port)(nil)
)

// Pair returns two joined ports: what one writes, the other reads.
func Pair() (*Port, *Port) {
	a, b := newBuffer(), newBuffer()
	return &Port{in: a, out: b}, &Port{in: b, out: a}
}

// Read implements serial.Port: it returns io.EOF once either end is closed and what was written is read.
func (p *Port) Read(b []byte) (int, error) { return p.in.read(b) }

// Write implements serial.Port.
func (p *Port) Write(b []byte) (int, error) { return p.out.write(b) }

// Close closes both directions.
func (p *Port) Close() error {
	p.once.Do(func() {
		p.in.close()
		p.out.close()
	})
	return nil
}

// SetDTR implements serial.ModemLines.
func (p *Port) SetDTR(on bool) error { return p.set("DTR", &p.DTR, on) }

// SetRTS implements serial.ModemLines.
func (p *Port) SetRTS(on bool) error { return p.set("RTS", &p.RTS, on) }

func (p *Port) set(name string, line *bool, on bool) error {
	if p.NoModemLines {
		return fmt.Errorf("set %s: %w", name, serial.ErrNoModemLines)
	}
	p.Mu.Lock()
	defer p.Mu.Unlock()
	*line = on
	v := 0
	if on {
		v = 1
	}
	p.Changes = append(p.Changes, fmt.Sprintf("%s=%d", name, v))
	p.ChangedAt = append(p.ChangedAt, clock.Or(p.Clock).Now())
	return nil
}

// buffer is one direction: an unbounded byte queue.
type buffer struct {
	mu     sync.Mutex
	data   []byte
	ready  chan struct{} // closed when data or closed changes; replaced after
	closed bool
}

func newBuffer() *buffer { return &buffer{ready: make(chan struct{})} }

func (b *buffer) write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, io.ErrClosedPipe
	}
	b.data = append(b.data, p...)
	b.signal()
	return len(p), nil
}

func (b *buffer) read(p []byte) (int, error) {
	for {
		b.mu.Lock()
		if len(b.data) > 0 {
			n := copy(p, b.data)
			b.data = b.data[n:]
			b.mu.Unlock()
			return n, nil
		}
		if b.closed {
			b.mu.Unlock()
			return 0, io.EOF
		}
		ready := b.ready
		b.mu.Unlock()
		<-ready
	}
}

func (b *buffer) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		b.signal()
	}
}

func (b *buffer) signal() {
	close(b.ready)
	b.ready = make(chan struct{})
}
