package greengrassv2_test

import (
	"encoding/json"

	"github.com/aws/aws-sdk-go-v2/aws"
	"strings"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/harness/faults"
	ggh "github.com/fleetlab/fleetlab/harness/greengrassv2"
	agentgg "github.com/fleetlab/fleetlab/sim/agent/greengrassv2"
	"github.com/fleetlab/fleetlab/sim/event"
)

func newEnv(t *testing.T, robots int) *harness.Env {
	return harness.New(t, harness.WithDialect(ggh.Name), harness.WithRobots(robots))
}

// TestDeploy deploys the default component to the group: every core device succeeds, runs it, and the
// harness's verification of the job finds nothing wrong.
func TestDeploy(t *testing.T) {
	env := newEnv(t, 3)
	job := env.Deploy(bundles.Hello, ggh.Deployment{})
	j := env.WaitJob(job)
	if j.Status != ggh.JobActive {
		t.Fatalf("status %s, want ACTIVE (a thing group's deployment is continuous)", j.Status)
	}
	for _, r := range j.Robots {
		if r.Status != ggh.RobotSucceeded || r.Step != agentgg.StepFinished || r.FailureCode != "" {
			t.Errorf("%s, want SUCCEEDED@Finished", r)
		}
		set, err := ggh.Of(env).OnDevice(r.Name)
		if err != nil {
			t.Fatal(err)
		}
		if set.Job != j.ID || set.Components[ggh.DefaultComponent] != "1.0.0" {
			t.Errorf("%s runs %+v", r.Name, set)
		}
	}
	if fails := ggh.Of(env).Check(j); len(fails) > 0 {
		t.Errorf("verify: %q", fails)
	}
	// No rollout config: every device is released at once, at the deployment's creation.
	var released []time.Time
	for _, e := range env.Events().Events() {
		if e.Deployment == j.ID && e.Kind == event.ExecutionReleased && harness.Source(e) == harness.SourceEngine {
			released = append(released, e.Time)
		}
	}
	if len(released) != 3 || !released[0].Equal(released[2]) {
		t.Errorf("releases at %v, want all three at once", released)
	}
	core, err := ggh.Of(env).CoreDevice("robot-0001")
	if err != nil {
		t.Fatal(err)
	}
	if string(core.Status) != "HEALTHY" || aws.ToString(core.Platform) != "linux" || aws.ToString(core.Architecture) != "amd64" {
		t.Errorf("core device %s, platform %q, architecture %q; want HEALTHY linux amd64", core.Status,
			aws.ToString(core.Platform), aws.ToString(core.Architecture))
	}
}

// TestVerifyRefusesFalseReports hands the verification a job that says more than the devices do: a device
// reported SUCCEEDED that rolled back, and one reported FAILED that runs the set. Both are product failures.
func TestVerifyRefusesFalseReports(t *testing.T) {
	env := newEnv(t, 3)
	env.Inject(faults.Spec{Fault: "script-exit", Params: json.RawMessage(`{"script":"install","code":3}`),
		Target: faults.Selector{Devices: []string{"robot-0002"}}})
	j := env.WaitJob(env.Deploy(bundles.Hello, ggh.Deployment{}))
	if r, _ := j.Robot("robot-0002"); r.Status != ggh.RobotFailed || r.FailureCode != agentgg.CodeComponentBroken {
		t.Fatalf("robot-0002 %s, want FAILED/COMPONENT_BROKEN", r)
	}
	if fails := ggh.Of(env).Check(j); len(fails) > 0 {
		t.Fatalf("verify of the true job: %q", fails)
	}
	lie := j
	lie.Robots = append([]dialect.Robot(nil), j.Robots...)
	for i := range lie.Robots {
		switch lie.Robots[i].Name {
		case "robot-0002":
			lie.Robots[i].Status = ggh.RobotSucceeded
		}
	}
	fails := ggh.Of(env).Check(lie)
	if len(fails) == 0 || !strings.Contains(strings.Join(fails, "\n"), "robot-0002 is SUCCEEDED but runs") {
		t.Errorf("verify of a device reported good that rolled back: %q", fails)
	}
}

