package harness_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/harness/robomaker"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet/link"
)

// target is the robot the smoke tests aim device faults at; the other robot of the fleet is left alone.
const target = "robot-0001"

// smoke is one fault's smoke test: the run with the fault injected must show its signature, the same run
// without it (the no-op run) must not, and after Recover a later job must succeed on every robot.
type smoke struct {
	name  string
	fault faults.Spec
	job   robomaker.Deployment
	// start starts the job (default: Deploy of the hello bundle); it returns the job's ARN and, for faults
	// whose signature is an answer to the caller, whether the answer showed the fault.
	start func(env *harness.Env, d robomaker.Deployment) (job string, answered bool)
	// shows reports whether the settled job and the run's events show the fault.
	shows check
}

// check looks for a fault's signature in a run: its settled job, its events, the caller's answer.
type check func(env *harness.Env, j harness.Job, answered bool) bool

func spec(fault, params string, sel faults.Selector) faults.Spec {
	return faults.Spec{Fault: fault, Params: json.RawMessage(params), Target: sel}
}

func on(step string) faults.Selector { return faults.Selector{Devices: []string{target}, Step: step} }

// robotIs reports whether the target robot ended in status with code.
func robotIs(status, code string) check {
	return func(_ *harness.Env, j harness.Job, _ bool) bool {
		r, ok := j.Robot(target)
		return ok && r.Status == status && r.FailureCode == code
	}
}

// agentSaid reports whether the target's agent (any robot's, when device is "") emitted kind with reason
// containing text.
func agentSaid(kind event.Kind, device, text string) check {
	return func(env *harness.Env, _ harness.Job, _ bool) bool {
		for _, e := range env.Events().Events() {
			if e.Kind == kind && (device == "" || e.Device == device) && strings.Contains(e.Reason, text) {
				return true
			}
		}
		return false
	}
}

// both requires two signatures.
func both(a, b check) check {
	return func(env *harness.Env, j harness.Job, ans bool) bool { return a(env, j, ans) && b(env, j, ans) }
}

// answeredWith starts the job once and reports whether CreateDeploymentJob failed with code; it then starts
// it again, as a caller would retry, so the run still has a job.
func answeredWith(code string) func(env *harness.Env, d robomaker.Deployment) (string, bool) {
	return func(env *harness.Env, d robomaker.Deployment) (string, bool) {
		app := robomaker.Of(env).CreateApplication(bundles.Hello)
		job, err := robomaker.Of(env).StartJob(app, d)
		var ae smithy.APIError
		answered := errors.As(err, &ae) && ae.ErrorCode() == code
		if err != nil {
			if job, err = robomaker.Of(env).StartJob(app, d); err != nil {
				env.T().Fatalf("retried CreateDeploymentJob: %v", err)
			}
		}
		return job, answered
	}
}

// answer reports whether the caller's answer showed the fault.
func answer(_ *harness.Env, _ harness.Job, answered bool) bool { return answered }

// dropped reports whether the target's link dropped requests.
func dropped(env *harness.Env, _ harness.Job, _ bool) bool {
	_, n := env.Device(target).(interface{ Link() *link.Shaper }).Link().Counts()
	return n > 0
}

// skewed reports whether the target's agent stamped its events a day ahead of the service.
func skewed(env *harness.Env, _ harness.Job, _ bool) bool {
	var service, agent time.Time
	for _, e := range env.Events().Events() {
		switch {
		case e.Device == target && e.Kind == event.ExecutionStep && service.IsZero():
			service = e.Time
		case e.Device == target && e.Kind == harness.AgentState && agent.IsZero():
			agent = e.Time
		}
	}
	return !service.IsZero() && !agent.IsZero() && agent.Sub(service) > 23*time.Hour
}

