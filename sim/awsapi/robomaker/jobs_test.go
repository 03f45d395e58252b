package robomaker

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"

	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
	"github.com/fleetlab/fleetlab/sim/engine"
)

func summaryOf(out *robomaker.DescribeDeploymentJobOutput) map[string]types.RobotDeployment {
	m := map[string]types.RobotDeployment{}
	for _, r := range out.RobotDeploymentSummary {
		m[aws.ToString(r.Arn)] = r
	}
	return m
}

func TestDeploymentJobLifecycle(t *testing.T) {
	e := newEnv(t)
	f, robots := e.fleetWith("lab", 3)
	app := e.app("hello")
	v := e.version(app)
	e.clock.Advance(time.Minute)
	created := e.clock.Now()
	out := e.job(f, app, v, &types.DeploymentConfig{ConcurrentDeploymentPercentage: aws.Int32(34),
		DownloadConditionFile: &types.S3Object{Bucket: aws.String("scripts"), Key: aws.String("condition.sh")}})
	job := aws.ToString(out.Arn)
	if !jobARNPattern.MatchString(job) || aws.ToString(out.Fleet) != f || out.Status != types.DeploymentStatusPending ||
		!out.CreatedAt.Equal(created) || len(out.DeploymentApplicationConfigs) != 1 ||
		aws.ToString(out.DeploymentApplicationConfigs[0].LaunchConfig.LaunchFile) != "hello.launch" ||
		aws.ToInt32(out.DeploymentConfig.ConcurrentDeploymentPercentage) != 34 ||
		aws.ToInt64(out.DeploymentConfig.RobotDeploymentTimeoutInSeconds) != 18000 {
		t.Fatalf("CreateDeploymentJob = %+v", out)
	}

	// The engine deployment and its job document.
	id := name(job)
	d, err := e.engine.Deployment(id)
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != Kind || d.Group != f || d.PacingSpec != engine.Batch(34) || d.Timeouts.Execution != 5*time.Hour ||
		len(d.Abort) != 0 || d.Initial != 3 {
		t.Fatalf("deployment = %+v", d)
	}
	var doc wire.Document
	var payload rmwire.Document
	if err := json.Unmarshal(d.Document, &doc); err != nil || doc.Kind != rmwire.Kind {
		t.Fatalf("document %s: %v", d.Document, err)
	}
	if err := json.Unmarshal(doc.Payload, &payload); err != nil {
		t.Fatal(err)
	}
	if payload.Job != job || payload.Fleet != f || payload.Application != app || payload.Name != "hello" ||
		payload.Version != "1" || len(payload.Sources) != 2 || payload.Sources[1] != (rmwire.Source{
		Architecture: "ARM64", Bucket: "bundles", Key: "app-arm.tar", ETag: `"22222222222222222222222222222222"`}) ||
		payload.Launch.PackageName != "hello_pkg" || payload.Launch.PreLaunchFile != "pre.sh" ||
		payload.Launch.EnvironmentVariables["ROS_DOMAIN_ID"] != "7" || payload.TimeoutSeconds != 18000 ||
		payload.DownloadCondition == nil || *payload.DownloadCondition != (rmwire.Object{Bucket: "scripts",
		Key: "condition.sh", ETag: `"33333333333333333333333333333333"`}) {
		t.Fatalf("job document = %+v", payload)
	}

	// Two of three robots released (ceil(3·34%) = 2), none started: Preparing.
	desc := e.describe(job)
	if desc.Status != types.DeploymentStatusPreparing || len(desc.RobotDeploymentSummary) != 3 {
		t.Fatalf("job = %s with %d robots", desc.Status, len(desc.RobotDeploymentSummary))
	}
	for _, r := range desc.RobotDeploymentSummary {
		if r.Status != types.RobotStatusPendingNewDeployment {
			t.Errorf("robot %s = %s", aws.ToString(r.Arn), r.Status)
		}
	}
	if got := e.robotStatus(robots[2]); got != types.RobotStatusPendingNewDeployment {
		t.Errorf("unreleased robot: %s", got)
	}

	e.act(robots[0], job, engine.ExecInProgress, map[string]string{wire.DetailStep: rmwire.StepValidating})
	e.clock.Advance(time.Second)
	e.act(robots[0], job, engine.ExecInProgress, map[string]string{wire.DetailStep: rmwire.StepDownloadingExtracting,
		wire.DetailPercentDone: "42.5", wire.DetailETA: "17"})
	desc = e.describe(job)
	r0 := summaryOf(desc)[robots[0]]
	if desc.Status != types.DeploymentStatusInProgress || r0.Status != types.RobotStatusDeploying ||
		r0.ProgressDetail.CurrentProgress != types.RobotDeploymentStepDownloadingExtractingStep ||
		aws.ToFloat32(r0.ProgressDetail.PercentDone) != 42.5 || aws.ToInt32(r0.ProgressDetail.EstimatedTimeRemainingSeconds) != 17 ||
		aws.ToString(r0.ProgressDetail.TargetResource) != job || !r0.DeploymentStartTime.Equal(created) || r0.DeploymentFinishTime != nil {
		t.Fatalf("deploying robot = %+v %+v", r0, r0.ProgressDetail)
	}
	if got := e.robotStatus(robots[0]); got != types.RobotStatusDeploying {
		t.Errorf("DescribeRobot while deploying: %s", got)
	}

	e.act(robots[0], job, engine.ExecSucceeded, map[string]string{wire.DetailStep: rmwire.StepFinished})
	finished := e.clock.Now()
	desc = e.describe(job)
	r0 = summaryOf(desc)[robots[0]]
	if r0.Status != types.RobotStatusInSync || r0.ProgressDetail.CurrentProgress != types.RobotDeploymentStepFinishedStep ||
		!r0.DeploymentFinishTime.Equal(finished) {
		t.Fatalf("finished robot = %+v", r0)
	}
	// The freed slot went to the third robot.
	if x, _ := e.engine.Execution(id, name(robots[2])); !x.Released {
		t.Fatal("third robot not released after the first finished")
	}
	e.succeed(robots[1], job)
	e.succeed(robots[2], job)
	desc = e.describe(job)
	if desc.Status != types.DeploymentStatusSucceeded || desc.FailureCode != "" {
		t.Fatalf("finished job = %s %s", desc.Status, desc.FailureCode)
	}
	for _, r := range robots {
		rd, err := e.c.DescribeRobot(e.ctx, &robomaker.DescribeRobotInput{Robot: aws.String(r)})
		if err != nil || rd.Status != types.RobotStatusInSync || aws.ToString(rd.LastDeploymentJob) != job ||
			!rd.LastDeploymentTime.Equal(created) {
			t.Errorf("robot %s after the job = %+v, %v", r, rd, err)
		}
	}
	fd, err := e.c.DescribeFleet(e.ctx, &robomaker.DescribeFleetInput{Fleet: aws.String(f)})
	if err != nil || fd.LastDeploymentStatus != types.DeploymentStatusSucceeded || aws.ToString(fd.LastDeploymentJob) != job ||
		!fd.LastDeploymentTime.Equal(created) || fd.Robots[0].Status != types.RobotStatusInSync {
		t.Fatalf("fleet after the job = %+v, %v", fd, err)
	}
	lf, err := e.c.ListFleets(e.ctx, &robomaker.ListFleetsInput{})
	if err != nil || lf.FleetDetails[0].LastDeploymentStatus != types.DeploymentStatusSucceeded {
		t.Fatalf("ListFleets = %+v, %v", lf, err)
	}
}

