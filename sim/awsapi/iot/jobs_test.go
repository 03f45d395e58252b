package iot

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/fleetlab/fleetlab/sim/engine"
)

// The jobs views show the engine's deployments, of any dialect, as IoT jobs and job executions.
func TestJobsViews(t *testing.T) {
	e := newEnv(t)
	site := aws.ToString(e.group("site", "").ThingGroupArn)
	for _, name := range []string{"r1", "r2", "r3", "r4"} {
		e.thing(name, nil)
	}
	create := func(spec engine.Spec) {
		t.Helper()
		spec.Document = []byte(`{}`)
		if _, err := e.eng.Create(spec); err != nil {
			t.Fatal(err)
		}
	}
	create(engine.Spec{ID: "job-1", Kind: "greengrassv2", Group: site, Targets: []string{"r1", "r2", "r3"},
		Timeouts: engine.Timeouts{InProgress: 10 * time.Minute}})
	create(engine.Spec{ID: "job-2", Kind: "robomaker", Targets: []string{"r1"}, Start: e.clock.Now().Add(time.Hour)})
	create(engine.Spec{ID: "job-3", Kind: "greengrassv2", Targets: []string{"r4"}, Continuous: true})
	e.eng.Tick()
	device := func(name string, u engine.Update) {
		t.Helper()
		x, ok, err := e.eng.StartNext(name, engine.Update{Status: engine.ExecInProgress, Details: u.Details})
		if err != nil || !ok {
			t.Fatalf("%s starts: %v %v", name, ok, err)
		}
		if u.Status != engine.ExecInProgress {
			if _, err := e.eng.Report(name, x.Deployment, u); err != nil {
				t.Fatal(err)
			}
		}
	}
	device("r1", engine.Update{Status: engine.ExecSucceeded})
	device("r2", engine.Update{Status: engine.ExecInProgress, Details: map[string]string{"step": "download"}})

	job, err := e.c.DescribeJob(e.ctx, &iot.DescribeJobInput{JobId: aws.String("job-1")})
	if err != nil {
		t.Fatal(err)
	}
	j, p := job.Job, job.Job.JobProcessDetails
	if aws.ToString(j.JobArn) != "arn:aws:iot:us-east-1:123456789012:job/job-1" || j.Status != types.JobStatusInProgress ||
		j.TargetSelection != types.TargetSelectionSnapshot || !slices.Equal(j.Targets, []string{site}) ||
		aws.ToInt32(p.NumberOfSucceededThings) != 1 || aws.ToInt32(p.NumberOfInProgressThings) != 1 ||
		aws.ToInt32(p.NumberOfQueuedThings) != 1 || !j.CreatedAt.Equal(e.clock.Now()) || j.CompletedAt != nil {
		t.Fatalf("job-1: %+v %+v", j, p)
	}
	job, err = e.c.DescribeJob(e.ctx, &iot.DescribeJobInput{JobId: aws.String("job-2")})
	if err != nil || job.Job.Status != types.JobStatusScheduled ||
		!slices.Equal(job.Job.Targets, []string{"arn:aws:iot:us-east-1:123456789012:thing/r1"}) {
		t.Fatalf("job-2: %+v %v", job, err)
	}

	execs := func(status types.JobExecutionStatus) []string {
		t.Helper()
		var out []string
		pg := iot.NewListJobExecutionsForJobPaginator(e.c, &iot.ListJobExecutionsForJobInput{JobId: aws.String("job-1"),
			Status: status, MaxResults: aws.Int32(1)})
		for pg.HasMorePages() {
			page, err := pg.NextPage(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range page.ExecutionSummaries {
				out = append(out, aws.ToString(s.ThingArn)[len("arn:aws:iot:us-east-1:123456789012:thing/"):]+"="+
					string(s.JobExecutionSummary.Status))
			}
		}
		return out
	}
	if got := execs(""); !slices.Equal(got, []string{"r1=SUCCEEDED", "r2=IN_PROGRESS", "r3=QUEUED"}) {
		t.Fatalf("executions of job-1: %v", got)
	}
	if got := execs(types.JobExecutionStatusSucceeded); !slices.Equal(got, []string{"r1=SUCCEEDED"}) {
		t.Fatalf("succeeded executions of job-1: %v", got)
	}
	x, err := e.c.DescribeJobExecution(e.ctx, &iot.DescribeJobExecutionInput{JobId: aws.String("job-1"),
		ThingName: aws.String("r2")})
	if err != nil {
		t.Fatal(err)
	}
	if xe := x.Execution; xe.Status != types.JobExecutionStatusInProgress || xe.StatusDetails.DetailsMap["step"] != "download" ||
		aws.ToInt64(xe.ApproximateSecondsBeforeTimedOut) != 600 || aws.ToString(xe.JobId) != "job-1" {
		t.Fatalf("execution of job-1 on r2: %+v", xe)
	}

	jobs := func(in *iot.ListJobsInput) []string {
		t.Helper()
		var out []string
		in.MaxResults = aws.Int32(1)
		pg := iot.NewListJobsPaginator(e.c, in)
		for pg.HasMorePages() {
			page, err := pg.NextPage(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, j := range page.Jobs {
				out = append(out, aws.ToString(j.JobId))
				if aws.ToString(j.JobId) == "job-1" && aws.ToString(j.ThingGroupId) == "" {
					t.Error("job-1's summary has no thingGroupId")
				}
			}
		}
		return out
	}
	for _, tc := range []struct {
		name string
		in   *iot.ListJobsInput
		want []string
	}{
		{"all", &iot.ListJobsInput{}, []string{"job-1", "job-2", "job-3"}},
		{"scheduled", &iot.ListJobsInput{Status: types.JobStatusScheduled}, []string{"job-2"}},
		{"continuous", &iot.ListJobsInput{TargetSelection: types.TargetSelectionContinuous}, []string{"job-3"}},
		{"by group", &iot.ListJobsInput{ThingGroupName: aws.String("site")}, []string{"job-1"}},
		{"in a namespace", &iot.ListJobsInput{NamespaceId: aws.String("ns")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := jobs(tc.in); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}

	if _, err := e.c.CancelJob(e.ctx, &iot.CancelJobInput{JobId: aws.String("job-1"), Comment: aws.String("stop")}); err != nil {
		t.Fatal(err)
	}
	job, _ = e.c.DescribeJob(e.ctx, &iot.DescribeJobInput{JobId: aws.String("job-1")})
	if job.Job.Status != types.JobStatusCanceled || aws.ToString(job.Job.Comment) != "stop" {
		t.Fatalf("job-1 after CancelJob: %+v", job.Job)
	}
	// Queued executions are canceled; the one in progress runs on.
	if got := execs(""); !slices.Equal(got, []string{"r1=SUCCEEDED", "r2=IN_PROGRESS", "r3=CANCELED"}) {
		t.Fatalf("executions of job-1 after CancelJob: %v", got)
	}
	if _, err := e.c.CancelJob(e.ctx, &iot.CancelJobInput{JobId: aws.String("job-1")}); err != nil {
		t.Fatalf("canceling a canceled job: %v", err)
	}
	create(engine.Spec{ID: "job-4", Kind: "robomaker", Targets: []string{"r3"}})
	e.eng.Tick()
	device("r3", engine.Update{Status: engine.ExecSucceeded})
	e.eng.Tick()
	if job, err := e.c.DescribeJob(e.ctx, &iot.DescribeJobInput{JobId: aws.String("job-4")}); err != nil ||
		job.Job.Status != types.JobStatusCompleted || job.Job.CompletedAt == nil {
		t.Fatalf("job-4: %+v %v", job, err)
	}

	for _, tc := range []struct {
		name   string
		call   func() error
		code   string
		status int
	}{
		{"describe an unknown job", func() error {
			_, err := e.c.DescribeJob(e.ctx, &iot.DescribeJobInput{JobId: aws.String("nope")})
			return err
		}, "ResourceNotFoundException", http.StatusNotFound},
		{"a bad job id", func() error {
			_, err := e.c.DescribeJob(e.ctx, &iot.DescribeJobInput{JobId: aws.String("a.b")})
			return err
		}, "InvalidRequestException", 400},
		{"executions of an unknown job", func() error {
			_, err := e.c.ListJobExecutionsForJob(e.ctx, &iot.ListJobExecutionsForJobInput{JobId: aws.String("nope")})
			return err
		}, "ResourceNotFoundException", 404},
		{"an unreleased execution", func() error {
			_, err := e.c.DescribeJobExecution(e.ctx, &iot.DescribeJobExecutionInput{JobId: aws.String("job-2"),
				ThingName: aws.String("r1")})
			return err
		}, "ResourceNotFoundException", 404},
		{"another execution number", func() error {
			_, err := e.c.DescribeJobExecution(e.ctx, &iot.DescribeJobExecutionInput{JobId: aws.String("job-1"),
				ThingName: aws.String("r2"), ExecutionNumber: aws.Int64(99)})
			return err
		}, "ResourceNotFoundException", 404},
		{"an execution on another thing", func() error {
			_, err := e.c.DescribeJobExecution(e.ctx, &iot.DescribeJobExecutionInput{JobId: aws.String("job-1"),
				ThingName: aws.String("r4")})
			return err
		}, "ResourceNotFoundException", 404},
		{"jobs of an unknown group", func() error {
			_, err := e.c.ListJobs(e.ctx, &iot.ListJobsInput{ThingGroupName: aws.String("nowhere")})
			return err
		}, "ResourceNotFoundException", 404},
		{"cancel an unknown job", func() error {
			_, err := e.c.CancelJob(e.ctx, &iot.CancelJobInput{JobId: aws.String("nope")})
			return err
		}, "ResourceNotFoundException", 404},
		{"cancel a completed job", func() error {
			_, err := e.c.CancelJob(e.ctx, &iot.CancelJobInput{JobId: aws.String("job-4")})
			return err
		}, "InvalidRequestException", 400},
		{"force", func() error {
			_, err := e.c.CancelJob(e.ctx, &iot.CancelJobInput{JobId: aws.String("job-3"), Force: true})
			return err
		}, "InvalidRequestException", 400},
		{"a bad reason code", func() error {
			_, err := e.c.CancelJob(e.ctx, &iot.CancelJobInput{JobId: aws.String("job-3"), ReasonCode: aws.String("lower")})
			return err
		}, "InvalidRequestException", 400},
	} {
		t.Run(tc.name, func(t *testing.T) { wantError(t, tc.call(), tc.code, tc.status) })
	}
}