func smokes() []smoke {
	timeout := robomaker.Deployment{Timeout: 10 * time.Minute}
	return []smoke{
		{name: "no-response", fault: spec("no-response", "", on(rmwire.StepLaunching)), job: timeout,
			shows: robotIs(robomaker.RobotNoResponse, "RobotDeploymentNoResponse")},
		{name: "crash", fault: spec("crash", `{"down":"30s"}`, on(rmwire.StepDownloadingExtracting)),
			shows: both(robotIs(robomaker.RobotInSync, ""), agentSaid(harness.AgentResume, target, ""))},
		{name: "power-cut", fault: spec("power-cut", `{"duration":"2m"}`, on(rmwire.StepExecutingPreLaunch)),
			shows: both(robotIs(robomaker.RobotInSync, ""), poweredOff(2*time.Minute))},
		{name: "script-exit-download-condition", fault: spec("script-exit", `{"script":"download-condition"}`, on("")),
			job:   robomaker.Deployment{DownloadCondition: bundles.ConditionOK},
			shows: robotIs(robomaker.RobotFailed, "DownloadConditionFailed")},
		{name: "script-exit-pre-launch", fault: spec("script-exit", `{"script":"pre-launch","code":3}`, on("")),
			shows: robotIs(robomaker.RobotFailed, "PreLaunchFileFailure")},
		{name: "script-exit-post-launch", fault: spec("script-exit", `{"script":"post-launch","code":4}`, on("")),
			shows: robotIs(robomaker.RobotFailed, "PostLaunchFileFailure")},
		// The pre-launch file has no timeout of its own: held 30 minutes, it outlasts the robot's ten.
		{name: "slow-script", fault: spec("slow-script", `{"script":"pre-launch","delay":"30m"}`, on("")), job: timeout,
			shows: robotIs(robomaker.RobotNoResponse, "RobotDeploymentNoResponse")},
		{name: "slow-step", fault: spec("slow-step", `{"delay":"30m"}`, on(rmwire.StepLaunching)), job: timeout,
			shows: robotIs(robomaker.RobotNoResponse, "RobotDeploymentNoResponse")},
		{name: "disk-full-download", fault: spec("disk-full", "", on("")),
			shows: robotIs(robomaker.RobotFailed, "EnvironmentSetupError")},
		{name: "disk-full-extract", fault: spec("disk-full", `{"during":"extract"}`, on("")),
			shows: robotIs(robomaker.RobotFailed, "ExtractingBundleFailure")},
		{name: "clock-skew", fault: spec("clock-skew", `{"skew":"24h"}`, on("")),
			shows: both(robotIs(robomaker.RobotInSync, ""), skewed)},
		{name: "partition", fault: spec("partition", `{"duration":"1h"}`, on(rmwire.StepDownloadingExtracting)), job: timeout,
			shows: robotIs(robomaker.RobotNoResponse, "RobotDeploymentNoResponse")},
		{name: "latency", fault: spec("latency", `{"latency":"20m"}`, on(rmwire.StepDownloadingExtracting)), job: timeout,
			shows: robotIs(robomaker.RobotNoResponse, "RobotDeploymentNoResponse")},
		{name: "drop", fault: spec("drop", `{"rate":0.5}`, on("")),
			shows: both(robotIs(robomaker.RobotInSync, ""), dropped)},
		// The hello bundle is 694 bytes: at 1 B/s its download outlasts a ten-minute timeout.
		{name: "bandwidth", fault: spec("bandwidth", `{"bytesPerSecond":1}`, on("")), job: timeout,
			shows: robotIs(robomaker.RobotNoResponse, "RobotDeploymentNoResponse")},
		{name: "etag-mismatch", fault: spec("etag-mismatch", `{"key":"hello.tar.gz"}`, faults.Selector{}),
			shows: robotIs(robomaker.RobotFailed, "EtagMismatch")},
		{name: "missing-object", fault: spec("missing-object", `{"key":"hello.tar.gz"}`, faults.Selector{}),
			shows: robotIs(robomaker.RobotFailed, "ResourceNotFound")},
		{name: "http-5xx-robomaker", fault: spec("http-5xx", `{"operation":"CreateDeploymentJob","times":1}`, faults.Selector{}),
			start: answeredWith("InternalServerException"),
			shows: answer},
		{name: "http-5xx-device", fault: spec("http-5xx", `{"api":"device","operation":"UpdateJobExecution","times":2}`,
			faults.Selector{Devices: []string{target}}),
			shows: both(robotIs(robomaker.RobotInSync, ""), agentSaid(harness.AgentRetry, target, wire.ErrServiceUnavailable))},
		{name: "throttle-robomaker", fault: spec("throttle", `{"operation":"CreateDeploymentJob","times":1}`, faults.Selector{}),
			start: answeredWith("ThrottlingException"),
			shows: answer},
		{name: "throttle-artifacts", fault: spec("throttle", `{"api":"artifacts","operation":"GetObject","times":2}`, faults.Selector{}),
			shows: both(robotIs(robomaker.RobotInSync, ""), agentSaid(harness.AgentRetry, "", "(503)"))},
		{name: "service-restart", fault: spec("service-restart", "", faults.Selector{}),
			shows: both(robotIs(robomaker.RobotInSync, ""), agentSaid(harness.AgentDisconnected, target, ""))},
	}
}

