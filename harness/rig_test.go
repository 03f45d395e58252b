package harness_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/harness/robomaker"
	"github.com/fleetlab/fleetlab/rigs"
	"github.com/fleetlab/fleetlab/rigs/emulated"
	"github.com/fleetlab/fleetlab/rigs/righost"
	"github.com/fleetlab/fleetlab/rigs/serial"
	"github.com/fleetlab/fleetlab/rigs/serial/ser2nettest"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

const rigFile = "../fixtures/rigs/emulated-4.yaml"

// onRig is an environment on the emulated boards of file. A serial line at 115200 baud carries a deployment in
// about a second, so policy time runs 20 times faster than the wall clock here, not 600.
func onRig(t *testing.T, file *rigs.File, robots int, opts ...harness.Option) *harness.Env {
	t.Helper()
	if file == nil {
		var err error
		if file, err = rigs.Load(rigFile); err != nil {
			t.Fatal(err)
		}
	}
	return harness.New(t, append([]harness.Option{harness.WithBackend(harness.Rig{File: file, Agent: agentBinary}),
		harness.WithRobots(robots), harness.WithTimeScale(20), harness.WithWait(2 * time.Minute)}, opts...)...)
}

func board(e *harness.Env, thing string) *rigs.Board {
	return e.Fleet().(*righost.Fleet).Rig().Board(thing)
}

