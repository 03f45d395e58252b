package artifacts

import (
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
)

// TestMain fails the package if goroutines outlive its tests: servers, downloads and throttled copies must all
// have ended once each test's cleanups have run.
func TestMain(m *testing.M) {
	code := m.Run()
	// The fuzzing engine keeps goroutines of its own (its signal handling among them).
	fuzzing := flag.Lookup("test.fuzz") != nil && flag.Lookup("test.fuzz").Value.String() != ""
	if code == 0 && !fuzzing {
		if err := agenttest.CheckGoroutines(5 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}
