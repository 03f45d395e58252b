package agenttest

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock"
)

// leakMarkers name the frames of goroutines a test must not leave behind: the module's own (agents, hosts,
// the service, the harness), the notify channel's, HTTP connections and test servers, processes waited on.
var leakMarkers = []string{
	"github.com/fleetlab/fleetlab/",
	"github.com/gorilla/websocket.",
	"net/http.(*persistConn)",
	"net/http.(*conn).serve",
	"net/http/httptest.",
	"os/exec.(*Cmd).",
}

// This file is the module's one goroutine leak check, in two forms: CheckGoroutines for a TestMain, after every
// test, and LeakTest for one test, against the goroutines that ran before it.

// CheckGoroutines waits up to timeout of real time for every goroutine running the module's code, websocket,
// HTTP connection or process code to end, and returns an error listing the survivors otherwise. Call it from
// TestMain after m.Run, when no test is running.
func CheckGoroutines(timeout time.Duration) error {
	return checkLeft(nil, timeout)
}

// LeakTest registers a cleanup — to run after every cleanup registered later — that fails t unless every
// goroutine started since the call and running the code CheckGoroutines watches has ended within ten seconds
// of real time. Call it first in a test that runs alone (not in parallel with others, whose goroutines it
// would count).
func LeakTest(t testing.TB) {
	t.Helper()
	before := map[string]bool{}
	for _, g := range goroutines() {
		before[goroutineID(g)] = true
	}
	t.Cleanup(func() {
		if err := checkLeft(before, 10*time.Second); err != nil {
			t.Error(err)
		}
	})
}

// checkLeft waits up to timeout for the watched goroutines not in before (by id) to end.
func checkLeft(before map[string]bool, timeout time.Duration) error {
	var left []string
	ok := Eventually(timeout, func() bool {
		left = leaked(before)
		return len(left) == 0
	})
	if ok {
		return nil
	}
	return fmt.Errorf("%d goroutines left behind:\n\n%s", len(left), strings.Join(left, "\n\n"))
}

// leaked returns the stacks of the goroutines that run watched code and are not in before.
func leaked(before map[string]bool) []string {
	var out []string
	for _, g := range goroutines() {
		if strings.Contains(g, "agenttest.leaked") || strings.Contains(g, "agenttest.LeakTest") || before[goroutineID(g)] {
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

// goroutines returns the stack of every goroutine, the caller's first.
func goroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return strings.Split(string(buf), "\n\n")
}

// goroutineID is the id of a goroutine from its stack: "goroutine 12 [running]:" gives "12".
func goroutineID(stack string) string {
	head, _, _ := strings.Cut(stack, " [")
	return strings.TrimPrefix(head, "goroutine ")
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