func TestRigCleanDeployment(t *testing.T) {
	e := onRig(t, nil, 4)
	job := e.Deploy(bundles.Hello, robomaker.Deployment{Concurrency: 100, Timeout: 10 * time.Minute})
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

// TestRigPowerCutIsNoResponse cuts robot-0002's power through its GPIO line as it starts downloading (the
// catalog's power-cut, through fleet.Crasher) and keeps it off past the robot timeout.
func TestRigPowerCutIsNoResponse(t *testing.T) {
	e := onRig(t, nil, 2)
	e.Inject(faults.Spec{Fault: "power-cut", Params: json.RawMessage(`{"duration": "1h"}`),
		Target: faults.Selector{Devices: []string{"robot-0002"}, Step: "DownloadingExtracting"}})
	job := e.Deploy(bundles.Hello, robomaker.Deployment{Concurrency: 100, Timeout: 2 * time.Minute})
	final := e.WaitJob(job)
	e.Expect(final).To(harness.HaveFailureCode("RobotDeploymentNoResponse"))
	e.Expect(final).To(harness.HaveRobot("robot-0002", harness.HaveStatus("NoResponse")))
	e.Expect(final).To(harness.HaveRobot("robot-0001", harness.HaveStatus("InSync")))
	if board(e, "robot-0002").Powered() {
		t.Error("robot-0002 has power: the cut did not happen")
	}
}

func TestRigResetDuringPreLaunchNeverLeavesAHalfInstalledRobotInSync(t *testing.T) {
	e := onRig(t, nil, 2)
	e.Inject(faults.Spec{Fault: "reset", Target: faults.Selector{Devices: []string{"robot-0001"}, Step: "ExecutingPreLaunch"}})
	job := e.Deploy(bundles.Hello, robomaker.Deployment{Concurrency: 100, Timeout: 3 * time.Minute})
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
	if b := board(e, "robot-0001").Emulated(); b.Boots() < 2 {
		t.Errorf("the board booted %d times: the reset did not happen", b.Boots())
	}
	t.Logf("robot-0001 after the reset: %s %s at %s", r.Status, r.FailureCode, r.Step)
}

// TestSerialNoiseStillDeploys changes 1 % of the bytes on robot-0001's console line, both ways, for the whole
// deployment: about one frame in two of the small ones a noisy line carries arrives damaged, and the job must
// still succeed, with the resends counted in the board's stats and in the fault's recovery event.
func TestSerialNoiseStillDeploys(t *testing.T) {
	e := onRig(t, nil, 1)
	h := e.Inject(faults.Spec{Fault: "serial-noise", Params: json.RawMessage(`{"rate": 0.01}`),
		Target: faults.Selector{Devices: []string{"robot-0001"}}})
	job := e.Deploy(bundles.Hello, robomaker.Deployment{Concurrency: 100, Timeout: 30 * time.Minute})
	final := e.WaitJob(job)
	e.Recover(h)
	e.Expect(final).To(harness.HaveStatus("Succeeded"))
	e.Expect(final).To(harness.HaveRobot("robot-0001", harness.HaveStatus("InSync")))
	b := board(e, "robot-0001")
	st := b.Stats()
	t.Logf("1%% noise: %d bytes changed; lab side: %d frames sent, %d resent (%d on a timeout), %d received, %d damaged; segment %d bytes",
		b.NoiseChanged(), st.FramesSent, st.FramesResent, st.Timeouts, st.FramesReceived, st.FramesCorrupt, st.Segment)
	if b.NoiseChanged() == 0 || st.FramesResent == 0 || st.FramesCorrupt == 0 {
		t.Errorf("noise changed %d bytes, %d frames resent, %d damaged: the fault did not happen", b.NoiseChanged(), st.FramesResent, st.FramesCorrupt)
	}
	var recovered string
	for _, ev := range e.Events().Events() {
		if ev.Kind == event.FaultRecovered && ev.Fault == "serial-noise" && ev.Device == "robot-0001" {
			recovered = ev.Reason
		}
	}
	var changed, sent, resent, damaged uint64
	if _, err := fmt.Sscanf(recovered, "%d bytes changed; lab side: %d frames sent, %d resent, %d received damaged",
		&changed, &sent, &resent, &damaged); err != nil || resent == 0 || resent > st.FramesResent {
		t.Errorf("the fault's recovery event %q does not count the resent frames (%v)", recovered, err)
	}
}

// TestRigRefusesFaultsItCannotDo: faults that need an ability a board lacks are refused when armed — those no
// board can do (freeze it, wrap its executors), and on a board without a power or reset line those that need
// one (crash, power-cut, reset) — never armed to fail when they strike.
func TestRigRefusesFaultsItCannotDo(t *testing.T) {
	f, err := rigs.Parse("no-lines.yaml", strings.NewReader(`
rig: no-lines
boards:
  - name: bare
    thing: robot-0001
    emulate: true
    expect: {bootTimeout: 20s}
`))
	if err != nil {
		t.Fatal(err)
	}
	e := onRig(t, f, 1)
	d := e.Device("robot-0001")
	if _, ok := d.(fleet.Crasher); ok {
		t.Error("a board without a power line is a fleet.Crasher")
	}
	if _, ok := d.(fleet.Resetter); ok {
		t.Error("a board without a reset line is a fleet.Resetter")
	}
	if _, ok := d.(fleet.SerialLine); !ok {
		t.Error("a board is not a fleet.SerialLine")
	}
	for _, c := range []struct{ fault, params, ability string }{
		{"no-response", "", "fleet.Freezer"},
		{"script-exit", `{"script":"pre-launch","code":3}`, "fleet.ScriptFailer"},
		{"crash", "", "fleet.Crasher"},
		{"power-cut", `{"duration":"1m"}`, "fleet.Crasher"},
		{"reset", "", "fleet.Resetter"},
	} {
		spec := faults.Spec{Fault: c.fault, Target: faults.Selector{Devices: []string{"robot-0001"}}}
		if c.fault != "script-exit" {
			spec.Target.Step = "DownloadingExtracting"
		}
		if c.params != "" {
			spec.Params = json.RawMessage(c.params)
		}
		_, err := e.Arm(spec)
		var ue *faults.UnsupportedError
		if !errors.As(err, &ue) || ue.Ability != c.ability || ue.Backend != "rig" {
			t.Errorf("%s armed on a bare board: %v, want it refused for lacking %s", c.fault, err, c.ability)
		}
	}
	// The board works all the same.
	job := e.Deploy(bundles.Hello, robomaker.Deployment{Concurrency: 100, Timeout: 10 * time.Minute})
	e.Expect(e.WaitJob(job)).To(harness.HaveStatus("Succeeded"))
}

// TestRigDeploysOverSer2net deploys to a board whose console ser2net exports as raw TCP, as a lab host exports
// the boards wired to it: the rig file names only tcp://host:port and the GPIO lines. The board is an emulated
// one whose pseudo-terminal ser2net serves; its agent's timings are those the rig backend gives at scale 20.
func TestRigDeploysOverSer2net(t *testing.T) {
	ser2nettest.Require(t)
	emu, err := emulated.New(emulated.Options{Thing: "robot-0001", Agent: agentBinary, Dir: t.TempDir(),
		AgentArgs: []string{"--poll-min", "250ms", "--poll-max", "15s", "--retry-base", "50ms", "--retry-max", "3s",
			"--request-timeout", "6s", "--stop-grace", "500ms"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	addr := ser2nettest.Export(t, emu.LabPort(), 115200, serial.TCP)
	f, err := rigs.Parse("remote.yaml", strings.NewReader(fmt.Sprintf(`
rig: remote
boards:
  - name: far-board
    thing: robot-0001
    serial: {port: "%s", baud: 115200}
    power: {chip: lab, line: power, off: 200ms}
    expect: {bootTimeout: 20s}
`, addr)))
	if err != nil {
		t.Fatal(err)
	}
	e := harness.New(t, harness.WithBackend(harness.Rig{File: f, GPIO: emu}), harness.WithRobots(1),
		harness.WithTimeScale(20), harness.WithWait(2*time.Minute))
	job := e.Deploy(bundles.Hello, robomaker.Deployment{Concurrency: 100, Timeout: 10 * time.Minute})
	e.Expect(e.WaitJob(job)).To(harness.HaveStatus("Succeeded"))
	if st := board(e, "robot-0001").Stats(); st.MessagesReceived == 0 || st.FramesCorrupt != 0 {
		t.Errorf("the line over %s: %+v", addr, st)
	}
}

// rigSmokes are the smoke tests of the faults only a rig's boards can have: a reset line, a serial line.
func rigSmokes() []smoke {
	return []smoke{
		{name: "reset", fault: spec("reset", "", on(rmwire.StepExecutingPreLaunch)),
			shows: both(rebooted, agentSaid(harness.AgentResume, target, ""))},
		{name: "serial-noise", fault: spec("serial-noise", `{"rate":0.01}`, faults.Selector{Devices: []string{target}}),
			shows: both(robotIs(robomaker.RobotInSync, ""), damagedFrames)},
		{name: "serial-unplug", fault: spec("serial-unplug", `{"for":"1h"}`, on(rmwire.StepDownloadingExtracting)),
			job: robomaker.Deployment{Timeout: 2 * time.Minute}, shows: robotIs(robomaker.RobotNoResponse, "RobotDeploymentNoResponse")},
	}
}

// rebooted reports whether the target's board booted again after the rig's health check booted it.
func rebooted(env *harness.Env, _ harness.Job, _ bool) bool {
	return board(env, target).Emulated().Boots() > 1
}

// damagedFrames reports whether frames of the target's line arrived damaged (never on a clean line) and were
// resent.
func damagedFrames(env *harness.Env, _ harness.Job, _ bool) bool {
	st := board(env, target).Stats()
	return st.FramesCorrupt > 0 && st.FramesResent > 0
}

// TestRigFaultSmoke runs the smoke test of each rig fault on the emulated boards: injected, its signature shows
// (the board really reboots, its bytes are really changed, its line really carries nothing); not injected, it
// does not; recovered, a later job succeeds.
func TestRigFaultSmoke(t *testing.T) {
	f, err := rigs.Load(rigFile)
	if err != nil {
		t.Fatal(err)
	}
	backend := []harness.Option{harness.WithBackend(harness.Rig{File: f, Agent: agentBinary}), harness.WithTimeScale(20),
		harness.WithWait(2 * time.Minute)}
	for _, s := range rigSmokes() {
		t.Run(s.name, func(t *testing.T) {
			if !s.run(t, false, backend...) {
				t.Errorf("%s injected: its signature does not show", s.name)
			}
			t.Run("noop", func(t *testing.T) {
				if s.run(t, true, backend...) {
					t.Errorf("%s not injected: its signature shows anyway", s.name)
				}
			})
		})
	}
}
