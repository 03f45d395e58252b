package righost_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/rigs/righost"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet/process"
)

var agentBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fleetlab-righost-test-")
	if err != nil {
		panic(err)
	}
	if agentBin, err = process.Build(context.Background(), dir); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const rigFile = "../../fixtures/rigs/emulated-4.yaml"

// env is an environment on the four emulated boards. A serial line at 115200 baud carries a deployment in
// about a second, so policy time runs 20 times faster than the wall clock here, not 600.
func env(t *testing.T, robots int, opts ...harness.Option) *harness.Env {
	return harness.New(t, append([]harness.Option{harness.WithBackend(righost.Backend{Rig: rigFile, Agent: agentBin}),
		harness.WithRobots(robots), harness.WithTimeScale(20), harness.WithWait(2 * time.Minute)}, opts...)...)
}

func TestCleanDeploymentOnTheRig(t *testing.T) {
	e := env(t, 4)
	job := e.Deploy(bundles.Hello, harness.Deployment{Concurrency: 100, Timeout: 10 * time.Minute})
	final := e.WaitJob(job)
	e.Expect(final).To(harness.HaveStatus("Succeeded"))
	e.Expect(final).To(harness.HaveRobotCounts(map[string]int{"InSync": 4}))
	lines := 0
	for _, ev := range e.Events().Events() {
		if ev.Kind == event.ConsoleLine {
			lines++
		}
	}
	if lines == 0 {
		t.Error("no console line reached the event stream")
	}
}

func TestPowerCutIsNoResponse(t *testing.T) {
	e := env(t, 2)
	e.Inject(faults.Spec{Fault: "power-cut", Params: json.RawMessage(`{"duration": "1h"}`),
		Target: faults.Selector{Devices: []string{"robot-0002"}, Step: "DownloadingExtracting"}})
	job := e.Deploy(bundles.Hello, harness.Deployment{Concurrency: 100, Timeout: 2 * time.Minute})
	final := e.WaitJob(job)
	e.Expect(final).To(harness.HaveFailureCode("RobotDeploymentNoResponse"))
	e.Expect(final).To(harness.HaveRobot("robot-0002", harness.HaveStatus("NoResponse")))
	e.Expect(final).To(harness.HaveRobot("robot-0001", harness.HaveStatus("InSync")))
}

func TestResetDuringPreLaunchNeverLeavesAHalfInstalledRobotInSync(t *testing.T) {
	e := env(t, 2)
	e.Inject(faults.Spec{Fault: "reset", Target: faults.Selector{Devices: []string{"robot-0001"}, Step: "ExecutingPreLaunch"}})
	job := e.Deploy(bundles.Hello, harness.Deployment{Concurrency: 100, Timeout: 3 * time.Minute})
	final := e.WaitJob(job)
	r, ok := final.Robot("robot-0001")
	if !ok {
		t.Fatal("no robot-0001 in the job")
	}
	switch r.Status {
	case "InSync":
		// A resume: the agent came back after the reboot and finished; it must have reached Finished.
		e.Expect(r).To(harness.HaveStep("Finished"))
	case "Failed", "NoResponse":
		// A clean failure.
	default:
		t.Errorf("robot-0001 ended %s (%s)", r.Status, r.FailureCode)
	}
	if b := e.Fleet().(*righost.Fleet).Rig().Board("robot-0001").Emulated(); b.Boots() < 2 {
		t.Errorf("the board booted %d times: the reset did not happen", b.Boots())
	}
	t.Logf("robot-0001 after the reset: %s %s at %s", r.Status, r.FailureCode, r.Step)
}

func TestSerialNoiseStillDeploys(t *testing.T) {
	e := env(t, 1)
	e.Inject(faults.Spec{Fault: "serial-noise", Params: json.RawMessage(`{"rate": 0.002}`),
		Target: faults.Selector{Devices: []string{"robot-0001"}}})
	job := e.Deploy(bundles.Hello, harness.Deployment{Concurrency: 100, Timeout: 30 * time.Minute})
	final := e.WaitJob(job)
	e.Expect(final).To(harness.HaveStatus("Succeeded"))
	b := e.Fleet().(*righost.Fleet).Rig().Board("robot-0001")
	st := b.Stats()
	t.Logf("0.2%% noise: %d bytes changed; lab side: %d frames sent, %d resent, %d received, %d corrupt",
		b.NoiseChanged(), st.FramesSent, st.FramesResent, st.FramesReceived, st.FramesCorrupt)
	if b.NoiseChanged() == 0 || st.FramesResent == 0 || st.FramesCorrupt == 0 {
		t.Errorf("noise changed %d bytes, %d frames resent, %d corrupt: the fault did not happen", b.NoiseChanged(), st.FramesResent, st.FramesCorrupt)
	}
}

func TestRigRefusesFaultsItCannotDo(t *testing.T) {
	e := env(t, 1)
	if _, err := e.Arm(faults.Spec{Fault: "no-response", Target: faults.Selector{Devices: []string{"robot-0001"}}}); err == nil {
		t.Error("no-response armed on a rig board, which cannot be frozen")
	}
	if _, err := e.Arm(faults.Spec{Fault: "script-exit", Params: json.RawMessage(`{"script":"pre-launch","code":3}`),
		Target: faults.Selector{Devices: []string{"robot-0001"}}}); err == nil {
		t.Error("script-exit armed on a rig board, whose agent runs on the board")
	}
}
