// Package ser2nettest runs Debian's ser2net (4.x, YAML configuration) for tests: it exports a serial device —
// an emulated board's pseudo-terminal — on a loopback TCP port, raw (tcp://) or as telnet with the RFC 2217
// com-port option (rfc2217://), the way a lab host exports the boards wired to it.
package ser2nettest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/rigs/serial"
	"github.com/fleetlab/fleetlab/sim/clock"
)

// Program is ser2net's path on Debian (package ser2net).
const Program = "/usr/sbin/ser2net"

// Require skips tb when ser2net is not installed.
func Require(tb testing.TB) {
	tb.Helper()
	if _, err := os.Stat(Program); err != nil {
		tb.Skipf("ser2net is not installed (%v): apt-get install ser2net to test tcp:// and rfc2217:// ports", err)
	}
}

// Export runs ser2net exporting device at baud as kind (serial.TCP or serial.RFC2217) on a free loopback port,
// waits until it listens, and returns the port's address for serial.Open ("tcp://127.0.0.1:N"). The process
// is stopped, and waited for, when tb ends. It skips tb when ser2net is not installed.
func Export(tb testing.TB, device string, baud int, kind serial.Kind) string {
	tb.Helper()
	Require(tb)
	port, err := freePort()
	if err != nil {
		tb.Fatal(err)
	}
	accepter := fmt.Sprintf("tcp,127.0.0.1,%d", port)
	if kind == serial.RFC2217 {
		accepter = "telnet(rfc2217)," + accepter
	}
	dir := tb.TempDir()
	conf := filepath.Join(dir, "ser2net.yaml")
	// local: no modem control lines to wait for (a pseudo-terminal has none); kickolduser: a new connection
	// takes the port from an old one, as a rig reopening a board's console after a restart does.
	yaml := fmt.Sprintf("%%YAML 1.1\n---\nconnection: &board\n  accepter: %s\n  connector: serialdev,%s,%dn81,local\n  options:\n    kickolduser: true\n",
		accepter, device, baud)
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
		tb.Fatal(err)
	}
	// -d: stay in the foreground, debug output to stdout; -u: no UUCP lock files; -P: the pid file in dir.
	cmd := exec.Command(Program, "-d", "-u", "-c", conf, "-P", filepath.Join(dir, "ser2net.pid"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start ser2net: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tb.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-clock.Real{}.NewTimer(10 * time.Second).C():
			cmd.Process.Kill()
			<-exited
		}
	})
	if err := waitListening(port, exited); err != nil {
		tb.Fatalf("ser2net: %v\n%s", err, out.String())
	}
	return fmt.Sprintf("%s://127.0.0.1:%d", kind, port)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitListening waits until a socket listens on the loopback port, reading /proc/net/tcp: a connection to find
// out would be one ser2net serves.
func waitListening(port int, exited <-chan error) error {
	want := fmt.Sprintf("0100007F:%04X", port)
	tick := clock.Real{}.NewTimer(0)
	deadline := clock.Real{}.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("exited before listening: %v", err)
		case <-deadline.C():
			return errors.New("not listening after 10s")
		case <-tick.C():
		}
		if listening(want) {
			return nil
		}
		tick = clock.Real{}.NewTimer(20 * time.Millisecond)
	}
}

func listening(local string) bool {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 3 && fields[1] == local && fields[3] == "0A" { // TCP_LISTEN
			return true
		}
	}
	return false
}
