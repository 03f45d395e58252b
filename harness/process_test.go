package harness_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/harness/robomaker"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet/process"
)

// TestProcessBackend runs robots as fleetlab-agent processes: a rollout with a robot killed (SIGKILL) as it
// starts downloading, which restarts and resumes, and a fault the backend cannot do, refused at arm.
func TestProcessBackend(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the fleetlab-agent binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := process.Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	env := harness.New(t, harness.WithRobots(3), harness.WithBackend(harness.Process{Binary: bin}))

	_, err = env.Arm(faults.Spec{Fault: "script-exit", Params: []byte(`{"script":"pre-launch"}`)})
	var ue *faults.UnsupportedError
	if !errors.As(err, &ue) || ue.Backend != "process" || ue.Ability != "fleet.ExecutorHook" {
		t.Fatalf("script-exit on the process backend: %v, want it refused for lack of fleet.ExecutorHook", err)
	}

	env.Inject(faults.Spec{Fault: "crash", Params: []byte(`{"down":"30s"}`),
		Target: faults.Selector{Devices: []string{"robot-0002"}, Step: rmwire.StepDownloadingExtracting}})
	// Process agents keep wall-clock time, and a restarted one resumes in real seconds on a loaded machine: the
	// robot timeout (RoboMaker's default five hours, 30 s of wall time at 600x) leaves room for that.
	j := env.WaitJob(env.Deploy(bundles.Hello, robomaker.Deployment{Timeout: 5 * time.Hour}))
	env.Expect(j).To(harness.HaveStatus(robomaker.JobSucceeded))
	env.Expect(j).To(harness.HaveRobotCounts(map[string]int{robomaker.RobotInSync: 3}))
	// The agent's events come from another process, so the kill lands just after the robot entered the step,
	// not exactly at it; either way it is killed, restarted, and in sync at the end.
	env.Expect(env.Events()).To(harness.ContainEvents(
		event.Event{Kind: harness.AgentState, Device: "robot-0002", Step: rmwire.StepDownloadingExtracting},
		event.Event{Kind: event.FaultInjected, Fault: "crash", Device: "robot-0002", Reason: "struck"},
		event.Event{Kind: event.FaultRecovered, Fault: "crash", Device: "robot-0002", Reason: "restarted"},
		event.Event{Kind: harness.AgentConnected, Device: "robot-0002"}))
}