// TestCheckJob: the dialect's job checks and options, as ReadSpec reports them.
func TestCheckJob(t *testing.T) {
	for _, tt := range []struct{ job, want string }{
		{`{"concurrency": 10}`, "has no concurrency"},
		{`{"downloadCondition": "condition-ok.sh"}`, "no download condition"},
		{`{"timeout": "90s"}`, "whole minutes"},
		{`{"options": {"failureHandling": "ROLL"}}`, "options: failureHandling \"ROLL\""},
		{`{"options": {"rollout": {"baseRatePerMinute": 2}}}`, "exactly one of notifiedThings"},
		{`{"options": {"components": [{"name": "a", "version": "one"}]}}`, "\"one\" is not"},
		{`{"options": {"components": [{"name": "a", "depends": {"b": ">>1"}}]}}`, "requirement \">>1\""},
		{`{"options": {"abort": [{"failureType": "SOME", "threshold": 5}]}}`, "failureType \"SOME\""},
		{`{"options": {"colour": "blue"}}`, "colour"},
	} {
		spec := `{"name": "x", "dialect": "greengrassv2", "job": ` + tt.job + `, "expect": {"status": "ACTIVE", "others": {"status": "SUCCEEDED"}}}`
		_, err := harness.ReadSpec(strings.NewReader(spec))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("job %s: %v, want an error saying %s", tt.job, err, tt.want)
		}
	}
	ok := `{"name": "x", "dialect": "greengrassv2", "job": {"timeout": "10m", "failureThreshold": 20, "options": {"rollout": {"maximumPerMinute": 5}}}, "expect": {"status": "ACTIVE", "others": {"status": "SUCCEEDED"}}}`
	s, err := harness.ReadSpec(strings.NewReader(ok))
	if err != nil {
		t.Fatal(err)
	}
	d := ggh.Driver{}.Config(s.Job).(ggh.Deployment)
	if d.InProgressTimeout.D() != 10*time.Minute || len(d.Abort) != 1 || d.Abort[0].Threshold != 20 || d.Rollout.MaximumPerMinute != 5 {
		t.Errorf("config %+v", d)
	}
}

// TestResolveThroughTheLink cuts a device's link as it enters Downloading, where it resolves its components
// with the cloud: the resolve call meets the cut and is retried until the link heals.
func TestResolveThroughTheLink(t *testing.T) {
	env := newEnv(t, 2)
	env.Inject(faults.Spec{Fault: "partition", Params: json.RawMessage(`{"duration":"3m"}`),
		Target: faults.Selector{Devices: []string{"robot-0001"}, Step: agentgg.StepDownloading}})
	j := env.WaitJob(env.Deploy(bundles.Hello, ggh.Deployment{}))
	if j.Counts()[ggh.RobotSucceeded] != 2 {
		t.Fatalf("%s", j)
	}
	retries := harness.Filter(env.Events().Events(), func(e event.Event) bool {
		return e.Device == "robot-0001" && e.Kind == harness.AgentRetry && e.Step == agentgg.StepDownloading
	})
	if len(retries) == 0 {
		t.Fatalf("robot-0001 never retried in Downloading: its resolve call did not meet the cut link\n%s",
			harness.Timeline(j.Timeline))
	}
}

// TestResolveRetriedThrough5xx: a 500 to ResolveComponentCandidates is a cloud hiccup the core device retries,
// not a failure of the deployment.
func TestResolveRetriedThrough5xx(t *testing.T) {
	env := newEnv(t, 1)
	env.Inject(faults.Spec{Fault: "http-5xx", Params: json.RawMessage(`{"api":"greengrassv2","operation":"ResolveComponentCandidates","times":2}`)})
	j := env.WaitJob(env.Deploy(bundles.Hello, ggh.Deployment{}))
	if j.Counts()[ggh.RobotSucceeded] != 1 {
		t.Fatalf("%s", j)
	}
	struck := harness.Filter(env.Events().Events(), func(e event.Event) bool {
		return e.Fault == "http-5xx" && e.Kind == event.FaultInjected
	})
	retries := harness.Filter(env.Events().Events(), func(e event.Event) bool {
		return e.Device == "robot-0001" && e.Kind == harness.AgentRetry && e.Step == agentgg.StepDownloading
	})
	if len(struck) == 0 || len(retries) < 2 {
		t.Fatalf("the fault struck %d times, the device retried %d times in Downloading\n%s", len(struck),
			len(retries), harness.Timeline(j.Timeline))
	}
}
