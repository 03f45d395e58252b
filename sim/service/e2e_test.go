package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/sim/awsapi/sdkhttp"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
	"github.com/fleetlab/fleetlab/sim/service"
)

// world is a running service with a RoboMaker client and an application version to deploy.
type world struct {
	t       testing.TB
	svc     *service.Service
	rm      *robomaker.Client
	app     string
	version string
}

func start(t testing.TB, dir string, scale float64) *world {
	t.Helper()
	svc, err := service.New(service.Options{Dir: dir, Clock: clock.NewScaled(nil, scale)})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start("127.0.0.1:0", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	rm := robomaker.New(robomaker.Options{BaseEndpoint: aws.String(svc.Endpoint()), HTTPClient: sdkhttp.Client(nil), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AK", "SK", ""), RetryMaxAttempts: 1})
	return &world{t: t, svc: svc, rm: rm}
}

// setup puts the bundle in the artifact store, creates the application, a fleet of n robots, and returns the
// fleet ARN.
func (w *world) setup(n int) string {
	w.t.Helper()
	if err := w.svc.Artifacts.CreateBucket("bundles"); err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.svc.Artifacts.Put("bundles", "hello.tar.gz", strings.NewReader("bundle bytes")); err != nil {
		w.t.Fatal(err)
	}
	return w.fleetOf(n)
}

// fleetOf creates the application from the bundle already stored, and a fleet of n robots; it returns the fleet
// ARN.
func (w *world) fleetOf(n int) string {
	t := w.t
	t.Helper()
	ctx := context.Background()
	app, err := w.rm.CreateRobotApplication(ctx, &robomaker.CreateRobotApplicationInput{Name: aws.String("hello"),
		RobotSoftwareSuite: &types.RobotSoftwareSuite{Name: types.RobotSoftwareSuiteTypeGeneral},
		Sources: []types.SourceConfig{{S3Bucket: aws.String("bundles"), S3Key: aws.String("hello.tar.gz"),
			Architecture: types.ArchitectureX8664}}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := w.rm.CreateRobotApplicationVersion(ctx, &robomaker.CreateRobotApplicationVersionInput{
		Application: app.Arn, S3Etags: nil})
	if err != nil {
		t.Fatal(err)
	}
	w.app, w.version = *app.Arn, *v.Version
	fleet, err := w.rm.CreateFleet(ctx, &robomaker.CreateFleetInput{Name: aws.String("lab")})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		r, err := w.rm.CreateRobot(ctx, &robomaker.CreateRobotInput{Name: aws.String(robotName(i)),
			Architecture: types.ArchitectureX8664, GreengrassGroupId: aws.String("gg-1")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.rm.RegisterRobot(ctx, &robomaker.RegisterRobotInput{Fleet: fleet.Arn, Robot: r.Arn}); err != nil {
			t.Fatal(err)
		}
	}
	return *fleet.Arn
}

func robotName(i int) string { return fmt.Sprintf("robot-%02d", i) }

func (w *world) deploy(fleet string, cfg *types.DeploymentConfig) string {
	w.t.Helper()
	out, err := w.rm.CreateDeploymentJob(context.Background(), &robomaker.CreateDeploymentJobInput{
		Fleet: aws.String(fleet), DeploymentConfig: cfg,
		DeploymentApplicationConfigs: []types.DeploymentApplicationConfig{{Application: aws.String(w.app),
			ApplicationVersion: aws.String(w.version), LaunchConfig: &types.DeploymentLaunchConfig{
				PackageName: aws.String("hello_robot"), LaunchFile: aws.String("launch.sh"),
				PreLaunchFile: aws.String("pre.sh")}}}})
	if err != nil {
		w.t.Fatal(err)
	}
	return *out.Arn
}

func (w *world) describe(job string) *robomaker.DescribeDeploymentJobOutput {
	w.t.Helper()
	out, err := w.rm.DescribeDeploymentJob(context.Background(), &robomaker.DescribeDeploymentJobInput{Job: aws.String(job)})
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}

// waitJob polls the job until it reaches a final status, with a deadline.
func (w *world) waitJob(job string) *robomaker.DescribeDeploymentJobOutput {
	w.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := w.describe(job)
		switch out.Status {
		case types.DeploymentStatusSucceeded, types.DeploymentStatusFailed, types.DeploymentStatusCanceled:
			return out
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("job still %s after 30 s", out.Status)
		}
		time.Sleep(5 * time.Millisecond) // polling an external API for a condition, with a deadline
	}
}

// device drives one robot's side of the IoT Jobs data plane over HTTP.
type device struct {
	t        testing.TB
	endpoint string
	name     string
}

func (w *world) device(name string) *device { return &device{w.t, w.svc.Endpoint(), name} }

// doJSON sends in as JSON and decodes the answer into out (when not nil); anything but 200 is an error.
func doJSON(method, url string, in, out any) error {
	b, _ := json.Marshal(in)
	req, err := http.NewRequest(method, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s %s: status %d", method, url, resp.StatusCode)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

func (d *device) call(method, path string, in, out any) int {
	d.t.Helper()
	b, _ := json.Marshal(in)
	req, _ := http.NewRequest(method, d.endpoint+path, bytes.NewReader(b))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == 200 {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// next starts the robot's pending execution; it returns "" when there is none.
func (d *device) next() (string, rmwire.Document) {
	d.t.Helper()
	var out wire.StartNextPendingJobExecutionResponse
	if s := d.call("PUT", "/things/"+d.name+"/jobs/$next", wire.StartNextPendingJobExecutionRequest{
		StatusDetails: map[string]string{wire.DetailStep: rmwire.StepValidating}}, &out); s != 200 {
		d.t.Fatalf("%s: start next: %d", d.name, s)
	}
	if out.Execution == nil {
		return "", rmwire.Document{}
	}
	var env wire.Document
	var doc rmwire.Document
	if err := json.Unmarshal([]byte(out.Execution.JobDocument), &env); err != nil || env.Kind != rmwire.Kind {
		d.t.Fatalf("%s: job document %q: %v", d.name, out.Execution.JobDocument, err)
	}
	json.Unmarshal(env.Payload, &doc)
	return out.Execution.JobID, doc
}

func (d *device) report(job, status string, details map[string]string) {
	d.t.Helper()
	if s := d.call("POST", "/things/"+d.name+"/jobs/"+job, wire.UpdateJobExecutionRequest{Status: status,
		StatusDetails: details}, nil); s != 200 {
		d.t.Fatalf("%s: update %s: %d", d.name, status, s)
	}
}

// run carries a job out through every step, failing at failAt with code (code "" succeeds).
func (d *device) run(job, failAt, code string) {
	for _, step := range []string{rmwire.StepDownloadingExtracting, rmwire.StepExecutingDownloadCondition,
		rmwire.StepExecutingPreLaunch, rmwire.StepLaunching, rmwire.StepExecutingPostLaunch} {
		if step == failAt {
			d.report(job, wire.StatusFailed, map[string]string{wire.DetailStep: step, wire.DetailFailureCode: code,
				wire.DetailReason: "script exited 3"})
			return
		}
		d.report(job, wire.StatusInProgress, map[string]string{wire.DetailStep: step})
	}
	d.report(job, wire.StatusSucceeded, map[string]string{wire.DetailStep: rmwire.StepFinished})
}

func summary(out *robomaker.DescribeDeploymentJobOutput) map[string]string {
	m := map[string]string{}
	for _, r := range out.RobotDeploymentSummary {
		name := strings.Split(*r.Arn, "/")[1]
		s := string(r.Status)
		if r.FailureCode != "" {
			s += "/" + string(r.FailureCode)
		}
		m[name] = s
	}
	return m
}

func TestCleanJobEveryRobotInSync(t *testing.T) {
	w := start(t, t.TempDir(), 1)
	fleet := w.setup(4)
	job := w.deploy(fleet, &types.DeploymentConfig{ConcurrentDeploymentPercentage: aws.Int32(50)})
	for done := 0; done < 4; {
		progressed := false
		for i := 0; i < 4; i++ {
			d := w.device(robotName(i))
			id, doc := d.next()
			if id == "" {
				continue
			}
			if doc.Launch.LaunchFile != "launch.sh" || len(doc.Sources) != 1 || doc.Sources[0].ETag == "" {
				t.Fatalf("job document %+v", doc)
			}
			d.run(id, "", "")
			done++
			progressed = true
		}
		if !progressed {
			t.Fatal("no robot had work while the job was unfinished")
		}
	}
	out := w.waitJob(job)
	if out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("job %s %s", out.Status, out.FailureCode)
	}
	for name, s := range summary(out) {
		if s != string(types.RobotStatusInSync) {
			t.Errorf("%s is %s, want InSync", name, s)
		}
	}
	for _, r := range out.RobotDeploymentSummary {
		if r.ProgressDetail == nil || r.ProgressDetail.CurrentProgress != types.RobotDeploymentStepFinishedStep {
			t.Errorf("%s progress %+v", *r.Arn, r.ProgressDetail)
		}
	}
}

func TestFailureThresholdBreached(t *testing.T) {
	w := start(t, t.TempDir(), 1)
	fleet := w.setup(10)
	job := w.deploy(fleet, &types.DeploymentConfig{ConcurrentDeploymentPercentage: aws.Int32(30),
		FailureThresholdPercentage: aws.Int32(15)})
	// 30 % of 10: robots 00-02 are released. 00 succeeds, 01 and 02 fail their pre-launch script.
	ids := map[int]string{}
	for i := 0; i < 10; i++ {
		if id, _ := w.device(robotName(i)).next(); id != "" {
			ids[i] = id
		}
	}
	if len(ids) != 3 {
		t.Fatalf("%d robots released at 30 %% of 10, want 3", len(ids))
	}
	w.device(robotName(0)).run(ids[0], "", "")
	// The freed slot released robot-03, which starts and is still deploying when the threshold trips.
	id3, _ := w.device(robotName(3)).next()
	if id3 == "" {
		t.Fatal("robot-03 was not released into the freed slot")
	}
	w.device(robotName(1)).run(ids[1], rmwire.StepExecutingPreLaunch, rmwire.CodePreLaunchFileFailure)
	w.device(robotName(2)).run(ids[2], rmwire.StepExecutingPreLaunch, rmwire.CodePreLaunchFileFailure)
	out := w.describe(job)
	if out.Status != types.DeploymentStatusFailed || out.FailureCode != types.DeploymentJobErrorCodeFailureThresholdBreached {
		t.Fatalf("job %s %s, want Failed FailureThresholdBreached", out.Status, out.FailureCode)
	}
	want := map[string]string{
		"robot-00": "InSync",
		"robot-01": "Failed/PreLaunchFileFailure",
		"robot-02": "Failed/PreLaunchFileFailure",
		"robot-03": "Deploying",
	}
	for i := 4; i < 10; i++ {
		want[robotName(i)] = "Failed/RobotDeploymentAborted"
	}
	got := summary(out)
	for name, s := range want {
		if got[name] != s {
			t.Errorf("%s is %s, want %s", name, got[name], s)
		}
	}
	// An aborted robot has nothing to do.
	if id, _ := w.device(robotName(9)).next(); id != "" {
		t.Fatalf("robot-09 received %s after the abort", id)
	}
}

func TestSilentRobotEndsNoResponse(t *testing.T) {
	// At 600x, the 60 s robot timeout is 0.1 s of wall time.
	w := start(t, t.TempDir(), 600)
	fleet := w.setup(2)
	job := w.deploy(fleet, &types.DeploymentConfig{ConcurrentDeploymentPercentage: aws.Int32(100),
		RobotDeploymentTimeoutInSeconds: aws.Int64(60)})
	id, _ := w.device(robotName(0)).next()
	w.device(robotName(0)).run(id, "", "")
	// robot-01 never answers.
	out := w.waitJob(job)
	got := summary(out)
	if got["robot-00"] != "InSync" || got["robot-01"] != "NoResponse/RobotDeploymentNoResponse" {
		t.Fatalf("robots %v", got)
	}
	if out.Status != types.DeploymentStatusFailed {
		t.Fatalf("job %s, want Failed", out.Status)
	}
}
