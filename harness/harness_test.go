package harness_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onsi/gomega"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/harness/robomaker"
	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/event"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// job is a settled job for the matcher tests.
func job() harness.Job {
	tl := []event.Event{
		{Kind: event.DeploymentCreated, Deployment: "d1"},
		{Kind: event.ExecutionReleased, Deployment: "d1", Device: "r1", To: "QUEUED"},
		{Kind: harness.AgentState, Deployment: "d1", Device: "r1", Step: "Validating"},
		{Kind: event.FaultInjected, Fault: "crash", Device: "r1", Reason: "struck"},
		{Kind: event.ExecutionState, Deployment: "d1", Device: "r1", From: "IN_PROGRESS", To: "FAILED", Code: "PreLaunchFileFailure"},
		{Kind: event.DeploymentState, Deployment: "d1", From: "InProgress", To: "Failed"},
	}
	return harness.Job{ID: "d1", Status: "Failed", FailureCode: "PreLaunchFileFailure", Timeline: tl,
		Robots: []harness.Robot{
			{Name: "r1", Status: "Failed", FailureCode: "PreLaunchFileFailure", Step: "ExecutingPreLaunch", Timeline: tl},
			{Name: "r2", Status: "InSync", Step: "Finished"},
		}}
}

func TestMatchers(t *testing.T) {
	j := job()
	r1, _ := j.Robot("r1")
	for _, tc := range []struct {
		name    string
		m       interface{ Match(any) (bool, error) }
		actual  any
		matches bool
	}{
		{"job status", harness.HaveStatus("Failed"), j, true},
		{"job status pointer", harness.HaveStatus("Failed"), &j, true},
		{"job status wrong", harness.HaveStatus("Succeeded"), j, false},
		{"job code", harness.HaveFailureCode("PreLaunchFileFailure"), j, true},
		{"robot code", harness.HaveFailureCode("PreLaunchFileFailure"), r1, true},
		{"robot step", harness.HaveStep("ExecutingPreLaunch"), r1, true},
		{"robot in job", harness.HaveRobot("r2", harness.HaveStatus("InSync")), j, true},
		{"robot not in job", harness.HaveRobot("r9", harness.HaveStatus("InSync")), j, false},
		{"counts", harness.HaveRobotCounts(map[string]int{"Failed": 1, "InSync": 1}), j, true},
		{"counts missing a status", harness.HaveRobotCounts(map[string]int{"Failed": 1}), j, false},
		{"counts with a zero", harness.HaveRobotCounts(map[string]int{"Failed": 1, "InSync": 1, "NoResponse": 0}), j, true},
		{"events in order", harness.ContainEvents(
			event.Event{Kind: harness.AgentState, Step: "Validating"},
			event.Event{Fault: "crash"},
			event.Event{Kind: event.DeploymentState, To: "Failed"}), j, true},
		{"events out of order", harness.ContainEvents(
			event.Event{Kind: event.DeploymentState, To: "Failed"},
			event.Event{Kind: harness.AgentState}), j, false},
		{"events by reason substring", harness.ContainEvents(event.Event{Reason: "stru"}), j.Timeline, true},
		{"events of a robot", harness.ContainEvents(event.Event{Code: "PreLaunchFileFailure"}), r1, true},
	} {
		got, err := tc.m.Match(tc.actual)
		if err != nil || got != tc.matches {
			t.Errorf("%s: %v %v, want %v", tc.name, got, err, tc.matches)
		}
	}
	if _, err := harness.HaveStep("Finished").Match(j); err == nil {
		t.Error("HaveStep matched a Job; it takes a Robot")
	}
	m := harness.HaveStatus("Succeeded")
	m.Match(j)
	msg := m.FailureMessage(j)
	for _, want := range []string{`expected status "Succeeded", got "Failed"`, "timeline:", "fault=crash", "IN_PROGRESS→FAILED"} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure message lacks %q:\n%s", want, msg)
		}
	}
	ev := harness.ContainEvents(event.Event{Kind: harness.AgentState}, event.Event{Kind: harness.AgentResume})
	ev.Match(j)
	if msg := ev.FailureMessage(j); !strings.Contains(msg, "found the first 1") || !strings.Contains(msg, "kind=agent.resume") {
		t.Errorf("events failure message:\n%s", msg)
	}
}

