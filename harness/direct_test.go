package harness_test

import (
	"errors"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/harness/robomaker"
	"github.com/fleetlab/fleetlab/sim/fleet/inproc"
)

// TestDirectInProcRefusesLinkFaults: on the in-process host's direct path (no link proxy) a link fault is
// refused when it is armed, naming the option — never armed and then silently not done — and the robots
// deploy over real HTTP.
func TestDirectInProcRefusesLinkFaults(t *testing.T) {
	backend := harness.InProc{Transport: harness.HTTP, Direct: true}
	if backend.VirtualTime() {
		t.Fatal("the direct path speaks over sockets and cannot run on virtual time")
	}
	env := harness.New(t, harness.WithRobots(3), harness.WithBackend(backend))
	for _, f := range []string{"partition", "latency"} {
		params := []byte(`{}`)
		if f == "latency" {
			params = []byte(`{"latency":"1s"}`)
		}
		_, err := env.Arm(faults.Spec{Fault: f, Params: params, Target: faults.Selector{Devices: []string{"robot-0001"}}})
		if !errors.Is(err, inproc.ErrNoLink) {
			t.Fatalf("%s on the direct path: %v, want it refused with inproc.ErrNoLink", f, err)
		}
	}
	j := env.WaitJob(env.Deploy(bundles.Hello, robomaker.Deployment{Timeout: time.Hour}))
	env.Expect(j).To(harness.HaveStatus(robomaker.JobSucceeded))
	env.Expect(j).To(harness.HaveRobotCounts(map[string]int{robomaker.RobotInSync: 3}))
}
