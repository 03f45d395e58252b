package replay_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/harness/replay"
)

// faulty is the field failure the round trip starts from: a robot whose pre-launch script exits 3, one that
// stops answering while it downloads, one whose post-launch script fails, and an ARM64 robot the application
// has no bundle for.
func faulty(dialectName string) harness.Spec {
	return harness.Spec{Name: "field", Dialect: dialectName,
		Fleet: harness.FleetSpec{Names: []string{"amr-01", "amr-02", "amr-03", "amr-04", "amr-05", "arm-06"},
			Architectures: map[string]string{"arm-06": "arm64"}},
		Job: harness.JobSpec{Bundle: bundles.Hello, Architectures: []string{"amd64"}, Timeout: faults.Duration(10 * time.Minute)},
		Faults: []faults.Spec{
			{Fault: "script-exit", Params: json.RawMessage(`{"script":"pre-launch","code":3}`), Target: faults.Selector{Devices: []string{"amr-02"}}},
			{Fault: "no-response", Target: faults.Selector{Devices: []string{"amr-04"}, Step: "DownloadingExtracting"}},
			{Fault: "script-exit", Params: json.RawMessage(`{"script":"post-launch","code":4}`), Target: faults.Selector{Devices: []string{"amr-05"}}},
		},
		Expect: harness.Expect{Status: "Failed", Robots: map[string]harness.RobotExpect{
			"amr-02": {Status: "Failed", FailureCode: "PreLaunchFileFailure", Step: "ExecutingPreLaunch"},
			"amr-04": {Status: "NoResponse", FailureCode: "RobotDeploymentNoResponse"},
			"amr-05": {Status: "Failed", FailureCode: "PostLaunchFileFailure", Step: "ExecutingPostLaunch"},
			"arm-06": {Status: "Failed", FailureCode: "MissingRobotApplicationArchitecture", Step: "Validating"},
		}, Others: &harness.RobotExpect{Status: "InSync"}},
	}
}

// faultyGreengrass is a Greengrass V2 field failure: a component whose install exits, a device whose disk
// fills while it downloads, one that goes silent while installing past the job's timeout.
func faultyGreengrass() harness.Spec {
	return harness.Spec{Name: "field-gg", Dialect: "greengrassv2",
		Fleet: harness.FleetSpec{Names: []string{"core-01", "core-02", "core-03", "core-04", "core-05"}},
		Job:   harness.JobSpec{Timeout: faults.Duration(10 * time.Minute)},
		Faults: []faults.Spec{
			{Fault: "script-exit", Params: json.RawMessage(`{"script":"install","code":3}`), Target: faults.Selector{Devices: []string{"core-02"}}},
			{Fault: "disk-full", Target: faults.Selector{Devices: []string{"core-03"}}},
			{Fault: "no-response", Target: faults.Selector{Devices: []string{"core-04"}, Step: "Installing"}},
		},
		Expect: harness.Expect{Status: "ACTIVE", Robots: map[string]harness.RobotExpect{
			"core-02": {Status: "FAILED", FailureCode: "COMPONENT_BROKEN"},
			"core-03": {Status: "FAILED", FailureCode: "DISK_SPACE_CRITICAL"},
			"core-04": {Status: "TIMED_OUT"},
		}, Others: &harness.RobotExpect{Status: "SUCCEEDED"}},
	}
}

// collectors are the ways a record is collected: fleetlab's own, and the AWS CLI 2 where it is installed.
func collectors(t *testing.T) map[string]func(env *harness.Env, job, dir string) error {
	m := map[string]func(env *harness.Env, job, dir string) error{
		"fleetlab": func(env *harness.Env, job, dir string) error {
			r, err := replay.ReplayerNamed(env.Driver().Name())
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			return r.Collect(ctx, env.Endpoint(), env.Transport(), job, dir)
		},
	}
	if _, err := os.Stat("/usr/bin/aws"); err == nil {
		m["aws-cli"] = func(env *harness.Env, job, dir string) error { return cliCollect(t, env, job, dir) }
	}
	return m
}

