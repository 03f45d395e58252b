package harness_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/harness/robomaker"
	agentrobomaker "github.com/fleetlab/fleetlab/sim/agent/robomaker"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet/container"
	"github.com/fleetlab/fleetlab/sim/fleet/container/containertest"
)

// agentBinary is the fleetlab-agent built once for the test binary, for the robot image.
var agentBinary string

func TestMain(m *testing.M) { os.Exit(containertest.Main(m, &agentBinary)) }

// inContainers is the container backend of the tests, skipping t where Docker is not there.
func inContainers(t *testing.T) harness.Option {
	t.Helper()
	containertest.Require(t)
	return harness.WithBackend(harness.Container{Binary: agentBinary})
}

// TestContainerJob20 deploys to 20 robots in containers: one is paused when it starts downloading and never
// answers again (NoResponse), one is disconnected from its network for two minutes as it starts downloading and
// heals well within its timeout (InSync), one's pre-launch script exits 3 (Failed). The job and every robot end
// exactly so; the job's code is its first failed robot's in release order, robot-0005's.
func TestContainerJob20(t *testing.T) {
	spec := harness.Spec{
		Name:  "container-job-20",
		Fleet: harness.FleetSpec{Robots: 20},
		Job:   harness.JobSpec{Bundle: bundles.Hello, Timeout: faults.Duration(15 * time.Minute)},
		Faults: []faults.Spec{
			{Fault: "no-response", Target: faults.Selector{Devices: []string{"robot-0005"}, Step: rmwire.StepDownloadingExtracting}},
			{Fault: "partition", Params: []byte(`{"duration":"2m"}`),
				Target: faults.Selector{Devices: []string{"robot-0010"}, Step: rmwire.StepDownloadingExtracting}},
			{Fault: "script-exit", Params: []byte(`{"script":"pre-launch","code":3}`),
				Target: faults.Selector{Devices: []string{"robot-0015"}}},
		},
		Options: []harness.Option{inContainers(t), harness.WithWait(2 * time.Minute)},
		Expect: harness.Expect{
			Status: robomaker.JobFailed, FailureCode: "RobotDeploymentNoResponse",
			Robots: map[string]harness.RobotExpect{
				"robot-0005": {Status: robomaker.RobotNoResponse, FailureCode: "RobotDeploymentNoResponse", Step: rmwire.StepDownloadingExtracting},
				"robot-0010": {Status: robomaker.RobotInSync, Step: rmwire.StepFinished},
				"robot-0015": {Status: robomaker.RobotFailed, FailureCode: "PreLaunchFileFailure", Step: rmwire.StepExecutingPreLaunch},
			},
			Others: &harness.RobotExpect{Status: robomaker.RobotInSync, Step: rmwire.StepFinished},
			Counts: map[string]int{robomaker.RobotInSync: 18, robomaker.RobotNoResponse: 1, robomaker.RobotFailed: 1},
		},
	}
	res := harness.RunSpec(t, spec)
	if !res.OK() {
		var b strings.Builder
		res.WriteTable(&b)
		t.Log("\n" + b.String())
	}
	// The faults happened at the Docker level, and the partition healed.
	// The agents' own events come through the containers' output, a moment after they happen: they are not
	// ordered against the faults' beyond cause and effect.
	g := NewWithT(t)
	g.Expect(res.Events).To(harness.ContainEvents(event.Event{Kind: event.FaultInjected, Fault: "no-response",
		Device: "robot-0005", Step: rmwire.StepDownloadingExtracting, Reason: "struck"}))
	g.Expect(res.Events).To(harness.ContainEvents(
		event.Event{Kind: event.FaultInjected, Fault: "partition", Device: "robot-0010", Reason: "struck"},
		event.Event{Kind: harness.AgentRetry, Device: "robot-0010", Step: rmwire.StepDownloadingExtracting}))
	g.Expect(res.Events).To(harness.ContainEvents(
		event.Event{Kind: event.FaultInjected, Fault: "partition", Device: "robot-0010", Reason: "struck"},
		event.Event{Kind: event.FaultRecovered, Fault: "partition", Device: "robot-0010", Reason: "healed after 2m0s"},
		event.Event{Kind: harness.AgentState, Device: "robot-0010", Step: rmwire.StepFinished}))
	g.Expect(res.Events).To(harness.ContainEvents(
		event.Event{Kind: event.FaultInjected, Fault: "script-exit", Device: "robot-0015", Step: rmwire.StepExecutingPreLaunch},
		event.Event{Kind: harness.AgentState, Device: "robot-0015", Step: "Failed", Code: "PreLaunchFileFailure"}))
}

