package scenarios_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/harness/robomaker"
)

// faulty is a scenario whose faults pick their robots with the run's seed: the pre-launch script of three
// robots in ten exits 3, and one robot crashes as it starts downloading and resumes after a restart.
func faulty(seed uint64) harness.Spec {
	return harness.Spec{
		Name:  fmt.Sprintf("seeded-faults-%d", seed),
		Fleet: harness.FleetSpec{Robots: 10},
		Seed:  seed,
		Job:   harness.JobSpec{Bundle: bundles.Hello, Concurrency: 30},
		Faults: []faults.Spec{
			{Fault: "script-exit", Params: []byte(`{"script":"pre-launch","code":3}`), Target: faults.Selector{Percent: 30}},
		},
		Expect: harness.Expect{
			Status: robomaker.JobFailed, FailureCode: "PreLaunchFileFailure",
			Targets: &harness.RobotExpect{Status: robomaker.RobotFailed, FailureCode: "PreLaunchFileFailure"},
			Others:  &harness.RobotExpect{Status: robomaker.RobotInSync},
			Counts:  map[string]int{robomaker.RobotFailed: 3, robomaker.RobotInSync: 7},
		},
	}
}

// crashing is a scenario where one robot, picked with the seed, loses power as it starts downloading, and
// resumes where it was after twenty seconds down.
func crashing(seed uint64) harness.Spec {
	return harness.Spec{
		Name:  fmt.Sprintf("seeded-crash-%d", seed),
		Fleet: harness.FleetSpec{Robots: 6},
		Seed:  seed,
		Job:   harness.JobSpec{Bundle: bundles.Hello, Concurrency: 50},
		Faults: []faults.Spec{{Fault: "crash", Params: []byte(`{"down":"20s"}`),
			Target: faults.Selector{Count: 1, Step: "DownloadingExtracting"}}},
		Expect: harness.Expect{Status: robomaker.JobSucceeded,
			Targets: &harness.RobotExpect{Status: robomaker.RobotInSync},
			Others:  &harness.RobotExpect{Status: robomaker.RobotInSync}},
	}
}

// TestSameSeedSameRun runs a faulty scenario twice with one seed: the same robots are struck, and every robot
// goes through the same steps to the same outcome. A third run with another seed strikes other robots.
func TestSameSeedSameRun(t *testing.T) {
	const seed = 41
	var runs []*harness.Result
	var outcomes []map[string][]string
	for i := range 2 {
		t.Run(fmt.Sprintf("run%d", i+1), func(t *testing.T) {
			res := harness.RunSpec(t, faulty(seed))
			runs = append(runs, res)
			outcomes = append(outcomes, harness.Outcomes(res.Events))
		})
	}
	if t.Failed() {
		return
	}
	if !reflect.DeepEqual(runs[0].Targets, runs[1].Targets) {
		t.Fatalf("seed %d struck %v, then %v", seed, runs[0].Targets, runs[1].Targets)
	}
	// The service's ids come from the seed too: the run's job has the same id both times.
	if runs[0].Job.ID == "" || runs[0].Job.ID != runs[1].Job.ID {
		t.Fatalf("seed %d made job %q, then %q", seed, runs[0].Job.ID, runs[1].Job.ID)
	}
	if len(outcomes[0]) != 10 {
		t.Fatalf("outcomes of %d robots, want 10", len(outcomes[0]))
	}
	for robot, steps := range outcomes[0] {
		if other := outcomes[1][robot]; !reflect.DeepEqual(steps, other) {
			t.Errorf("%s with seed %d:\n  run 1: %s\n  run 2: %s", robot, seed, strings.Join(steps, ", "), strings.Join(other, ", "))
		}
	}
	// Another seed that the selector says picks other robots does strike other robots.
	other := uint64(seed + 1)
	for ; ; other++ {
		a, _ := faults.Selector{Percent: 30}.Select(runs[0].Job.RobotNames(), seed, "script-exit")
		b, _ := faults.Selector{Percent: 30}.Select(runs[0].Job.RobotNames(), other, "script-exit")
		if !reflect.DeepEqual(a, b) {
			break
		}
	}
	res := harness.RunSpec(t, faulty(other))
	if reflect.DeepEqual(res.Targets, runs[0].Targets) {
		t.Fatalf("seeds %d and %d struck the same robots %v", seed, other, res.Targets)
	}
}

// TestSameSeedSameCrash runs the seeded crash twice: the same robot crashes and resumes where it was, and every
// robot's steps are the same in both runs.
func TestSameSeedSameCrash(t *testing.T) {
	var outcomes []map[string][]string
	var crashed []string
	for i := range 2 {
		t.Run(fmt.Sprintf("run%d", i+1), func(t *testing.T) {
			res := harness.RunSpec(t, crashing(7))
			outcomes = append(outcomes, harness.Outcomes(res.Events))
			crashed = append(crashed, strings.Join(res.Targets, ","))
		})
	}
	if t.Failed() {
		return
	}
	if crashed[0] != crashed[1] {
		t.Fatalf("the seed crashed %s, then %s", crashed[0], crashed[1])
	}
	if !reflect.DeepEqual(outcomes[0], outcomes[1]) {
		for robot := range outcomes[0] {
			if !reflect.DeepEqual(outcomes[0][robot], outcomes[1][robot]) {
				t.Errorf("%s:\n  run 1: %v\n  run 2: %v", robot, outcomes[0][robot], outcomes[1][robot])
			}
		}
	}
	resumed := false
	for _, steps := range outcomes[0] {
		n := 0
		for _, s := range steps {
			if strings.HasSuffix(s, " DownloadingExtracting") {
				n++
			}
		}
		resumed = resumed || n == 2
	}
	if !resumed {
		t.Errorf("no robot entered DownloadingExtracting twice (crashed and resumed): %v", outcomes[0])
	}
}

// TestSameSeedSameEventSequence runs every scenario twice with its seed: on virtual time the two runs are the
// same sequence of events — every event of the engine, the agents, the faults and the harness, in the same order
// and at the same virtual times.
func TestSameSeedSameEventSequence(t *testing.T) {
	for _, spec := range registry(t).All() {
		t.Run(subtest(spec), func(t *testing.T) {
			var runs [2][]string
			for i := range runs {
				res := harness.RunSpec(t, spec)
				if t.Failed() {
					return
				}
				runs[i] = harness.Sequence(res.Events)
			}
			a, b := runs[0], runs[1]
			for i := range min(len(a), len(b)) {
				if a[i] != b[i] {
					t.Fatalf("event %d of %d differs:\n  run 1: %s\n  run 2: %s", i+1, len(a), a[i], b[i])
				}
			}
			if len(a) != len(b) {
				t.Fatalf("%d events, then %d", len(a), len(b))
			}
		})
	}
}
