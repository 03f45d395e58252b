package agenttest

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock"
)

// leakMarkers name the frames of goroutines an agent test must not leave behind: the agent's own, the
// notify channel's, HTTP connections and test servers.
var leakMarkers = []string{
	"fleetlab/fleetlab/sim/agent.",
	"github.com/gorilla/websocket.",
	"net/http.(*persistConn)",
	"net/http.(*conn).serve",
	"net/http/httptest.",
	"os/exec.(*Cmd).",
}

// CheckGoroutines waits up to timeout of real time for every goroutine running agent, websocket, HTTP
// connection or process code to end, and returns an error listing the survivors otherwise. Call it from
// TestMain after m.Run, when no test is running.
func CheckGoroutines(timeout time.Duration) error {
	var left []string
	ok := Eventually(timeout, func() bool {
		left = leaked()
		return len(left) == 0
	})
	if ok {
		return nil
	}
	return fmt.Errorf("%d goroutines left behind:\n\n%s", len(left), strings.Join(left, "\n\n"))
}

func leaked() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "agenttest.leaked") {
			continue
		}
		for _, m := range leakMarkers {
			if strings.Contains(g, m) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// Eventually polls cond every few milliseconds of real time until it holds or timeout passes, and reports
// whether it held. It is how tests wait on a condition: with a deadline, never a bare sleep.
func Eventually(timeout time.Duration, cond func() bool) bool {
	c := clock.Real{}
	deadline := c.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if c.Now().After(deadline) {
			return false
		}
		clock.Sleep(c, 5*time.Millisecond, nil)
	}
}