// inProcOnly are the smoke tests of faults a robot in a container cannot have: they wrap the agent's
// executors or skew its clock, and the agent runs out of reach. TestContainerRefusals holds the container
// backend to refusing them.
var inProcOnly = map[string]bool{"script-exit-download-condition": true, "disk-full-download": true,
	"disk-full-extract": true, "clock-skew": true, "slow-script": true}

// poweredOff reports whether the target went down and was restarted at least d later, resuming its execution.
func poweredOff(d time.Duration) check {
	return func(env *harness.Env, _ harness.Job, _ bool) bool {
		var down time.Time
		for _, e := range env.Events().Events() {
			switch {
			case e.Device != target:
			case e.Kind == event.FaultInjected && e.Reason == "struck":
				down = e.Time
			case e.Kind == event.FaultRecovered && e.Reason == "restarted" && !down.IsZero():
				return e.Time.Sub(down) >= d && agentSaid(harness.AgentResume, target, "")(env, harness.Job{}, false)
			}
		}
		return false
	}
}

// run starts an environment, injects the fault unless noop, runs the job to its end and says whether the
// fault shows; with the fault injected it then recovers it and deploys again. opts are more environment
// options (the backend).
func (s smoke) run(t *testing.T, noop bool, opts ...harness.Option) (shown bool) {
	env := harness.New(t, append([]harness.Option{harness.WithRobots(2)}, opts...)...)
	var h *faults.Handle
	if !noop {
		h = env.Inject(s.fault)
	}
	start := s.start
	if start == nil {
		start = func(env *harness.Env, d robomaker.Deployment) (string, bool) {
			return env.Deploy(bundles.Hello, d), false
		}
	}
	job, answered := start(env, s.job)
	j := env.WaitJob(job)
	shown = s.shows(env, j, answered)
	if noop {
		if j.Status != robomaker.JobSucceeded {
			t.Errorf("no-op run: %s, want every robot in sync\n%s", j, harness.Timeline(j.Timeline))
		}
		return shown
	}
	if h.State() == faults.StateInjected {
		env.Recover(h)
	}
	again := env.WaitJob(env.Deploy(bundles.Hello, robomaker.Deployment{}))
	env.Expect(again).To(harness.HaveStatus(robomaker.JobSucceeded), "a job after Recover")
	env.Expect(again).To(harness.HaveRobot(target, harness.HaveStatus(robomaker.RobotInSync)))
	if !shown {
		t.Logf("injected run: %s\n%s", j, harness.Timeline(j.Timeline))
	}
	return shown
}

// TestFaultSmoke runs every fault of the catalog three ways: injected (its signature appears), not injected
// (it does not), and recovered (a later job succeeds on the device it struck).
func TestFaultSmoke(t *testing.T) {
	covered := map[string]bool{}
	for _, s := range smokes() {
		covered[s.fault.Fault] = true
		t.Run(s.name, func(t *testing.T) {
			if !s.run(t, false) {
				t.Errorf("%s injected: its signature does not show", s.name)
			}
			t.Run("noop", func(t *testing.T) {
				if s.run(t, true) {
					t.Errorf("%s not injected: its signature shows anyway", s.name)
				}
			})
		})
	}
	for _, s := range append(containerSmokes(), rigSmokes()...) {
		covered[s.fault.Fault] = true
	}
	for _, d := range faults.Catalog().Definitions() {
		if !covered[d.Name] {
			t.Errorf("fault %s has no smoke test", d.Name)
		}
	}
}
