package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/appconfig"
	"github.com/fleetlab/fleetlab/harness/faults"
)

const prelaunchRecord = "../../fixtures/records/robomaker-prelaunch-one-robot"

func TestReplayReproducesAndWrites(t *testing.T) {
	scenario := filepath.Join(t.TempDir(), "replay.json")
	var out, errb strings.Builder
	if code := run([]string{"replay", "--write", scenario, prelaunchRecord}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"fault: script-exit {\"script\":\"pre-launch\",\"code\":2} on amr-east-02", "reproduced: every device",
		"not mapped: logs/amr-east-02.log"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// The scenario written is one fleetlab run accepts, and it passes.
	out.Reset()
	errb.Reset()
	if code := run([]string{"run", "--no-live", scenario}, &out, &errb); code != exitOK {
		t.Fatalf("run of the written scenario: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
}

func TestReplayThatDiffersExits1(t *testing.T) {
	// The same record, but a robot the record says failed its pre-launch file for a reason no fault of
	// fleetlab's makes: named as not mapped, and the run differs from it.
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(prelaunchRecord, "describe-deployment-job.json"))
	if err != nil {
		t.Fatal(err)
	}
	job := strings.Replace(string(b), `"status": "InSync",
            "progressDetail": {"currentProgress": "Finished"}
        },
        {
            "arn": "arn:aws:robomaker:us-west-2:111111111111:robot/amr-east-02`, `"status": "Failed",
            "failureCode": "BadPermissionError",
            "progressDetail": {"currentProgress": "Launching"}
        },
        {
            "arn": "arn:aws:robomaker:us-west-2:111111111111:robot/amr-east-02`, 1)
	if job == string(b) {
		t.Fatal("the record's text changed: the test no longer edits it")
	}
	if err := os.WriteFile(filepath.Join(dir, "describe-deployment-job.json"), []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb strings.Builder
	if code := run([]string{"replay", dir}, &out, &errb); code != exitFailed {
		t.Fatalf("exit %d, want %d\n%s\n%s", code, exitFailed, out.String(), errb.String())
	}
	for _, want := range []string{"robot amr-east-01: failure code BadPermissionError: no fault", "differs: robot amr-east-01", "not reproduced"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestReplayUnreadableExits2(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "describe-deployment-job.json"), []byte(`{"status": 7}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"replay", dir}, "describe-deployment-job.json: status: a JSON number, where the CLI writes a string"},
		{[]string{"replay", t.TempDir()}, "no field record of a dialect fleetlab knows: want one of describe-deployment-job.json"},
		{[]string{"replay", filepath.Join(dir, "describe-deployment-job.json")}, "not a directory"},
		{[]string{"replay"}, "want one record directory"},
		{[]string{"replay", "--job", "x", dir}, "--job is for --collect"},
		{[]string{"replay", "--collect", dir}, "--collect needs --endpoint and --job"},
	} {
		var out, errb strings.Builder
		if code := run(tc.args, &out, &errb); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", tc.args, code, exitUsage)
		}
		if !strings.Contains(errb.String(), tc.says) || !strings.Contains(errb.String(), "hint:") {
			t.Errorf("%v: stderr %q, want %q and a hint", tc.args, errb.String(), tc.says)
		}
	}
}

// TestReplayCollectDialects: `fleetlab replay --collect --dialect D` fills a record from a running service for
// the Greengrass V1, OpsWorks and AppConfig dialects, and `fleetlab replay` of it reproduces the run.
func TestReplayCollectDialects(t *testing.T) {
	collectThenReplay := func(t *testing.T, dialectName, endpoint, job, dir string) {
		t.Helper()
		var out, errb strings.Builder
		args := []string{"replay", "--collect", "--endpoint", endpoint, "--job", job, "--dialect", dialectName, dir}
		if code := run(args, &out, &errb); code != exitOK {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, out.String(), errb.String())
		}
		if !strings.Contains(out.String(), "record of "+job+" written to "+dir) {
			t.Errorf("collect output %q", out.String())
		}
	}
	replayed := func(t *testing.T, dir, want string) {
		t.Helper()
		var out, errb strings.Builder
		if code := run([]string{"replay", dir}, &out, &errb); code != exitOK {
			t.Fatalf("replay: exit %d\n%s\n%s", code, out.String(), errb.String())
		}
		if !strings.Contains(out.String(), want) {
			t.Errorf("replay output lacks %q:\n%s", want, out.String())
		}
	}
	for _, tc := range []struct {
		dialect, fault, want string
		expect               harness.Expect
	}{
		{"greengrass", `{"script":"pre-launch","code":3}`, `fault: script-exit {"script":"pre-launch","code":3} on robot-0002`,
			harness.Expect{Status: "Completed", Robots: map[string]harness.RobotExpect{"robot-0002": {Status: "Failure", FailureCode: "GG-FUNCTION-FAILED"}},
				Others: &harness.RobotExpect{Status: "Success"}}},
		{"opsworks", `{"script":"post-launch","code":4}`, `fault: script-exit {"script":"post-launch","code":4} on robot-0002`,
			harness.Expect{Status: "failed", Robots: map[string]harness.RobotExpect{"robot-0002": {Status: "failed", FailureCode: "exit-4"}},
				Others: &harness.RobotExpect{Status: "successful"}}},
	} {
		t.Run(tc.dialect, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "record")
			spec := harness.Spec{Name: "collect-" + tc.dialect, Dialect: tc.dialect, Fleet: harness.FleetSpec{Robots: 3},
				Job:    harness.JobSpec{Bundle: "hello"},
				Faults: []faults.Spec{{Fault: "script-exit", Params: json.RawMessage(tc.fault), Target: faults.Selector{Devices: []string{"robot-0002"}}}},
				Expect: tc.expect,
				Run: func(env *harness.Env, s harness.Spec) string {
					job, err := env.StartDeployment(s.Job.Bundle, nil, env.Driver().Config(s.Job))
					if err != nil {
						t.Fatalf("deploy: %v", err)
					}
					env.WaitJob(job)
					collectThenReplay(t, tc.dialect, env.Endpoint(), job, dir)
					return job
				}}
			harness.RunSpec(t, spec)
			replayed(t, dir, tc.want)
		})
	}
	t.Run("appconfig", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "record")
		spec := appconfig.Spec{Name: "collect-appconfig", Devices: 4, Initial: `{"n": 1}`, Content: `{"n": 2}`,
			Strategy: appconfig.StrategySpec{GrowthType: "LINEAR", GrowthFactor: 25, DurationMinutes: 8, BakeMinutes: 2},
			Steps:    []appconfig.Step{{At: appconfig.Duration(5 * time.Minute), Do: "stop"}},
			Expect:   appconfig.Expect{State: "ROLLED_BACK", TriggeredBy: "USER", Devices: "previous"}}
		res := appconfig.RunWith(t, spec, appconfig.RunOptions{OnEnd: func(l *appconfig.Lab, n int32) {
			collectThenReplay(t, "appconfig", l.Endpoint(), l.Job(n), dir)
		}})
		if !res.OK() {
			t.Fatalf("field run: %v", res.Failures)
		}
		replayed(t, dir, "step: stop at 5m0s")
		replayed(t, dir, "reproduced: the deployment ended as the record says")
		// The AppConfig scenario written is one fleetlab run accepts, and it passes.
		scenario := filepath.Join(t.TempDir(), "replay.json")
		var out, errb strings.Builder
		if code := run([]string{"replay", "--write", scenario, dir}, &out, &errb); code != exitOK {
			t.Fatalf("replay --write: exit %d\n%s\n%s", code, out.String(), errb.String())
		}
		out.Reset()
		errb.Reset()
		if code := run([]string{"run", "--no-live", scenario}, &out, &errb); code != exitOK {
			t.Fatalf("run of the written scenario: exit %d\n%s\n%s", code, out.String(), errb.String())
		}
	})
}