// cliCollect fills a RoboMaker record with the commands the README gives.
func cliCollect(t *testing.T, env *harness.Env, job, dir string) error {
	aws := func(out string, args ...string) error {
		cmd := exec.Command("/usr/bin/aws", append(args, "--endpoint-url", env.Endpoint(), "--region", "us-east-1", "--output", "json")...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=fleetlab", "AWS_SECRET_ACCESS_KEY=fleetlab", "AWS_PAGER=",
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
		b, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return errors.New(string(ee.Stderr))
			}
			return err
		}
		return os.WriteFile(filepath.Join(dir, out), b, 0o644)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := aws("describe-deployment-job.json", "robomaker", "describe-deployment-job", "--job", job); err != nil {
		return err
	}
	var j struct{ Fleet string }
	b, _ := os.ReadFile(filepath.Join(dir, "describe-deployment-job.json"))
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	return aws("describe-fleet.json", "robomaker", "describe-fleet", "--fleet", j.Fleet)
}

func TestReplayRoundTrip(t *testing.T) {
	for name, collect := range collectors(t) {
		t.Run(name, func(t *testing.T) { roundTrip(t, faulty("robomaker"), collect) })
	}
	t.Run("greengrassv2", func(t *testing.T) { roundTrip(t, faultyGreengrass(), collectors(t)["fleetlab"]) })
}

// roundTrip runs spec, collects a record of its job with collect, replays the record and checks the replay
// ends every device as the field run did.
func roundTrip(t *testing.T, spec harness.Spec, collect func(env *harness.Env, job, dir string) error) {
	dir := filepath.Join(t.TempDir(), "field-failure")
	spec.Run = func(env *harness.Env, s harness.Spec) string {
		job, err := env.StartDeployment(s.Job.Bundle, s.Job.Architectures, env.Driver().Config(s.Job))
		if err != nil {
			t.Fatalf("deploy: %v", err)
		}
		env.WaitJob(job)
		if err := collect(env, job, dir); err != nil {
			t.Fatalf("collect: %v", err)
		}
		return job
	}
	field := harness.RunSpec(t, spec)

	rec, err := replay.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range field.Job.Robots {
		i := indexOf(rec.Devices, r.Name)
		if i < 0 {
			t.Fatalf("the record has no %s", r.Name)
		}
		d := rec.Devices[i]
		if d.Status != r.Status || d.FailureCode != r.FailureCode || d.Step != "" && d.Step != r.Step {
			t.Errorf("record of %s: %s/%s@%s, the run's %s", r.Name, d.Status, d.FailureCode, d.Step, r)
		}
	}
	var log strings.Builder
	out, err := replay.Run(rec, rec.Spec(), &log)
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, log.String())
	}
	if !out.Reproduced() {
		var b strings.Builder
		out.Report(&b)
		t.Fatalf("not reproduced:\n%s\n%s", b.String(), log.String())
	}
	for _, r := range field.Job.Robots {
		got, ok := out.Result.Job.Robot(r.Name)
		if !ok || got.Status != r.Status || got.FailureCode != r.FailureCode || got.Step != r.Step {
			t.Errorf("replayed %s: %v, the field's %s", r.Name, got, r)
		}
	}
}

func indexOf(devs []dialect.FieldDevice, name string) int {
	for i, d := range devs {
		if d.Name == name {
			return i
		}
	}
	return -1
}

// TestFixtureRecords replays the records under fixtures/records, written by hand from the models' shapes.
func TestFixtureRecords(t *testing.T) {
	dirs, err := filepath.Glob("../../fixtures/records/*")
	if err != nil || len(dirs) < 3 {
		t.Fatalf("fixtures/records: %d records (%v), want at least 3", len(dirs), err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			rec, err := replay.Read(dir)
			if err != nil {
				t.Fatal(err)
			}
			var log strings.Builder
			var out *replay.Outcome
			if rec.AppConfig != nil {
				out, err = replay.RunAppConfig(rec, rec.AppConfigSpec(), 0, &log)
			} else {
				out, err = replay.Run(rec, rec.Spec(), &log)
			}
			if err != nil {
				t.Fatalf("replay: %v\n%s", err, log.String())
			}
			var b strings.Builder
			out.Report(&b)
			if !out.Reproduced() {
				t.Fatalf("not reproduced:\n%s\n%s", b.String(), log.String())
			}
			t.Logf("%s", b.String())
		})
	}
}

