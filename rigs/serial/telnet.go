package serial

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
)

// Telnet (RFC 854) and the com-port option (RFC 2217), as far as a rig needs them: binary mode both ways, the
// line speed, and DTR and RTS.
const (
	iac  = 255
	dont = 254
	do   = 253
	wont = 252
	will = 251
	sb   = 250
	se   = 240

	optBinary  = 0
	optSGA     = 3 // suppress go-ahead
	optComPort = 44
	cpSetBaud  = 1
	cpSetCtrl  = 5
	ctrlDTROn  = 8
	ctrlDTROff = 9
	ctrlRTSOn  = 11
	ctrlRTSOff = 12
)

// telnet is a serial port behind a telnet server with the com-port option.
type telnet struct {
	c  net.Conn
	r  *bufio.Reader
	mu sync.Mutex // serialises writes: data and commands
}

var (
	_ Port       = (*telnet)(nil)
	_ ModemLines = (*telnet)(nil)
)

func newTelnet(c net.Conn, baud int) (*telnet, error) {
	t := &telnet{c: c, r: bufio.NewReader(c)}
	hello := []byte{iac, will, optComPort, iac, will, optBinary, iac, do, optBinary, iac, will, optSGA, iac, do, optSGA}
	if _, err := c.Write(hello); err != nil {
		return nil, err
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(baud))
	if err := t.command(cpSetBaud, b[:]...); err != nil {
		return nil, err
	}
	return t, nil
}

// command sends a com-port subnegotiation.
func (t *telnet) command(cmd byte, value ...byte) error {
	msg := []byte{iac, sb, optComPort, cmd}
	msg = append(msg, escape(value)...)
	msg = append(msg, iac, se)
	t.mu.Lock()
	defer t.mu.Unlock()
	_, err := t.c.Write(msg)
	return err
}

func escape(p []byte) []byte {
	out := make([]byte, 0, len(p))
	for _, c := range p {
		out = append(out, c)
		if c == iac {
			out = append(out, iac)
		}
	}
	return out
}

// Write writes data, doubling every 0xFF as telnet requires.
func (t *telnet) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.c.Write(escape(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Read returns data bytes, answering or dropping telnet commands on the way.
func (t *telnet) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if n > 0 && t.r.Buffered() == 0 {
			break
		}
		c, err := t.r.ReadByte()
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		if c != iac {
			p[n] = c
			n++
			continue
		}
		cmd, err := t.r.ReadByte()
		if err != nil {
			return n, err
		}
		switch cmd {
		case iac:
			p[n] = iac
			n++
		case do, dont, will, wont:
			opt, err := t.r.ReadByte()
			if err != nil {
				return n, err
			}
			t.answer(cmd, opt)
		case sb:
			if err := t.skipSub(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// answer refuses what this client does not offer; what it asked for itself it takes.
func (t *telnet) answer(cmd, opt byte) {
	ours := opt == optBinary || opt == optSGA || opt == optComPort
	var reply byte
	switch {
	case cmd == do && !ours:
		reply = wont
	case cmd == will && !ours:
		reply = dont
	default:
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.c.Write([]byte{iac, reply, opt})
}

// skipSub reads a subnegotiation to its IAC SE: the server's confirmations of the com-port commands.
func (t *telnet) skipSub() error {
	for {
		c, err := t.r.ReadByte()
		if err != nil {
			return err
		}
		if c != iac {
			continue
		}
		c, err = t.r.ReadByte()
		if err != nil {
			return err
		}
		if c == se {
			return nil
		}
	}
}

func (t *telnet) Close() error { return t.c.Close() }

// SetDTR implements ModemLines with SET-CONTROL.
func (t *telnet) SetDTR(on bool) error {
	v := byte(ctrlDTROff)
	if on {
		v = ctrlDTROn
	}
	if err := t.command(cpSetCtrl, v); err != nil {
		return fmt.Errorf("set DTR over rfc2217: %w", err)
	}
	return nil
}

// SetRTS implements ModemLines with SET-CONTROL.
func (t *telnet) SetRTS(on bool) error {
	v := byte(ctrlRTSOff)
	if on {
		v = ctrlRTSOn
	}
	if err := t.command(cpSetCtrl, v); err != nil {
		return fmt.Errorf("set RTS over rfc2217: %w", err)
	}
	return nil
}