// TestMatchersWithEventually polls a function returning the state, as scenarios do.
func TestMatchersWithEventually(t *testing.T) {
	calls := 0
	state := func() (harness.Job, error) {
		calls++
		j := job()
		if calls < 3 {
			j.Status = "InProgress"
		}
		return j, nil
	}
	g := gomega.NewWithT(t)
	g.Eventually(state).WithTimeout(5 * time.Second).WithPolling(time.Millisecond).Should(harness.HaveStatus("Failed"))
	if calls < 3 {
		t.Fatalf("matched after %d calls", calls)
	}
}

func TestStreamNumbersEachSource(t *testing.T) {
	// The sink is called from the service's and the agents' goroutines, and goes on after WaitJob returns.
	var mu sync.Mutex
	var sunk []event.Event
	env := harness.New(t, harness.WithRobots(1), harness.WithSink(event.SinkFunc(func(e event.Event) {
		mu.Lock()
		defer mu.Unlock()
		sunk = append(sunk, e)
	})))
	env.WaitJob(env.Deploy(bundles.Hello, robomaker.Deployment{}))
	evs := env.Events().Events()
	next := map[string]uint64{}
	sources := map[string]bool{}
	for _, e := range evs {
		src := harness.Source(e)
		sources[src] = true
		next[src]++
		if e.Seq != next[src] {
			t.Fatalf("%s event %d has seq %d, want %d", src, next[src], e.Seq, next[src])
		}
	}
	for _, src := range []string{harness.SourceEngine, harness.SourceAgent + "robot-0001", harness.SourceHarness} {
		if !sources[src] {
			t.Errorf("no event from %s", src)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sunk) < len(evs) {
		t.Errorf("the sink got %d events, the stream has %d", len(sunk), len(evs))
	}
}

// TestRecorder classifies how a scenario run outside go test ends.
func TestRecorder(t *testing.T) {
	var order []string
	err := harness.NewRecorder("ok", nil).Run(func(t harness.T) {
		t.Cleanup(func() { order = append(order, "first") })
		t.Cleanup(func() { order = append(order, "second") })
	})
	if err != nil || strings.Join(order, ",") != "second,first" {
		t.Fatalf("clean run: %v, cleanups %v", err, order)
	}
	reached := false
	err = harness.NewRecorder("fatal", nil).Run(func(t harness.T) {
		t.Fatalf("job is %s", "Failed")
		reached = true
	})
	var infra *harness.InfraError
	if err == nil || errors.As(err, &infra) || !strings.Contains(err.Error(), "job is Failed") || reached {
		t.Fatalf("product failure: %v (reached after Fatalf: %v)", err, reached)
	}
	err = harness.NewRecorder("infra", nil).Run(func(t harness.T) {
		harness.New(t, harness.WithBackend(brokenBackend{}))
	})
	if !errors.As(err, &infra) || !strings.Contains(err.Error(), "no robots today") {
		t.Fatalf("environment failure: %v, want an InfraError", err)
	}
}

func TestSpecValidation(t *testing.T) {
	_, err := harness.ReadSpec(strings.NewReader(`{"name":"x","job":{"bundel":"hello"},"expect":{"status":"Succeeded"}}`))
	if err == nil || !strings.Contains(err.Error(), "bundel") {
		t.Fatalf("unknown member: %v", err)
	}
	bad := harness.Spec{Name: "two words", Fleet: harness.FleetSpec{Robots: -1},
		Job:    harness.JobSpec{Bundle: "nope", Timeout: faults.Duration(time.Second), Concurrency: 101},
		Faults: []faults.Spec{{Fault: "meteor"}},
		Expect: harness.Expect{Status: "Done", Others: &harness.RobotExpect{Status: "Happy"}}}
	err = bad.Validate()
	for _, want := range []string{"name", "robots -1", `bundle "nope"`, "minimum of one minute", "concurrency 101",
		"unknown fault", `status "Done"`, `status "Happy"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validation lacks %q: %v", want, err)
		}
	}
	if err := (harness.Spec{Name: "x", Expect: harness.Expect{Status: "Succeeded"}}).Validate(); err == nil ||
		!strings.Contains(err.Error(), "no robot expectation") {
		t.Errorf("a spec without robot expectations: %v", err)
	}
	r := harness.NewRegistry()
	ok := harness.Spec{Name: "x", Expect: harness.Expect{Status: "Succeeded", Others: &harness.RobotExpect{Status: "InSync"}}}
	if err := r.Add(ok); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(ok); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("duplicate scenario: %v", err)
	}
	specs, err := harness.ReadSpecs(os.DirFS("../fixtures/scenarios"), ".")
	if err != nil || len(specs) == 0 {
		t.Fatalf("fixtures/scenarios: %d specs, %v", len(specs), err)
	}
}

// TestExecute runs a data-only spec outside go test: met, then with an expectation the product does not meet.
func TestExecute(t *testing.T) {
	spec := harness.Spec{Name: "prelaunch", Fleet: harness.FleetSpec{Robots: 2},
		Job:    harness.JobSpec{Bundle: bundles.PreLaunchExit3},
		Expect: harness.Expect{Status: robomaker.JobFailed, FailureCode: "PreLaunchFileFailure", Others: &harness.RobotExpect{Status: robomaker.RobotFailed, FailureCode: "PreLaunchFileFailure"}}}
	res, err := harness.Execute(spec, nil, "")
	if err != nil || !res.OK() || len(res.Rows) != 2 {
		t.Fatalf("met expectation: %v, %+v", err, res)
	}
	spec.Expect.Others = &harness.RobotExpect{Status: robomaker.RobotInSync}
	res, err = harness.Execute(spec, nil, "fleetlab run prelaunch.json")
	var infra *harness.InfraError
	if err == nil || errors.As(err, &infra) || res.OK() {
		t.Fatalf("unmet expectation: %v, ok %v", err, res.OK())
	}
	var table strings.Builder
	res.WriteTable(&table)
	for _, want := range []string{"ROBOT", "robot-0001  Failed  PreLaunchFileFailure", "FAIL: status Failed, want InSync"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

// TestRefusedAtArm: what the backend or the environment cannot do is refused when armed, saying why.
func TestRefusedAtArm(t *testing.T) {
	env := harness.New(t, harness.WithRobots(1), harness.WithMemoryStore(), harness.WithBackend(harness.InProc{Transport: harness.InMemory}))
	for _, tc := range []struct {
		spec faults.Spec
		want string
	}{
		{faults.Spec{Fault: "service-restart"}, "WithMemoryStore"},
		{faults.Spec{Fault: "etag-mismatch"}, "in-memory transport"},
		{faults.Spec{Fault: "throttle", Params: []byte(`{"api":"device"}`)}, "in-memory transport"},
	} {
		if _, err := env.Arm(tc.spec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.spec.Fault, err, tc.want)
		}
	}
	// The in-memory transport still runs a clean rollout and device faults.
	env.Inject(faults.Spec{Fault: "script-exit", Params: []byte(`{"script":"pre-launch"}`)})
	env.Expect(env.WaitJob(env.Deploy(bundles.Hello, robomaker.Deployment{}))).To(harness.HaveFailureCode("PreLaunchFileFailure"))
}

// TestNothingLeftBehind: an environment's cleanup stops every goroutine it started.
func TestNothingLeftBehind(t *testing.T) {
	agenttest.LeakTest(t)
	t.Run("env", func(t *testing.T) {
		env := harness.New(t, harness.WithRobots(3))
		env.Inject(faults.Spec{Fault: "partition", Params: []byte(`{"duration":"1h"}`),
			Target: faults.Selector{Devices: []string{"robot-0002"}, Step: "Launching"}})
		env.WaitJob(env.Deploy(bundles.Hello, robomaker.Deployment{Timeout: 10 * time.Minute}))
	})
}

// brokenBackend fails to start its fleet, as a rig that is down would.
type brokenBackend struct{ harness.InProc }

func (brokenBackend) Start(context.Context, harness.FleetSetup) (fleet.Fleet, error) {
	return nil, errors.New("no robots today")
}

// TestRecorderRemovesTempDirsLast: a cleanup registered before a directory was made still finds it, and the
// directory is gone once the run is over.
func TestRecorderRemovesTempDirsLast(t *testing.T) {
	var dir string
	seen := false
	err := harness.NewRecorder("dirs", nil).Run(func(t harness.T) {
		t.Cleanup(func() {
			_, err := os.Stat(dir)
			seen = err == nil
		})
		dir = t.TempDir()
	})
	if err != nil || !seen {
		t.Fatalf("run: %v; the cleanup saw the directory: %v", err, seen)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s still there after the run: %v", dir, err)
	}
}

// TestSpecErrorsArePlaced: every problem of a scenario file says where it is — the line and column of a JSON
// syntax error, of a member the format does not have (listing those it has), of a value of the wrong kind, of a
// value the checks refuse, of a fault's unknown parameter (listing the fault's parameters) — and a fault or an
// expectation aimed at a robot outside the fleet is refused with the spec.
func TestSpecErrorsArePlaced(t *testing.T) {
	const tail = `, "expect": {"status": "Failed", "others": {"status": "InSync"}}}`
	for _, tc := range []struct{ in, want string }{
		{"{\"name\": \"x\",\n  \"fleet\": {\"robots\": 2,,}}", "line 2, column 26: JSON syntax: invalid character ','"},
		{"{\"name\": \"x\",\n  \"job\": {\n    \"bundel\": \"hello\"}" + tail,
			`line 3, column 5: unknown field "bundel" in job (fields: architectures, bundle, concurrency, downloadCondition, failureThreshold, options, timeout)`},
		{"{\"name\": \"x\", \"jobb\": {}" + tail, `line 1, column 15: unknown field "jobb" in the scenario (fields: description, dialect, expect, faults, fleet, job, name, seed, timeScale)`},
		{"{\"name\": \"x\",\n  \"job\": {\"concurrency\": \"50\"}" + tail, "line 2, column 26: a JSON string where job.concurrency wants a whole number"},
		{"{\"name\": \"x\",\n  \"job\": {\"concurrency\": 150}" + tail, "line 2, column 26: job: concurrency 150 outside 1-100"},
		{"{\"name\": \"x\",\n  \"job\": {\"timeout\": \"5x\"}" + tail, `line 2, column 22: job.timeout: duration "5x"`},
		{"{\"name\": \"x\", \"faults\": [\n {\"fault\": \"crash\", \"params\": {\"dwon\": \"30s\"}}]" + tail,
			`line 2, column 32: unknown field "dwon" in faults[0].params (fields: down, stay)`},
		{"{\"name\": \"x\", \"faults\": [\n {\"fault\": \"script-exit\", \"params\": {\"script\": \"pre-launch\", \"code\": 300}}]" + tail,
			"line 2, column 37: faults[0]: fault script-exit: code 300 outside 1-255"},
		{"{\"name\": \"x\", \"fleet\": {\"robots\": 4}, \"faults\": [\n {\"fault\": \"crash\", \"target\": {\"devices\": [\"robot-0001\", \"robot-0009\"]}}]" + tail,
			"line 2, column 58: faults[0]: target: robot-0009 is not a robot of the fleet (robot-0001, robot-0002, robot-0003, robot-0004)"},
		{"{\"name\": \"x\", \"faults\": [\n {\"fault\": \"crash\", \"target\": {\"count\": 5}}]" + tail,
			"line 2, column 41: faults[0]: target: count 5 is more robots than the fleet's 3"},
		{"{\"name\": \"x\", \"expect\": {\"status\": \"Failed\", \"robots\": {\n \"robot-0007\": {\"status\": \"Failed\"}}}}",
			"line 2, column 16: expect: robots: robot-0007 is not a robot of the fleet"},
	} {
		_, err := harness.ReadSpec(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s\n  error %v\n  want  %s", tc.in, err, tc.want)
		}
	}
	// The registry lists a fault's parameters however the fault is given.
	_, err := faults.Catalog().New(faults.Spec{Fault: "script-exit", Params: json.RawMessage(`{"scrpit": "pre-launch"}`)}, robomaker.Driver{}.Steps())
	if err == nil || !strings.Contains(err.Error(), "(params of script-exit: code, component, script)") || !errors.Is(err, faults.ErrParams) {
		t.Errorf("unknown parameter: %v", err)
	}
}
