package harness_test

import (
	"fmt"
	"os"
	"time"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/harness/robomaker"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
)

// A user scenario from start to end: four robots, one of which hangs when it starts launching. The job has a
// ten-minute robot timeout, which at the default time scale passes in a second: the hung robot ends
// NoResponse, the others in sync. No HTTP, no SDK setup, no cleanup: the environment does it all.
//
// In a test, pass the *testing.T to harness.New; outside go test, a Recorder stands in for it, as here.
func Example() {
	run := func(t harness.T) {
		env := harness.New(t, harness.WithRobots(4))
		env.Inject(faults.Spec{Fault: "no-response",
			Target: faults.Selector{Devices: []string{"robot-0003"}, Step: rmwire.StepLaunching}})

		job := env.Deploy(bundles.Hello, robomaker.Deployment{Concurrency: 50, Timeout: 10 * time.Minute})

		env.Eventually(env.Job(job)).Should(harness.HaveStatus(robomaker.JobFailed))
		final := env.WaitJob(job)
		env.Expect(final).To(harness.HaveFailureCode("RobotDeploymentNoResponse"))
		env.Expect(final).To(harness.HaveRobot("robot-0003", harness.HaveStep(rmwire.StepLaunching)))
		env.Expect(final).To(harness.HaveRobotCounts(map[string]int{robomaker.RobotInSync: 3, robomaker.RobotNoResponse: 1}))
		for _, r := range final.Robots {
			fmt.Println(r) // name status/code@step
		}
	}
	if err := harness.NewRecorder("example", os.Stderr).Run(run); err != nil {
		fmt.Println("failed:", err)
	}
	// Output:
	// robot-0001 InSync@Finished
	// robot-0002 InSync@Finished
	// robot-0003 NoResponse/RobotDeploymentNoResponse@Launching
	// robot-0004 InSync@Finished
}