func TestCreateDeploymentJobErrors(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Quotas.ConcurrentJobs = 2 })
	f, _ := e.fleetWith("lab", 2)
	empty := e.fleet("empty")
	app := e.app("hello")
	v := e.version(app)
	create := func(fleet string, configs []types.DeploymentApplicationConfig, cfg *types.DeploymentConfig) error {
		_, err := e.c.CreateDeploymentJob(e.ctx, &robomaker.CreateDeploymentJobInput{Fleet: aws.String(fleet),
			DeploymentApplicationConfigs: configs, DeploymentConfig: cfg})
		return err
	}
	notFound := []struct {
		name  string
		err   error
		match string
	}{
		{"unknown fleet", create(f+"0", appConfigs(app, v), nil), "Fleet"},
		{"unknown application", create(f, appConfigs(app+"0", v), nil), "Robot application"},
		{"unknown version", create(f, appConfigs(app, "7"), nil), "Version 7"},
	}
	for _, tc := range notFound {
		t.Run(tc.name, func(t *testing.T) { expectError[*types.ResourceNotFoundException](t, tc.err, 400, tc.match) })
	}
	two := append(appConfigs(app, v), appConfigs(app, v)...)
	invalid := []struct {
		name  string
		err   error
		match string
	}{
		{"fleet without robots", create(empty, appConfigs(app, v), nil), "no robots"},
		{"unversioned application", create(f, appConfigs(app, "$LATEST"), nil),
			"at 'deploymentApplicationConfigs.1.member.applicationVersion' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9]*"},
		{"two applications", create(f, two, nil),
			"at 'deploymentApplicationConfigs' failed to satisfy constraint: Member must have length less than or equal to 1"},
		{"timeout too short", create(f, appConfigs(app, v), &types.DeploymentConfig{RobotDeploymentTimeoutInSeconds: aws.Int64(59)}),
			"between 60"},
		{"timeout too long", create(f, appConfigs(app, v), &types.DeploymentConfig{RobotDeploymentTimeoutInSeconds: aws.Int64(7*24*3600 + 1)}),
			"(7 days)"},
		{"percentage 0", create(f, appConfigs(app, v), &types.DeploymentConfig{ConcurrentDeploymentPercentage: aws.Int32(0)}),
			"at 'deploymentConfig.concurrentDeploymentPercentage' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{"threshold 101", create(f, appConfigs(app, v), &types.DeploymentConfig{FailureThresholdPercentage: aws.Int32(101)}),
			"Member must have value less than or equal to 100"},
		{"missing download condition", create(f, appConfigs(app, v), &types.DeploymentConfig{
			DownloadConditionFile: &types.S3Object{Bucket: aws.String("scripts"), Key: aws.String("nope.sh")}}),
			"s3://scripts/nope.sh"},
		{"bad environment variable", create(f, []types.DeploymentApplicationConfig{{Application: aws.String(app),
			ApplicationVersion: aws.String(v), LaunchConfig: &types.DeploymentLaunchConfig{PackageName: aws.String("p"),
				LaunchFile: aws.String("l"), EnvironmentVariables: map[string]string{"lower": "x"}}}}, nil),
			"at 'deploymentApplicationConfigs.1.member.launchConfig.environmentVariables' failed to satisfy constraint: Map keys must satisfy constraint"},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) { expectError[*types.InvalidParameterException](t, tc.err, 400, tc.match) })
	}
	status, code, body := e.raw("POST", "/createDeploymentJob", `{"fleet":"`+f+`","deploymentApplicationConfigs":[]}`)
	if status != 400 || code != "InvalidParameterException" || !strings.Contains(body, "Value null at 'clientRequestToken'") {
		t.Errorf("no token = %d %s %s", status, code, body)
	}

	// Nothing above left a job behind.
	if jobs, err := e.c.ListDeploymentJobs(e.ctx, &robomaker.ListDeploymentJobsInput{}); err != nil || len(jobs.DeploymentJobs) != 0 {
		t.Fatalf("jobs after refused requests: %+v, %v", jobs, err)
	}

	first := e.job(f, app, v, nil)
	err := create(f, appConfigs(app, v), nil)
	expectError[*types.ConcurrentDeploymentException](t, err, 400, aws.ToString(first.Arn))
	other, _ := e.fleetWith("other", 1)
	e.job(other, app, v, nil)
	third, _ := e.fleetWith("third", 1)
	err = create(third, appConfigs(app, v), nil)
	expectError[*types.LimitExceededException](t, err, 400, "limit of 2 concurrent deployment jobs")
}