// TestUnreadableRecords: a record that cannot be read says which file and which field.
func TestUnreadableRecords(t *testing.T) {
	const robot = `{"arn":"arn:aws:robomaker:us-west-2:111111111111:robot/r1/1540834232469","status":"InSync"}`
	job := func(members string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte(`{"arn":"arn:aws:robomaker:us-west-2:111111111111:deployment-job/deployment-x","status":"Succeeded",` + members + `}`)}
	}
	for _, tc := range []struct {
		name        string
		fs          fstest.MapFS
		file, field string
		says        string
	}{
		{"empty", fstest.MapFS{}, "", "", "no field record"},
		{"not json", fstest.MapFS{"describe-deployment-job.json": {Data: []byte("Deployment job: x")}}, "describe-deployment-job.json", "", "not the JSON"},
		{"no robots", fstest.MapFS{"describe-deployment-job.json": job(`"robotDeploymentSummary":[]`)}, "describe-deployment-job.json", "robotDeploymentSummary", "no robots"},
		{"bad status", fstest.MapFS{"describe-deployment-job.json": job(`"robotDeploymentSummary":[{"arn":"arn:aws:robomaker:us-west-2:1:robot/r1/1","status":"Happy"}]`)},
			"describe-deployment-job.json", "robotDeploymentSummary[0].status", `"Happy"`},
		{"bad arn", fstest.MapFS{"describe-deployment-job.json": job(`"robotDeploymentSummary":[{"arn":"r1","status":"InSync"}]`)},
			"describe-deployment-job.json", "robotDeploymentSummary[0].arn", "not a robot ARN"},
		{"bad time", fstest.MapFS{"describe-deployment-job.json": job(`"robotDeploymentSummary":[{"arn":"arn:aws:robomaker:us-west-2:1:robot/r1/1","status":"InSync","deploymentStartTime":"yesterday"}]`)},
			"describe-deployment-job.json", "robotDeploymentSummary[0].deploymentStartTime", "ISO 8601"},
		{"wrong type", fstest.MapFS{"describe-deployment-job.json": job(`"deploymentConfig":{"concurrentDeploymentPercentage":"half"},"robotDeploymentSummary":[` + robot + `]`)},
			"describe-deployment-job.json", "deploymentConfig.concurrentDeploymentPercentage", "a JSON string, where the CLI writes a number"},
		{"bad percentage", fstest.MapFS{"describe-deployment-job.json": job(`"deploymentConfig":{"failureThresholdPercentage":150},"robotDeploymentSummary":[` + robot + `]`)},
			"describe-deployment-job.json", "deploymentConfig.failureThresholdPercentage", "1 to 100"},
		{"bad architecture", fstest.MapFS{"describe-deployment-job.json": job(`"robotDeploymentSummary":[` + robot + `]`),
			"describe-fleet.json": {Data: []byte(`{"robots":[{"name":"r1","architecture":"MIPS"}]}`)}}, "describe-fleet.json", "robots[0].architecture", "MIPS"},
		{"greengrass without devices", fstest.MapFS{"get-deployment.json": {Data: []byte(`{"deploymentId":"d","deploymentStatus":"ACTIVE"}`)}},
			"list-effective-deployments", "", "list-effective-deployments/<thing>.json per core device"},
		{"greengrass bad status", fstest.MapFS{"get-deployment.json": {Data: []byte(`{"deploymentId":"d","deploymentStatus":"ACTIVE"}`)},
			"list-effective-deployments/core-1.json": {Data: []byte(`{"effectiveDeployments":[{"deploymentId":"d","coreDeviceExecutionStatus":"HAPPY"}]}`)}},
			"list-effective-deployments/core-1.json", "effectiveDeployments[0].coreDeviceExecutionStatus", `"HAPPY"`},
		{"greengrass v1 bad status", fstest.MapFS{"get-deployment-status.json": {Data: []byte(`{"DeploymentStatus":"Done"}`)}},
			"get-deployment-status.json", "DeploymentStatus", `"Done"`},
		{"greengrass v1 no list", fstest.MapFS{"get-deployment-status.json": {Data: []byte(`{"DeploymentStatus":"Success"}`)}},
			"list-deployments.json", "", "file does not exist"},
		{"greengrass v1 bad group arn", fstest.MapFS{"get-deployment-status.json": {Data: []byte(`{"DeploymentStatus":"Success"}`)},
			"list-deployments.json": {Data: []byte(`{"Deployments":[{"GroupArn":"g-1","CreatedAt":"2026-11-20T09:12:04Z"}]}`)}},
			"list-deployments.json", "Deployments[0].GroupArn", "/greengrass/groups/GROUP_ID"},
		{"greengrass v1 bad core", fstest.MapFS{"groups/g1/get-deployment-status.json": {Data: []byte(`{"DeploymentStatus":"Success","UpdatedAt":"soon"}`)}},
			"groups/g1/get-deployment-status.json", "UpdatedAt", "ISO 8601"},
		{"opsworks running", fstest.MapFS{"describe-deployments.json": {Data: []byte(`{"Deployments":[{"DeploymentId":"d","Status":"running"}]}`)},
			"describe-commands.json": {Data: []byte(`{"Commands":[]}`)}}, "describe-deployments.json", "Deployments[0].Status", "had not ended"},
		{"opsworks bad command status", fstest.MapFS{"describe-deployments.json": {Data: []byte(`{"Deployments":[{"DeploymentId":"d","Status":"failed"}]}`)},
			"describe-commands.json": {Data: []byte(`{"Commands":[{"InstanceId":"i-1","DeploymentId":"d","Status":"exploded"}]}`)}},
			"describe-commands.json", "Commands[0].Status", `"exploded"`},
		{"opsworks exit code text", fstest.MapFS{"describe-deployments.json": {Data: []byte(`{"Deployments":[{"DeploymentId":"d","Status":"failed"}]}`)},
			"describe-commands.json": {Data: []byte(`{"Commands":[{"InstanceId":"i-1","Status":"failed","ExitCode":"three"}]}`)}},
			"describe-commands.json", "Commands.ExitCode", "a JSON string, where the CLI writes a number"},
		{"opsworks no commands file", fstest.MapFS{"describe-deployments.json": {Data: []byte(`{"Deployments":[{"DeploymentId":"d","Status":"failed"}]}`)}},
			"describe-commands.json", "", "file does not exist"},
		{"appconfig not ended", fstest.MapFS{"get-deployment.json": {Data: []byte(`{"ApplicationId":"a","State":"BAKING","GrowthFactor":20}`)}},
			"get-deployment.json", "State", "had not ended"},
		{"appconfig bad growth", fstest.MapFS{"get-deployment.json": {Data: []byte(`{"ApplicationId":"a","State":"COMPLETE","GrowthFactor":0}`)}},
			"get-deployment.json", "GrowthFactor", "1.0 to 100.0"},
		{"appconfig bad event", fstest.MapFS{"get-deployment.json": {Data: []byte(`{"ApplicationId":"a","State":"COMPLETE","GrowthFactor":20,"EventLog":[{"EventType":"EXPLODED"}]}`)}},
			"get-deployment.json", "EventLog[0].EventType", `"EXPLODED"`},
		{"appconfig log oldest first", fstest.MapFS{"get-deployment.json": {Data: []byte(`{"ApplicationId":"a","State":"COMPLETE","GrowthFactor":20,"EventLog":[
			{"EventType":"DEPLOYMENT_STARTED","OccurredAt":"2026-11-22T10:00:00Z"},{"EventType":"DEPLOYMENT_COMPLETED","OccurredAt":"2026-11-22T10:10:00Z"}]}`)}},
			"get-deployment.json", "EventLog[0].OccurredAt", "newest first"},
		{"appconfig bad alarm time", fstest.MapFS{"get-deployment.json": {Data: []byte(`{"ApplicationId":"a","State":"COMPLETE","GrowthFactor":20,"StartedAt":"2026-11-22T10:00:00Z"}`)},
			"describe-alarm-history.json": {Data: []byte(`{"AlarmHistoryItems":[{"Timestamp":"noon"}]}`)}},
			"describe-alarm-history.json", "AlarmHistoryItems[0].Timestamp", "ISO 8601"},
		{"greengrass bad abort action", fstest.MapFS{"get-deployment.json": {Data: []byte(`{"deploymentId":"d","deploymentStatus":"ACTIVE","iotJobConfiguration":{"abortConfig":{"criteriaList":[{"action":"PAUSE"}]}}}`)}},
			"get-deployment.json", "iotJobConfiguration.abortConfig.criteriaList[0].action", "CANCEL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := replay.ReadFS(tc.fs)
			var re *dialect.RecordError
			if !errors.As(err, &re) {
				t.Fatalf("err %v, want a *dialect.RecordError", err)
			}
			if re.File != tc.file || re.Field != tc.field || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("err %q (file %q field %q), want file %q field %q saying %q", err, re.File, re.Field, tc.file, tc.field, tc.says)
			}
		})
	}
}

