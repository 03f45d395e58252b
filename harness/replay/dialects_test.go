package replay_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/harness/greengrass"
	"github.com/fleetlab/fleetlab/harness/replay"
	"github.com/fleetlab/fleetlab/sim/awsapi/awsclitest"
)

// faultyGreengrassV1 is a Greengrass V1 field failure: one core's pre-launch function exits 3, another's
// post-launch function exits 4, the others succeed.
func faultyGreengrassV1() harness.Spec {
	return harness.Spec{Name: "field-gg1", Dialect: "greengrass",
		Fleet: harness.FleetSpec{Names: []string{"core-01", "core-02", "core-03", "core-04"}},
		Job:   harness.JobSpec{Bundle: "hello"},
		Faults: []faults.Spec{
			{Fault: "script-exit", Params: json.RawMessage(`{"script":"pre-launch","code":3}`), Target: faults.Selector{Devices: []string{"core-02"}}},
			{Fault: "script-exit", Params: json.RawMessage(`{"script":"post-launch","code":4}`), Target: faults.Selector{Devices: []string{"core-03"}}},
		},
		Expect: harness.Expect{Status: "Completed", Robots: map[string]harness.RobotExpect{
			"core-02": {Status: "Failure", FailureCode: "GG-FUNCTION-FAILED"},
			"core-03": {Status: "Failure", FailureCode: "GG-FUNCTION-FAILED"},
		}, Others: &harness.RobotExpect{Status: "Success"}},
	}
}

// cli runs the AWS CLI 2 against env, each command's output saved at a path of dir; it skips the test when the
// CLI is absent.
func cli(t *testing.T, env *harness.Env, dir string) func(out string, args ...string) []byte {
	_, run, _ := awsclitest.AWSCLI(t, env.Endpoint())
	return func(out string, args ...string) []byte {
		t.Helper()
		stdout, stderr, err := run(args...)
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		path := filepath.Join(dir, out)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(stdout), 0o644); err != nil {
			t.Fatal(err)
		}
		return []byte(stdout)
	}
}

// cliCollectGreengrassV1 fills a bulk deployment's record with the README's commands.
func cliCollectGreengrassV1(t *testing.T, env *harness.Env, job, dir string) error {
	aws := cli(t, env, dir)
	var reports struct {
		Deployments []struct{ DeploymentId, GroupArn string }
	}
	if err := json.Unmarshal(aws("bulk.json", "greengrass", "list-bulk-deployment-detailed-reports", "--bulk-deployment-id", greengrass.JobID(job)), &reports); err != nil {
		return err
	}
	os.Remove(filepath.Join(dir, "bulk.json"))
	for _, d := range reports.Deployments {
		gid := greengrass.GroupID(d.GroupArn)
		at := func(f string) string { return filepath.Join("groups", gid, f) }
		aws(at("list-deployments.json"), "greengrass", "list-deployments", "--group-id", gid)
		aws(at("get-deployment-status.json"), "greengrass", "get-deployment-status", "--group-id", gid, "--deployment-id", d.DeploymentId)
		var g struct{ LatestVersion string }
		if err := json.Unmarshal(aws(at("g.json"), "greengrass", "get-group", "--group-id", gid), &g); err != nil {
			return err
		}
		var v struct {
			Definition struct{ CoreDefinitionVersionArn string }
		}
		if err := json.Unmarshal(aws(at("v.json"), "greengrass", "get-group-version", "--group-id", gid, "--group-version-id", g.LatestVersion), &v); err != nil {
			return err
		}
		os.Remove(filepath.Join(dir, at("g.json")))
		os.Remove(filepath.Join(dir, at("v.json")))
		id, ver, _ := greengrass.CoreVersion(v.Definition.CoreDefinitionVersionArn)
		aws(at("get-core-definition-version.json"), "greengrass", "get-core-definition-version", "--core-definition-id", id, "--core-definition-version-id", ver)
	}
	return nil
}

