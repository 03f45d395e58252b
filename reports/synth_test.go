package reports_test

import (
	"fmt"
	"time"

	"github.com/fleetlab/fleetlab/sim/event"
)

// The RoboMaker steps an agent goes through.
var steps = []string{"Validating", "DownloadingExtracting", "ExecutingDownloadCondition", "ExecutingPreLaunch",
	"Launching", "ExecutingPostLaunch", "Finished"}

// synthRun is a deterministic run of one scenario: a deployment to devices robots, released two at a time,
// where every device in fail fails its pre-launch script, hung never answers and times out, and the others
// succeed; a fault is armed, injected and recovered for each failing device, and one board prints console lines.
type synthRun struct {
	scenario, deployment string
	devices              int
	fail                 map[int]bool
	hung                 int // -1: none
	start                time.Time
}

func (s synthRun) device(i int) string { return fmt.Sprintf("robot-%04d", i+1) }

// events returns the run's events in the order the sources would emit them.
func (s synthRun) events() []event.Event {
	var out []event.Event
	t := s.start
	at := func(d time.Duration) time.Time { return t.Add(d) }
	emit := func(e event.Event) {
		if e.Scenario == "" {
			e.Scenario = s.scenario
		}
		out = append(out, e)
	}
	emit(event.Event{Kind: event.ScenarioStarted, Time: at(0), Reason: "a synthetic rollout",
		Attrs: map[string]string{"seed": "42", "backend": "inproc"}})
	for i := range s.devices {
		if s.fail[i] {
			emit(event.Event{Kind: event.FaultArmed, Time: at(0), Fault: "script-exit", Reason: "targets " + s.device(i)})
		}
	}
	emit(event.Event{Kind: event.DeploymentCreated, Time: at(time.Millisecond), Dialect: "robomaker",
		Deployment: s.deployment, To: "Pending"})
	emit(event.Event{Kind: event.DeploymentState, Time: at(2 * time.Millisecond), Dialect: "robomaker",
		Deployment: s.deployment, From: "Pending", To: "InProgress"})
	failed := 0
	for i := range s.devices {
		dev := s.device(i)
		base := time.Duration(i/2) * 700 * time.Millisecond
		x := func(kind event.Kind, d time.Duration, e event.Event) {
			e.Kind, e.Time, e.Device, e.Deployment, e.Dialect = kind, at(base+d), dev, s.deployment, "robomaker"
			emit(e)
		}
		x(event.ExecutionReleased, 3*time.Millisecond, event.Event{To: "QUEUED"})
		x(event.ExecutionState, 10*time.Millisecond, event.Event{From: "QUEUED", To: "IN_PROGRESS", Step: "Validating"})
		if i == s.hung {
			x(event.ExecutionStep, 20*time.Millisecond, event.Event{Step: "DownloadingExtracting"})
			x(event.ExecutionState, 5*time.Second, event.Event{From: "IN_PROGRESS", To: "TIMED_OUT",
				Step: "DownloadingExtracting", Reason: "timeout"})
			failed++
			continue
		}
		for j, st := range steps {
			if s.fail[i] && st == "ExecutingPreLaunch" {
				x(event.ExecutionStep, time.Duration(j+1)*80*time.Millisecond, event.Event{Step: st})
				emit(event.Event{Kind: event.FaultInjected, Time: at(base + time.Duration(j+1)*85*time.Millisecond),
					Fault: "script-exit", Device: dev, Step: st, Reason: "pre_launch.sh exits 3"})
				x(harnessAgentState, time.Duration(j+1)*90*time.Millisecond, event.Event{Step: "Failed",
					Code: "PreLaunchFileFailure", Reason: "pre-launch file pre_launch.sh: exit status 3"})
				x(event.ExecutionState, time.Duration(j+1)*95*time.Millisecond, event.Event{From: "IN_PROGRESS",
					To: "FAILED", Step: st, Code: "PreLaunchFileFailure", Reason: "exit status 3"})
				emit(event.Event{Kind: event.FaultRecovered, Time: at(base + time.Duration(j+1)*99*time.Millisecond),
					Fault: "script-exit", Device: dev, Reason: "recovered"})
				failed++
				break
			}
			x(event.ExecutionStep, time.Duration(j+1)*80*time.Millisecond, event.Event{Step: st, Percent: float64(j * 15)})
			if st == "Finished" {
				x(event.ExecutionState, time.Duration(j+1)*81*time.Millisecond, event.Event{From: "IN_PROGRESS",
					To: "SUCCEEDED", Step: st})
			}
		}
		if i == 0 {
			for k := range 3 {
				emit(event.Event{Kind: event.ConsoleLine, Time: at(base + time.Duration(k)*100*time.Millisecond),
					Device: dev, Reason: fmt.Sprintf("[    %d.000] boot: line %d <ok>", k, k)})
			}
		}
	}
	end := at(time.Duration(s.devices/2)*700*time.Millisecond + 6*time.Second)
	status, outcome, detail := "Succeeded", event.OutcomePassed, ""
	if failed > 0 {
		status, outcome = "Failed", event.OutcomeFailed
		detail = fmt.Sprintf("job %s is Failed, want Succeeded", s.deployment)
	}
	emit(event.Event{Kind: event.DeploymentState, Time: end, Dialect: "robomaker", Deployment: s.deployment,
		From: "InProgress", To: status})
	emit(event.Event{Kind: event.Metric, Time: end, Metric: "devices_per_second", Value: float64(s.devices) / 6})
	emit(event.Event{Kind: event.ScenarioEnded, Time: end, Deployment: s.deployment, Code: outcome, Reason: detail})
	return out
}

// harnessAgentState is the harness's kind for an agent entering a state (harness.AgentState); reports pass
// kinds they do not know through.
const harnessAgentState event.Kind = "agent.state"

// fakeWall is a wall clock that advances a millisecond at every reading, for reproducible records.
type fakeWall struct{ t time.Time }

func (w *fakeWall) Now() time.Time {
	w.t = w.t.Add(time.Millisecond)
	return w.t
}