// TestContainerCrashAtPreLaunch kills a robot's container when it reports ExecutingPreLaunch and starts it again
// on its volume half a minute later: the agent resumes the execution at the step, the robot ends in sync, and
// it runs exactly one application, of the version it reports.
func TestContainerCrashAtPreLaunch(t *testing.T) {
	env := harness.New(t, harness.WithRobots(2), inContainers(t))
	d := env.Device("robot-0002").(*container.Device)
	ctx := context.Background()
	before, err := d.Inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	env.Inject(faults.Spec{Fault: "crash", Params: []byte(`{"down":"30s"}`),
		Target: faults.Selector{Devices: []string{"robot-0002"}, Step: rmwire.StepExecutingPreLaunch}})
	j := env.WaitJob(env.Deploy(bundles.Hello, robomaker.Deployment{Timeout: 20 * time.Minute}))
	env.Expect(j).To(harness.HaveStatus(robomaker.JobSucceeded))
	env.Expect(j).To(harness.HaveRobotCounts(map[string]int{robomaker.RobotInSync: 2}))
	// The agent's own events come through the container's output, a moment after they happen: they are not
	// ordered against the fault's beyond cause and effect.
	struck := event.Event{Kind: event.FaultInjected, Fault: "crash", Device: "robot-0002",
		Step: rmwire.StepExecutingPreLaunch, Reason: "struck"}
	env.Expect(env.Events()).To(harness.ContainEvents(struck,
		event.Event{Kind: event.FaultRecovered, Fault: "crash", Device: "robot-0002", Reason: "restarted"}))
	env.Expect(env.Events()).To(harness.ContainEvents(struck,
		event.Event{Kind: harness.AgentResume, Device: "robot-0002"},
		event.Event{Kind: harness.AgentState, Device: "robot-0002", Step: rmwire.StepExecutingPreLaunch},
		event.Event{Kind: harness.AgentState, Device: "robot-0002", Step: rmwire.StepFinished}))
	// The container was really killed and started again: its start time moved, its exit was a SIGKILL's.
	after, err := d.Inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.State.StartedAt == before.State.StartedAt || !after.State.Running {
		t.Errorf("container started at %s, and at %s after the crash (running %v): not restarted",
			before.State.StartedAt, after.State.StartedAt, after.State.Running)
	}
	// Exactly one application runs, and it is the version the robot reports and its state commits.
	st, err := d.State(ctx)
	if err != nil || st.Current == nil || st.Current.JobID != j.ID || st.InFlight != nil {
		t.Fatalf("state %+v, %v: want job %s committed and nothing in flight", st, err, j.ID)
	}
	version, err := agentrobomaker.InstalledVersion(*st.Current)
	if err != nil {
		t.Fatal(err)
	}
	env.Eventually(func() (int, error) {
		_, ps, err := d.Exec(ctx, "ps", "-o", "args")
		return strings.Count(ps, "hello_robot/launch.sh"), err
	}).Should(Equal(1))
	env.Eventually(func() (string, error) {
		_, beat, err := d.Exec(ctx, "cat", container.DeviceDir+"/data/heartbeat")
		return beat, err
	}).Should(HavePrefix("version=" + version + " "))
}

// containerSmokes are the smoke tests of the faults a robot in a container can have: every one of the catalog
// but the in-process only ones, and slow-device, which only containers can do.
func containerSmokes() []smoke {
	var out []smoke
	for _, s := range smokes() {
		if !inProcOnly[s.name] {
			out = append(out, s)
		}
	}
	return append(out, smoke{name: "slow-device", fault: spec("slow-device", `{"cpus":0.05,"memoryBytes":67108864}`, on("")),
		shows: both(robotIs(robomaker.RobotInSync, ""), throttled(0.05, 64<<20))})
}

// throttled reports whether the target's container has the limits of a slow device and the kernel held it
// back for want of CPU.
func throttled(cpus float64, memory int64) check {
	return func(env *harness.Env, _ harness.Job, _ bool) bool {
		d := env.Device(target).(*container.Device)
		in, err := d.Inspect(context.Background())
		if err != nil {
			env.T().Errorf("inspect: %v", err)
			return false
		}
		if in.HostConfig.NanoCPUs != int64(cpus*1e9) || in.HostConfig.Memory != memory {
			return false
		}
		n, err := d.Throttled(context.Background())
		return err == nil && n > 0
	}
}

// TestContainerFaultSmoke runs the smoke test of every fault a robot in a container can have, on containers:
// injected, its signature shows (the container really paused, killed, disconnected, limited; its script really
// exits non-zero); not injected, it does not; recovered, a later job succeeds. Policy time runs at 120x to keep
// the timeouts the signatures wait for short.
func TestContainerFaultSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts robot containers")
	}
	backend := inContainers(t)
	for _, s := range containerSmokes() {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			if !s.run(t, false, backend, harness.WithTimeScale(120)) {
				t.Errorf("%s injected: its signature does not show", s.name)
			}
			t.Run("noop", func(t *testing.T) {
				if s.run(t, true, backend, harness.WithTimeScale(120)) {
					t.Errorf("%s not injected: its signature shows anyway", s.name)
				}
			})
		})
	}
}

// TestContainerRefusals arms on robots in containers the faults they cannot have: each is refused at arm,
// naming the container backend and the ability it lacks.
func TestContainerRefusals(t *testing.T) {
	env := harness.New(t, harness.WithRobots(1), inContainers(t))
	for _, s := range smokes() {
		if !inProcOnly[s.name] {
			continue
		}
		fault := s.fault
		fault.Target = faults.Selector{Devices: []string{"robot-0001"}}
		_, err := env.Arm(fault)
		var ue *faults.UnsupportedError
		if !errors.As(err, &ue) || ue.Backend != "container" || ue.Device != "robot-0001" {
			t.Errorf("%s on a container: %v, want it refused at arm", s.name, err)
		}
	}
}
