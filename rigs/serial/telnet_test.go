package serial_test

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/fleetlab/fleetlab/rigs/serial"
)

// TestRFC2217 speaks to a scripted telnet server: the client offers the com-port option and binary mode, sets
// the line speed, sends DTR and RTS as SET-CONTROL commands, doubles 0xFF in data, and strips the server's
// telnet commands from what it reads.
func TestRFC2217(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		// The server's own negotiation (ser2net's: WILL SGA, DO SGA, WILL ECHO…), a com-port answer, then data
		// with an escaped 0xFF.
		c.Write([]byte{255, 251, 3, 255, 253, 3, 255, 251, 1, 255, 250, 44, 101, 0, 1, 194, 0, 255, 240, 'o', 'k', 255, 255, '\n'})
		b, _ := io.ReadAll(c)
		got <- b
	}()
	p, err := serial.Open("rfc2217://"+ln.Addr().String(), serial.Options{Baud: 115200})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(p, buf); err != nil || !bytes.Equal(buf, []byte{'o', 'k', 255, '\n'}) {
		t.Fatalf("read %q, %v: want the data without the telnet commands", buf, err)
	}
	ml := p.(serial.ModemLines)
	if err := ml.SetDTR(true); err != nil {
		t.Fatal(err)
	}
	if err := ml.SetRTS(false); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write([]byte{'~', 255, '\n'}); err != nil {
		t.Fatal(err)
	}
	p.Close()
	b := <-got
	for _, want := range [][]byte{
		{255, 251, 44},               // WILL COM-PORT-OPTION
		{255, 251, 0}, {255, 253, 0}, // binary both ways
		{255, 250, 44, 1, 0, 1, 194, 0, 255, 240}, // SET-BAUDRATE 115200
		{255, 254, 1},                   // DONT ECHO: the client offered no echo
		{255, 250, 44, 5, 8, 255, 240},  // SET-CONTROL DTR on
		{255, 250, 44, 5, 12, 255, 240}, // SET-CONTROL RTS off
		{'~', 255, 255, '\n'},           // data, 0xFF doubled
	} {
		if !bytes.Contains(b, want) {
			t.Errorf("the client sent %v, which lacks %v", b, want)
		}
	}
}