// TestRecordUnmappedIsNamed: members fleetlab does not read and failure codes it cannot reproduce are named.
func TestRecordUnmappedIsNamed(t *testing.T) {
	rec, err := replay.ReadFS(fstest.MapFS{"describe-deployment-job.json": {Data: []byte(`{
		"arn": "arn:aws:robomaker:us-west-2:111111111111:deployment-job/deployment-x", "status": "Failed",
		"failureCode": "BadPermissionError", "newMember": 1,
		"robotDeploymentSummary": [{"arn": "arn:aws:robomaker:us-west-2:1:robot/r1/1", "status": "Failed",
			"failureCode": "BadPermissionError", "shinyField": true}]}`)},
		"logs/r1.log":    {Data: []byte("greengrass nucleus started\n")},
		"logs/ghost.log": {Data: []byte("x\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(rec.Unmapped, "\n")
	for _, want := range []string{"describe-deployment-job.json: newMember: not read", "robotDeploymentSummary[0].shinyField",
		"robot r1: failure code BadPermissionError", "describe-fleet.json: absent", "logs/r1.log: kept for reading", "logs/ghost.log: no device ghost"} {
		if !strings.Contains(all, want) {
			t.Errorf("unmapped lacks %q:\n%s", want, all)
		}
	}
}

// TestRecordUnmappedIsNamedDialects: the Greengrass V1, OpsWorks and AppConfig readers name what they read past.
func TestRecordUnmappedIsNamedDialects(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   fstest.MapFS
		want []string
	}{
		{"greengrass", fstest.MapFS{
			"get-deployment-status.json": {Data: []byte(`{"DeploymentStatus":"Failure","DeploymentType":"Redeployment","Extra":1,
				"ErrorDetails":[{"DetailedErrorCode":"GG-LAMBDA-CRASH","DetailedErrorMessage":"boom"}]}`)},
			"list-deployments.json": {Data: []byte(`{"Deployments":[{"GroupArn":"arn:aws:greengrass:r:1:/greengrass/groups/g-1/versions/v","CreatedAt":"2026-11-20T09:12:04Z"}]}`)}},
			[]string{"get-deployment-status.json: Extra: not read", "DeploymentType: Redeployment", "get-core-definition-version.json: absent",
				"core core-g-1: failure GG-LAMBDA-CRASH (boom): no fault"}},
		{"opsworks", fstest.MapFS{
			"describe-deployments.json": {Data: []byte(`{"Deployments":[{"DeploymentId":"d","Status":"failed","Command":{"Name":"execute_recipes","Args":{"recipes":["x"]}},"InstanceIds":["i-1","i-2"],"Shiny":true}]}`)},
			"describe-commands.json":    {Data: []byte(`{"Commands":[{"InstanceId":"i-1","DeploymentId":"d","Status":"failed","ExitCode":1},{"InstanceId":"i-3","DeploymentId":"d","Status":"skipped"}]}`)}},
			[]string{"Deployments[0].Shiny: not read", "Command.Name: execute_recipes", "Command.Args: not reproduced", "describe-instances.json: absent",
				"i-2 has no command", "Status: skipped on instance-i-3", "instance instance-i-1: exit-1 and no log"}},
		{"appconfig", fstest.MapFS{
			"get-deployment.json": {Data: []byte(`{"ApplicationId":"a","State":"ROLLED_BACK","GrowthFactor":50,"KmsKeyArn":"k","Surprise":"x","EventLog":[
				{"EventType":"ROLLBACK_STARTED","TriggeredBy":"INTERNAL_ERROR","OccurredAt":"2026-11-22T10:01:00Z","ActionInvocations":[{"ExtensionIdentifier":"e"}]},
				{"EventType":"DEPLOYMENT_STARTED","OccurredAt":"2026-11-22T10:00:00Z"}]}`)}},
			[]string{"get-deployment.json: Surprise: not read", "EventLog[0].ActionInvocations: extensions", "a rollback by INTERNAL_ERROR", "content is not in the record"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := replay.ReadFS(tc.fs)
			if err != nil {
				t.Fatal(err)
			}
			all := strings.Join(rec.Unmapped, "\n")
			for _, want := range tc.want {
				if !strings.Contains(all, want) {
					t.Errorf("unmapped lacks %q:\n%s", want, all)
				}
			}
		})
	}
}

// FuzzReadRecord: whatever a record's files hold — a RoboMaker record's, a Greengrass V2, Greengrass V1,
// OpsWorks or AppConfig one's — reading it returns a record or a *dialect.RecordError, and a record read builds a
// scenario the harness (or the AppConfig lab) accepts or refuses with an error, never a panic.
func FuzzReadRecord(f *testing.F) {
	// The record's files, by the fuzz argument they are: get-deployment.json is Greengrass V2's and AppConfig's.
	files := []string{"describe-deployment-job.json", "describe-fleet.json", "get-deployment.json",
		"list-effective-deployments/core-1.json", "get-deployment-status.json", "list-deployments.json",
		"get-core-definition-version.json", "describe-deployments.json", "describe-commands.json",
		"describe-instances.json", "describe-alarm-history.json"}
	read := func(dir, name string) []byte {
		if name == "list-effective-deployments/core-1.json" {
			effs, _ := filepath.Glob(filepath.Join(dir, "list-effective-deployments", "*.json"))
			if len(effs) == 0 {
				return nil
			}
			name = strings.TrimPrefix(effs[len(effs)-1], dir+string(filepath.Separator))
		}
		if strings.HasPrefix(name, "get-deployment-status") || strings.HasPrefix(name, "list-deployments") || strings.HasPrefix(name, "get-core-") {
			groups, _ := filepath.Glob(filepath.Join(dir, "groups", "*", name))
			if len(groups) > 0 {
				b, _ := os.ReadFile(groups[len(groups)-1])
				return b
			}
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil
		}
		return b
	}
	dirs, _ := filepath.Glob("../../fixtures/records/*")
	for _, dir := range dirs {
		var seed [11][]byte
		for i, name := range files {
			seed[i] = read(dir, name)
		}
		f.Add(seed[0], seed[1], seed[2], seed[3], seed[4], seed[5], seed[6], seed[7], seed[8], seed[9], seed[10])
	}
	f.Add([]byte(`{"status":"Succeeded","robotDeploymentSummary":[{"arn":"arn:aws:robomaker:r:1:robot/a/1","status":"InSync"}]}`), []byte(`{}`),
		[]byte(nil), []byte(nil), []byte(nil), []byte(nil), []byte(nil), []byte(nil), []byte(nil), []byte(nil), []byte(nil))
	f.Add([]byte(nil), []byte(nil), []byte(`{"ApplicationId":"a","State":"COMPLETE","GrowthFactor":100,"EventLog":[{"EventType":"DEPLOYMENT_STARTED","OccurredAt":1}]}`),
		[]byte(nil), []byte(`{"DeploymentStatus":"Failure"}`), []byte(`{"Deployments":[{"GroupArn":"arn:aws:greengrass:r:1:/greengrass/groups/g"}]}`),
		[]byte(nil), []byte(`{"Deployments":[{"Status":"failed"}]}`), []byte(`{"Commands":[{"InstanceId":"i","Status":"failed","ExitCode":3}]}`), []byte(nil), []byte(nil))
	f.Fuzz(func(t *testing.T, job, fl, dep, eff, ggStatus, ggList, ggCore, owDeps, owCmds, owInstances, alarms []byte) {
		fsys := fstest.MapFS{}
		for i, b := range [][]byte{job, fl, dep, eff, ggStatus, ggList, ggCore, owDeps, owCmds, owInstances, alarms} {
			if b != nil {
				fsys[files[i]] = &fstest.MapFile{Data: b}
			}
		}
		rec, err := replay.ReadFS(fsys)
		if err != nil {
			if !errors.As(err, new(*dialect.RecordError)) {
				t.Fatalf("error %T %v, want a *dialect.RecordError", err, err)
			}
			return
		}
		if rec.AppConfig != nil {
			_ = rec.AppConfigSpec().Validate()
			return
		}
		_ = rec.Spec().Validate()
	})
}