// faultyOpsWorks is an OpsWorks field failure: one instance's before_migrate hook exits 3, another's
// after_restart hook exits 4, the others deploy.
func faultyOpsWorks() harness.Spec {
	return harness.Spec{Name: "field-ow", Dialect: "opsworks",
		Fleet: harness.FleetSpec{Names: []string{"board-01", "board-02", "board-03", "board-04"}},
		Job:   harness.JobSpec{Bundle: "hello"},
		Faults: []faults.Spec{
			{Fault: "script-exit", Params: json.RawMessage(`{"script":"pre-launch","code":3}`), Target: faults.Selector{Devices: []string{"board-02"}}},
			{Fault: "script-exit", Params: json.RawMessage(`{"script":"post-launch","code":4}`), Target: faults.Selector{Devices: []string{"board-03"}}},
		},
		Expect: harness.Expect{Status: "failed", Robots: map[string]harness.RobotExpect{
			"board-02": {Status: "failed", FailureCode: "exit-3"},
			"board-03": {Status: "failed", FailureCode: "exit-4"},
		}, Others: &harness.RobotExpect{Status: "successful"}},
	}
}

// cliCollectOpsWorks fills an OpsWorks record with the README's commands.
func cliCollectOpsWorks(t *testing.T, env *harness.Env, job, dir string) error {
	aws := cli(t, env, dir)
	var d struct{ Deployments []struct{ StackId string } }
	if err := json.Unmarshal(aws("describe-deployments.json", "opsworks", "describe-deployments", "--deployment-ids", job), &d); err != nil || len(d.Deployments) != 1 {
		return fmt.Errorf("describe-deployments: %v (%d)", err, len(d.Deployments))
	}
	aws("describe-commands.json", "opsworks", "describe-commands", "--deployment-id", job)
	aws("describe-instances.json", "opsworks", "describe-instances", "--stack-id", d.Deployments[0].StackId)
	return nil
}

// skipWithoutCLI skips a test of the AWS CLI path where the CLI is not installed.
func skipWithoutCLI(t *testing.T) {
	if _, err := os.Stat("/usr/bin/aws"); err != nil || testing.Short() {
		t.Skip("the AWS CLI 2 is not at /usr/bin/aws (or -short)")
	}
}

func TestReplayRoundTripDialects(t *testing.T) {
	fleetlab := collectors(t)["fleetlab"]
	t.Run("greengrass", func(t *testing.T) { roundTrip(t, faultyGreengrassV1(), fleetlab) })
	t.Run("greengrass-one-group", func(t *testing.T) {
		// A group's id collects that group's newest deployment at the top of the record: one core.
		dir := filepath.Join(t.TempDir(), "group")
		spec := faultyGreengrassV1()
		spec.Run = func(env *harness.Env, s harness.Spec) string {
			job, err := env.StartDeployment(s.Job.Bundle, nil, nil)
			if err != nil {
				t.Fatalf("deploy: %v", err)
			}
			env.WaitJob(job)
			if err := fleetlab(env, greengrass.Of(env).Group("core-02"), dir); err != nil {
				t.Fatalf("collect: %v", err)
			}
			return job
		}
		harness.RunSpec(t, spec)
		rec, err := replay.Read(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Devices) != 1 || rec.Devices[0].Name != "core-02" || rec.Devices[0].Status != "Failure" ||
			len(rec.Devices[0].Faults) != 1 || string(rec.Devices[0].Faults[0].Params) != `{"script":"pre-launch","code":3}` {
			t.Fatalf("record devices %+v", rec.Devices)
		}
	})
	t.Run("greengrass-aws-cli", func(t *testing.T) {
		skipWithoutCLI(t)
		roundTrip(t, faultyGreengrassV1(), func(env *harness.Env, job, dir string) error { return cliCollectGreengrassV1(t, env, job, dir) })
	})
	t.Run("opsworks", func(t *testing.T) { roundTrip(t, faultyOpsWorks(), fleetlab) })
	t.Run("opsworks-aws-cli", func(t *testing.T) {
		skipWithoutCLI(t)
		roundTrip(t, faultyOpsWorks(), func(env *harness.Env, job, dir string) error { return cliCollectOpsWorks(t, env, job, dir) })
	})
}