func TestCreateDeploymentJobIdempotency(t *testing.T) {
	e := newEnv(t)
	f, _ := e.fleetWith("lab", 1)
	app := e.app("hello")
	v := e.version(app)
	in := &robomaker.CreateDeploymentJobInput{Fleet: aws.String(f), ClientRequestToken: aws.String("token-1"),
		DeploymentApplicationConfigs: appConfigs(app, v), Tags: map[string]string{"run": "1"}}
	first, err := e.c.CreateDeploymentJob(e.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	again, err := e.c.CreateDeploymentJob(e.ctx, in)
	if err != nil {
		t.Fatalf("same token, same request: %v", err)
	}
	if aws.ToString(again.Arn) != aws.ToString(first.Arn) || !again.CreatedAt.Equal(*first.CreatedAt) || again.Tags["run"] != "1" {
		t.Fatalf("replay = %+v, first = %+v", again, first)
	}
	changed := *in
	changed.DeploymentConfig = &types.DeploymentConfig{ConcurrentDeploymentPercentage: aws.Int32(50)}
	_, err = e.c.CreateDeploymentJob(e.ctx, &changed)
	expectError[*types.IdempotentParameterMismatchException](t, err, 400, "same client token")

	// A token of a refused request is not consumed.
	other, _ := e.fleetWith("other", 1)
	busy := &robomaker.CreateDeploymentJobInput{Fleet: aws.String(f), ClientRequestToken: aws.String("token-2"),
		DeploymentApplicationConfigs: appConfigs(app, v)}
	_, err = e.c.CreateDeploymentJob(e.ctx, busy)
	expectError[*types.ConcurrentDeploymentException](t, err, 400, "")
	busy.Fleet = aws.String(other)
	if _, err := e.c.CreateDeploymentJob(e.ctx, busy); err != nil {
		t.Fatalf("token of a refused request: %v", err)
	}
	if jobs, _ := e.c.ListDeploymentJobs(e.ctx, &robomaker.ListDeploymentJobsInput{}); len(jobs.DeploymentJobs) != 2 {
		t.Fatalf("%d jobs, want 2", len(jobs.DeploymentJobs))
	}
}

func TestFailureThresholdBreached(t *testing.T) {
	e := newEnv(t)
	f, robots := e.fleetWith("lab", 4)
	app := e.app("hello")
	v := e.version(app)
	job := aws.ToString(e.job(f, app, v, &types.DeploymentConfig{ConcurrentDeploymentPercentage: aws.Int32(50),
		FailureThresholdPercentage: aws.Int32(50)}).Arn)
	d, _ := e.engine.Deployment(name(job))
	want := []engine.AbortCriterion{{FailureTypes: []engine.ExecStatus{engine.ExecFailed, engine.ExecTimedOut,
		engine.ExecRejected}, Percent: 50, MinExecuted: 1, OfTotal: true, AtLeast: true}}
	if len(d.Abort) != 1 || d.Abort[0].Percent != want[0].Percent || !d.Abort[0].OfTotal || !d.Abort[0].AtLeast ||
		d.Abort[0].MinExecuted != 1 || len(d.Abort[0].FailureTypes) != 3 {
		t.Fatalf("abort criteria = %+v", d.Abort)
	}

	fail := map[string]string{wire.DetailStep: rmwire.StepDownloadingExtracting,
		wire.DetailFailureCode: rmwire.CodeExtractingBundleFailure, wire.DetailReason: "tar: unexpected EOF"}
	e.act(robots[0], job, engine.ExecFailed, fail)
	if got := e.describe(job).Status; got != types.DeploymentStatusInProgress {
		t.Fatalf("after one failure of four: %s", got)
	}
	// The second failure reaches 50 % of the fleet.
	e.act(robots[2], job, engine.ExecFailed, fail)
	desc := e.describe(job)
	if desc.Status != types.DeploymentStatusFailed || desc.FailureCode != types.DeploymentJobErrorCodeFailureThresholdBreached ||
		!strings.Contains(aws.ToString(desc.FailureReason), "abort") {
		t.Fatalf("job = %s %s %q", desc.Status, desc.FailureCode, aws.ToString(desc.FailureReason))
	}
	sum := summaryOf(desc)
	if r := sum[robots[0]]; r.Status != types.RobotStatusFailed || r.FailureCode != types.DeploymentJobErrorCodeExtractingBundleFailure ||
		aws.ToString(r.FailureReason) != "tar: unexpected EOF" || r.ProgressDetail.CurrentProgress != types.RobotDeploymentStepDownloadingExtractingStep {
		t.Errorf("failed robot = %+v", r)
	}
	if r := sum[robots[3]]; r.Status != types.RobotStatusFailed || r.FailureCode != types.DeploymentJobErrorCodeRobotDeploymentAborted {
		t.Errorf("robot never started = %+v", r)
	}
	list, err := e.c.ListDeploymentJobs(e.ctx, &robomaker.ListDeploymentJobsInput{Filters: []types.Filter{
		{Name: aws.String("status"), Values: []string{"Failed", "Canceled"}}}})
	if err != nil || len(list.DeploymentJobs) != 1 || list.DeploymentJobs[0].FailureCode != types.DeploymentJobErrorCodeFailureThresholdBreached {
		t.Fatalf("ListDeploymentJobs by status = %+v, %v", list, err)
	}
}

func TestFailedJobTakesFirstRobotsCode(t *testing.T) {
	e := newEnv(t)
	f, robots := e.fleetWith("lab", 3)
	app := e.app("hello")
	v := e.version(app)
	job := aws.ToString(e.job(f, app, v, nil).Arn)
	e.succeed(robots[0], job)
	e.act(robots[2], job, engine.ExecFailed, map[string]string{wire.DetailFailureCode: rmwire.CodePostLaunchFileFailure})
	e.act(robots[1], job, engine.ExecFailed, map[string]string{wire.DetailFailureCode: "NotARoboMakerCode"})
	desc := e.describe(job)
	if desc.Status != types.DeploymentStatusFailed || desc.FailureCode != types.DeploymentJobErrorCodeInternalServerError {
		t.Fatalf("job = %s %s", desc.Status, desc.FailureCode)
	}
	r1 := summaryOf(desc)[robots[1]]
	if r1.FailureCode != types.DeploymentJobErrorCodeInternalServerError || !strings.Contains(aws.ToString(r1.FailureReason), "NotARoboMakerCode") {
		t.Errorf("robot with an unknown code = %+v", r1)
	}
	if r2 := summaryOf(desc)[robots[2]]; r2.FailureCode != types.DeploymentJobErrorCodePostLaunchFileFailure {
		t.Errorf("robot 3 = %+v", r2)
	}
	if got := e.robotStatus(robots[2]); got != types.RobotStatusFailed {
		t.Errorf("DescribeRobot of a failed robot: %s", got)
	}
}

func TestRobotDeploymentTimeout(t *testing.T) {
	e := newEnv(t)
	f, robots := e.fleetWith("lab", 2)
	app := e.app("hello")
	v := e.version(app)
	job := aws.ToString(e.job(f, app, v, &types.DeploymentConfig{RobotDeploymentTimeoutInSeconds: aws.Int64(60)}).Arn)
	e.succeed(robots[1], job)
	e.clock.Advance(59 * time.Second)
	e.engine.Tick()
	if got := e.describe(job).Status; got != types.DeploymentStatusInProgress {
		t.Fatalf("before the timeout: %s", got)
	}
	e.clock.Advance(time.Second)
	e.engine.Tick()
	desc := e.describe(job)
	r0 := summaryOf(desc)[robots[0]]
	if r0.Status != types.RobotStatusNoResponse || r0.FailureCode != types.DeploymentJobErrorCodeRobotDeploymentNoResponse {
		t.Fatalf("silent robot = %+v", r0)
	}
	if desc.Status != types.DeploymentStatusFailed || desc.FailureCode != types.DeploymentJobErrorCodeRobotDeploymentNoResponse {
		t.Fatalf("job = %s %s", desc.Status, desc.FailureCode)
	}
	if got := e.robotStatus(robots[0]); got != types.RobotStatusNoResponse {
		t.Errorf("DescribeRobot: %s", got)
	}
}

func TestCancelDeploymentJob(t *testing.T) {
	e := newEnv(t)
	f, robots := e.fleetWith("lab", 2)
	app := e.app("hello")
	v := e.version(app)
	job := aws.ToString(e.job(f, app, v, &types.DeploymentConfig{ConcurrentDeploymentPercentage: aws.Int32(50)}).Arn)
	e.act(robots[0], job, engine.ExecInProgress, map[string]string{wire.DetailStep: rmwire.StepLaunching})
	if _, err := e.c.CancelDeploymentJob(e.ctx, &robomaker.CancelDeploymentJobInput{Job: aws.String(job)}); err != nil {
		t.Fatal(err)
	}
	desc := e.describe(job)
	sum := summaryOf(desc)
	if desc.Status != types.DeploymentStatusCanceled || sum[robots[1]].Status != types.RobotStatusFailed ||
		sum[robots[1]].FailureCode != types.DeploymentJobErrorCodeRobotDeploymentAborted ||
		!strings.Contains(aws.ToString(sum[robots[1]].FailureReason), "canceled") {
		t.Fatalf("canceled job = %s, queued robot = %+v", desc.Status, sum[robots[1]])
	}
	// The robot already deploying runs on.
	if sum[robots[0]].Status != types.RobotStatusDeploying {
		t.Errorf("deploying robot after cancel = %s", sum[robots[0]].Status)
	}
	_, err := e.c.CancelDeploymentJob(e.ctx, &robomaker.CancelDeploymentJobInput{Job: aws.String(job)})
	expectError[*types.InvalidParameterException](t, err, 400, "is Canceled")
	_, err = e.c.CancelDeploymentJob(e.ctx, &robomaker.CancelDeploymentJobInput{Job: aws.String(job + "x")})
	expectError[*types.ResourceNotFoundException](t, err, 400, "")
	_, err = e.c.DescribeDeploymentJob(e.ctx, &robomaker.DescribeDeploymentJobInput{Job: aws.String("deployment-1")})
	expectError[*types.InvalidParameterException](t, err, 400, "at 'job'")
	// The fleet is free for a new job.
	e.job(f, app, v, nil)
}

func TestDeploymentJobsExpire(t *testing.T) {
	e := newEnv(t)
	f, _ := e.fleetWith("lab", 1)
	app := e.app("hello")
	v := e.version(app)
	in := &robomaker.CreateDeploymentJobInput{Fleet: aws.String(f), ClientRequestToken: aws.String("t"),
		DeploymentApplicationConfigs: appConfigs(app, v), Tags: map[string]string{"k": "v"}}
	out, err := e.c.CreateDeploymentJob(e.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	job := aws.ToString(out.Arn)
	if _, err := e.c.CancelDeploymentJob(e.ctx, &robomaker.CancelDeploymentJobInput{Job: aws.String(job)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(JobLifetime - time.Second)
	e.describe(job)
	if list, _ := e.c.ListDeploymentJobs(e.ctx, &robomaker.ListDeploymentJobsInput{}); len(list.DeploymentJobs) != 1 {
		t.Fatalf("job listed %d times before expiry", len(list.DeploymentJobs))
	}
	e.clock.Advance(time.Second)
	_, err = e.c.DescribeDeploymentJob(e.ctx, &robomaker.DescribeDeploymentJobInput{Job: aws.String(job)})
	expectError[*types.ResourceNotFoundException](t, err, 400, "does not exist")
	if list, err := e.c.ListDeploymentJobs(e.ctx, &robomaker.ListDeploymentJobsInput{}); err != nil || len(list.DeploymentJobs) != 0 {
		t.Fatalf("expired job listed: %+v, %v", list, err)
	}
	_, err = e.c.ListTagsForResource(e.ctx, &robomaker.ListTagsForResourceInput{ResourceArn: aws.String(job)})
	expectError[*types.ResourceNotFoundException](t, err, 400, "")
	_, err = e.c.CancelDeploymentJob(e.ctx, &robomaker.CancelDeploymentJobInput{Job: aws.String(job)})
	expectError[*types.ResourceNotFoundException](t, err, 400, "")
	// Its token expired with it: the same request makes a new job.
	again, err := e.c.CreateDeploymentJob(e.ctx, in)
	if err != nil || aws.ToString(again.Arn) == job {
		t.Fatalf("request after expiry = %v, %v", again.Arn, err)
	}
}

func TestListDeploymentJobs(t *testing.T) {
	e := newEnv(t)
	app := e.app("hello")
	v := e.version(app)
	var jobs []string
	for _, fleet := range []string{"a", "b", "c"} {
		f, robots := e.fleetWith(fleet, 1)
		job := aws.ToString(e.job(f, app, v, nil).Arn)
		jobs = append(jobs, job)
		if fleet != "c" {
			e.succeed(robots[0], job)
		}
	}
	var got []string
	in := &robomaker.ListDeploymentJobsInput{MaxResults: aws.Int32(2)}
	for {
		out, err := e.c.ListDeploymentJobs(e.ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range out.DeploymentJobs {
			got = append(got, aws.ToString(j.Arn))
		}
		if out.NextToken == nil {
			break
		}
		in.NextToken = out.NextToken
	}
	if strings.Join(got, ",") != strings.Join(jobs, ",") {
		t.Fatalf("paged jobs = %v, want %v", got, jobs)
	}
	for _, tc := range []struct {
		filter types.Filter
		want   []string
	}{
		{types.Filter{Name: aws.String("fleetName"), Values: []string{"a", "c"}}, []string{jobs[0], jobs[2]}},
		{types.Filter{Name: aws.String("status"), Values: []string{"Succeeded"}}, jobs[:2]},
		{types.Filter{Name: aws.String("status"), Values: []string{"Preparing", "InProgress", "Pending"}}, jobs[2:]},
		{types.Filter{Name: aws.String("fleetName"), Values: []string{"zz"}}, nil},
	} {
		out, err := e.c.ListDeploymentJobs(e.ctx, &robomaker.ListDeploymentJobsInput{Filters: []types.Filter{tc.filter}})
		if err != nil {
			t.Fatal(err)
		}
		var arns []string
		for _, j := range out.DeploymentJobs {
			arns = append(arns, aws.ToString(j.Arn))
		}
		if strings.Join(arns, ",") != strings.Join(tc.want, ",") {
			t.Errorf("filter %s=%v: %v, want %v", aws.ToString(tc.filter.Name), tc.filter.Values, arns, tc.want)
		}
	}
	_, err := e.c.ListDeploymentJobs(e.ctx, &robomaker.ListDeploymentJobsInput{Filters: []types.Filter{
		{Name: aws.String("name"), Values: []string{"x"}}}})
	expectError[*types.InvalidParameterException](t, err, 400, "status or fleetName")
	_, err = e.c.ListDeploymentJobs(e.ctx, &robomaker.ListDeploymentJobsInput{Filters: []types.Filter{
		{Name: aws.String("status"), Values: []string{"Pending", "Failed", "Canceled", "Succeeded"}}}})
	expectError[*types.InvalidParameterException](t, err, 400, "less than or equal to 3")
	// A token for one filter does not page another.
	first, _ := e.c.ListDeploymentJobs(e.ctx, &robomaker.ListDeploymentJobsInput{MaxResults: aws.Int32(1)})
	_, err = e.c.ListDeploymentJobs(e.ctx, &robomaker.ListDeploymentJobsInput{NextToken: first.NextToken,
		Filters: []types.Filter{{Name: aws.String("fleetName"), Values: []string{"a"}}}})
	expectError[*types.InvalidParameterException](t, err, 400, "nextToken")
}

func TestSyncDeploymentJob(t *testing.T) {
	e := newEnv(t)
	f, robots := e.fleetWith("lab", 2)
	app := e.app("hello")
	v := e.version(app)
	sync := func(token string) (*robomaker.SyncDeploymentJobOutput, error) {
		return e.c.SyncDeploymentJob(e.ctx, &robomaker.SyncDeploymentJobInput{Fleet: aws.String(f),
			ClientRequestToken: aws.String(token)})
	}
	_, err := sync("s0")
	expectError[*types.ResourceNotFoundException](t, err, 400, "no successful deployment job")

	first := aws.ToString(e.job(f, app, v, &types.DeploymentConfig{ConcurrentDeploymentPercentage: aws.Int32(50)}).Arn)
	for _, r := range robots {
		e.succeed(r, first)
	}
	_, err = sync("s1")
	expectError[*types.InvalidParameterException](t, err, 400, "in sync")

	late := e.robot("late")
	e.register(f, late)
	if got := e.robotStatus(late); got != types.RobotStatusRegistered {
		t.Fatalf("robot added after the job: %s", got)
	}
	out, err := sync("s2")
	if err != nil {
		t.Fatal(err)
	}
	job := aws.ToString(out.Arn)
	if !jobARNPattern.MatchString(job) || job == first || out.Status != types.DeploymentStatusPending ||
		aws.ToInt32(out.DeploymentConfig.ConcurrentDeploymentPercentage) != 50 ||
		aws.ToString(out.DeploymentApplicationConfigs[0].Application) != app {
		t.Fatalf("SyncDeploymentJob = %+v", out)
	}
	desc := e.describe(job)
	if len(desc.RobotDeploymentSummary) != 1 || aws.ToString(desc.RobotDeploymentSummary[0].Arn) != late {
		t.Fatalf("sync job targets %+v, want only the late robot", desc.RobotDeploymentSummary)
	}
	var doc wire.Document
	var payload rmwire.Document
	d, _ := e.engine.Deployment(name(job))
	_ = json.Unmarshal(d.Document, &doc)
	if err := json.Unmarshal(doc.Payload, &payload); err != nil || payload.Job != job || payload.Version != v {
		t.Fatalf("sync job document = %+v, %v", payload, err)
	}
	again, err := sync("s2")
	if err != nil || aws.ToString(again.Arn) != job {
		t.Fatalf("sync replay = %v, %v", again, err)
	}
	_, err = e.c.SyncDeploymentJob(e.ctx, &robomaker.SyncDeploymentJobInput{Fleet: aws.String(f + "0"),
		ClientRequestToken: aws.String("s2")})
	expectError[*types.IdempotentParameterMismatchException](t, err, 400, "")
	_, err = sync("s3")
	expectError[*types.ConcurrentDeploymentException](t, err, 400, "")

	e.succeed(late, job)
	if got := e.robotStatus(late); got != types.RobotStatusInSync {
		t.Errorf("late robot after sync: %s", got)
	}
}

func TestConcurrentCreatesWithOneToken(t *testing.T) {
	e := newEnv(t)
	f, _ := e.fleetWith("lab", 2)
	app := e.app("hello")
	v := e.version(app)
	in := &robomaker.CreateDeploymentJobInput{Fleet: aws.String(f), ClientRequestToken: aws.String("same"),
		DeploymentApplicationConfigs: appConfigs(app, v)}
	const n = 8
	arns := make(chan string, n)
	errs := make(chan error, n)
	for range n {
		go func() {
			out, err := e.c.CreateDeploymentJob(e.ctx, in)
			if err != nil {
				errs <- err
				return
			}
			arns <- aws.ToString(out.Arn)
		}()
	}
	var first string
	for range n {
		select {
		case err := <-errs:
			t.Fatalf("concurrent create: %v", err)
		case arn := <-arns:
			if first == "" {
				first = arn
			}
			if arn != first {
				t.Fatalf("one token made two jobs: %s and %s", first, arn)
			}
		}
	}
	if jobs := e.engine.Deployments(Kind); len(jobs) != 1 {
		t.Fatalf("%d deployments, want 1", len(jobs))
	}
}

func TestSyncDeploymentJobLimit(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Quotas.ConcurrentJobs = 1 })
	f, robots := e.fleetWith("lab", 1)
	other, _ := e.fleetWith("other", 1)
	app := e.app("hello")
	v := e.version(app)
	e.succeed(robots[0], aws.ToString(e.job(f, app, v, nil).Arn))
	e.register(f, e.robot("late"))
	e.job(other, app, v, nil)
	_, err := e.c.SyncDeploymentJob(e.ctx, &robomaker.SyncDeploymentJobInput{Fleet: aws.String(f)})
	expectError[*types.LimitExceededException](t, err, 400, "limit of 1 concurrent deployment jobs")
}
