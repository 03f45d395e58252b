package emulated

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/fleetlab/fleetlab/rigs/serial"
	"github.com/fleetlab/fleetlab/sim/clock"
)

// Line is a serial cable on the lab host with nothing on it: two pseudo-terminals whose masters are joined by
// relays that pace the bytes at the baud rate, both ways. Each end is a device path for package serial. It is
// the line of an emulated board without the board, for measuring what the framing carries at a baud rate.
type Line struct {
	ptys  [2]*os.File    // masters
	ends  [2]serial.Port // slaves, held open (raw) so the masters never hang up
	paths [2]string
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

// NewLine opens a line paced at baud (8N1: ten bits a byte) on clk (nil: the real clock; the line is real).
func NewLine(baud int, clk clock.Clock) (*Line, error) {
	if baud <= 0 {
		return nil, fmt.Errorf("emulated line: baud %d is not a line speed", baud)
	}
	l := &Line{done: make(chan struct{})}
	for i := range l.ptys {
		var err error
		if l.ptys[i], l.ends[i], l.paths[i], err = openPTY(baud); err != nil {
			l.Close()
			return nil, fmt.Errorf("emulated line: %w", err)
		}
	}
	clk = clock.Or(clk)
	for i := range 2 {
		p := &pacer{clk: clk, byteTime: 10 * time.Second / time.Duration(baud), done: l.done}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			relay(l.ptys[i], l.ptys[1-i], p, nil)
		}()
	}
	return l, nil
}

// Ends returns the device paths of the line's two ends.
func (l *Line) Ends() (a, b string) { return l.paths[0], l.paths[1] }

// Close stops the relays and closes the pseudo-terminals.
func (l *Line) Close() error {
	var errs []error
	l.once.Do(func() {
		close(l.done)
		for _, c := range []io.Closer{l.ends[0], l.ends[1], l.ptys[0], l.ptys[1]} {
			if c != nil && !isNil(c) {
				errs = append(errs, c.Close())
			}
		}
		l.wg.Wait()
	})
	return errors.Join(errs...)
}

// relay carries what from gives to to, at the pace of p, until either fails or p's line closes. When pass is
// set and says no, what crossed the line is lost (the far end has no power).
func relay(from io.Reader, to io.Writer, p *pacer, pass func() bool) {
	buf := make([]byte, 64)
	for {
		n, err := from.Read(buf)
		if err != nil {
			return
		}
		if !p.pace(n) {
			return
		}
		if pass == nil || pass() {
			if _, err := to.Write(buf[:n]); err != nil {
				return
			}
		}
	}
}
