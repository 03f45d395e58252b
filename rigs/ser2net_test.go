package rigs_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/rigs"
	"github.com/fleetlab/fleetlab/rigs/emulated"
	"github.com/fleetlab/fleetlab/rigs/serial"
	"github.com/fleetlab/fleetlab/rigs/serial/ser2nettest"
)

// TestCheckBoardBehindSer2net checks a board whose console is exported by ser2net — raw TCP, and telnet with
// RFC 2217 — as a lab host exports the boards wired to it: the rig knows only the network port and the GPIO
// lines. The board is an emulated one whose pseudo-terminal ser2net serves.
func TestCheckBoardBehindSer2net(t *testing.T) {
	ser2nettest.Require(t)
	for _, kind := range []serial.Kind{serial.TCP, serial.RFC2217} {
		t.Run(string(kind), func(t *testing.T) {
			emu, err := emulated.New(emulated.Options{Thing: "robot-0001", Agent: agentBin, Dir: t.TempDir(),
				AgentArgs: []string{"--poll-min", "50ms", "--poll-max", "500ms"}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { emu.Close() })
			addr := ser2nettest.Export(t, emu.LabPort(), 115200, kind)
			f, err := rigs.Parse("remote.yaml", strings.NewReader(fmt.Sprintf(`
rig: remote
boards:
  - name: far-board
    thing: robot-0001
    serial: {port: "%s", baud: 115200}
    power: {chip: lab, line: power, off: 200ms}
    status: {chip: lab, line: status}
    expect: {bootTimeout: 20s}
`, addr)))
			if err != nil {
				t.Fatal(err)
			}
			r, err := rigs.Open(f, rigs.Options{Endpoint: serve(t), Dir: t.TempDir(), GPIO: emu})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			hs := r.Check(ctx)
			if len(hs) != 1 || !hs[0].Healthy() || !hs[0].Agent || hs[0].Status == nil || !*hs[0].Status {
				t.Fatalf("health over %s: %+v", addr, hs)
			}
			b := r.Board("robot-0001")
			if st := b.Stats(); st.FramesReceived == 0 || st.FramesCorrupt != 0 {
				t.Errorf("frames over %s: %+v", addr, st)
			}
			if !strings.Contains(b.Console().Tail(20), "robot-0001 login:") {
				t.Errorf("the console over %s did not show the prompt:\n%s", addr, b.Console().Tail(20))
			}
		})
	}
}
