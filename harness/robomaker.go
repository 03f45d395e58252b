package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
	rmtypes "github.com/aws/aws-sdk-go-v2/service/robomaker/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/event"
)

// BundleBucket is the artifact bucket the environment keeps bundles and scripts in.
const BundleBucket = "fleetlab-bundles"

// RoboMaker job statuses (DeploymentStatus) and robot statuses (RobotStatus), as matchers compare them.
const (
	JobPending    = "Pending"
	JobPreparing  = "Preparing"
	JobInProgress = "InProgress"
	JobSucceeded  = "Succeeded"
	JobFailed     = "Failed"
	JobCanceled   = "Canceled"

	RobotPending    = "PendingNewDeployment"
	RobotDeploying  = "Deploying"
	RobotInSync     = "InSync"
	RobotFailed     = "Failed"
	RobotNoResponse = "NoResponse"
)

// Object is an object in the artifact store.
type Object struct {
	Bucket, Key string
	// ETag is the object's ETag, quoted as S3 sends it.
	ETag string
}

// App is a robot application version created from a fixture bundle.
type App struct {
	Name, ARN, Version string
	// Bundle is the object its sources point at.
	Bundle Object
}

// Deployment is a RoboMaker deployment job's configuration. The zero value is RoboMaker's defaults: every robot
// at once, no failure threshold, a five-hour robot timeout, no download condition, the fixtures' launch config.
type Deployment struct {
	// Concurrency is concurrentDeploymentPercentage, 1-100.
	Concurrency int32
	// FailureThreshold is failureThresholdPercentage, 1-100.
	FailureThreshold int32
	// Timeout is robotDeploymentTimeoutInSeconds, in policy time (at least a minute).
	Timeout time.Duration
	// DownloadCondition names a fixtures/bundles script run before the download.
	DownloadCondition string
	// Token is the clientRequestToken; empty lets the SDK make one.
	Token string
	// Launch replaces the fixtures' launch config.
	Launch *rmtypes.DeploymentLaunchConfig
}

// Launch is the launch config every fixture bundle is laid out for.
func Launch() *rmtypes.DeploymentLaunchConfig {
	return &rmtypes.DeploymentLaunchConfig{PackageName: aws.String(bundles.Package),
		LaunchFile: aws.String(bundles.LaunchFile), PreLaunchFile: aws.String(bundles.PreLaunchFile),
		PostLaunchFile: aws.String(bundles.PostLaunchFile)}
}

// PutObject stores body in the artifact store through the S3 API, creating the bucket when needed.
func (e *Env) PutObject(bucket, key string, body []byte) (obj Object) {
	e.t.Helper()
	e.do(func() { obj = e.putObject(bucket, key, body) })
	return obj
}

func (e *Env) putObject(bucket, key string, body []byte) Object {
	ctx, cancel := e.callContext()
	defer cancel()
	e.appMu.Lock()
	need := !e.bucket[bucket]
	e.bucket[bucket] = true
	e.appMu.Unlock()
	if need {
		_, err := e.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
		if err != nil && !errors.As(err, new(*s3types.BucketAlreadyOwnedByYou)) {
			infraFatal(e.t, "create bucket %s: %v", bucket, err)
		}
	}
	out, err := e.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
		Body: bytes.NewReader(body)})
	if err != nil {
		infraFatal(e.t, "put %s/%s: %v", bucket, key, err)
	}
	return Object{Bucket: bucket, Key: key, ETag: aws.ToString(out.ETag)}
}

// PutBundle stores the fixture bundle name (fixtures/bundles) as BundleBucket/<name>.tar.gz.
func (e *Env) PutBundle(name string) Object {
	e.t.Helper()
	b, err := bundles.Build(name)
	if err != nil {
		e.t.Fatalf("harness: %v", err)
	}
	return e.PutObject(BundleBucket, name+".tar.gz", b)
}

// PutScript stores the fixture script name (a download condition of fixtures/bundles) as
// BundleBucket/scripts/<name>.
func (e *Env) PutScript(name string) Object {
	e.t.Helper()
	b, err := bundles.Script(name)
	if err != nil {
		e.t.Fatalf("harness: %v", err)
	}
	return e.PutObject(BundleBucket, "scripts/"+name, b)
}

// CreateApplication stores the fixture bundle and creates a robot application from it, with one source per
// architecture (X86_64 when none is given), and its version 1.
func (e *Env) CreateApplication(bundle string, archs ...string) (app App) {
	e.t.Helper()
	e.do(func() { app = e.createApplication(bundle, archs) })
	return app
}

func (e *Env) createApplication(bundle string, archs []string) App {
	obj := e.PutBundle(bundle)
	if len(archs) == 0 {
		archs = []string{"X86_64"}
	}
	var sources []rmtypes.SourceConfig
	for _, a := range archs {
		sources = append(sources, rmtypes.SourceConfig{S3Bucket: aws.String(obj.Bucket), S3Key: aws.String(obj.Key),
			Architecture: rmtypes.Architecture(a)})
	}
	e.appMu.Lock()
	e.apps++
	name := fmt.Sprintf("%s-%d", bundle, e.apps)
	e.appMu.Unlock()
	ctx, cancel := e.callContext()
	defer cancel()
	app, err := e.rm.CreateRobotApplication(ctx, &robomaker.CreateRobotApplicationInput{Name: aws.String(name),
		RobotSoftwareSuite: &rmtypes.RobotSoftwareSuite{Name: rmtypes.RobotSoftwareSuiteTypeGeneral}, Sources: sources})
	if err != nil {
		infraFatal(e.t, "create robot application %s: %v", name, err)
	}
	v, err := e.rm.CreateRobotApplicationVersion(ctx, &robomaker.CreateRobotApplicationVersionInput{Application: app.Arn})
	if err != nil {
		infraFatal(e.t, "create robot application version of %s: %v", name, err)
	}
	return App{Name: name, ARN: aws.ToString(app.Arn), Version: aws.ToString(v.Version), Bundle: obj}
}

// JobInput returns the CreateDeploymentJob request for app on the environment's fleet with d.
func (e *Env) JobInput(app App, d Deployment) (in *robomaker.CreateDeploymentJobInput) {
	e.t.Helper()
	e.do(func() { in = e.jobInput(app, d) })
	return in
}

func (e *Env) jobInput(app App, d Deployment) *robomaker.CreateDeploymentJobInput {
	cfg := &rmtypes.DeploymentConfig{}
	if d.Concurrency != 0 {
		cfg.ConcurrentDeploymentPercentage = aws.Int32(d.Concurrency)
	}
	if d.FailureThreshold != 0 {
		cfg.FailureThresholdPercentage = aws.Int32(d.FailureThreshold)
	}
	if d.Timeout != 0 {
		cfg.RobotDeploymentTimeoutInSeconds = aws.Int64(int64(d.Timeout / time.Second))
	}
	if d.DownloadCondition != "" {
		obj := e.PutScript(d.DownloadCondition)
		cfg.DownloadConditionFile = &rmtypes.S3Object{Bucket: aws.String(obj.Bucket), Key: aws.String(obj.Key)}
	}
	launch := d.Launch
	if launch == nil {
		launch = Launch()
	}
	in := &robomaker.CreateDeploymentJobInput{Fleet: aws.String(e.fleetARN), DeploymentConfig: cfg,
		DeploymentApplicationConfigs: []rmtypes.DeploymentApplicationConfig{{Application: aws.String(app.ARN),
			ApplicationVersion: aws.String(app.Version), LaunchConfig: launch}}}
	if d.Token != "" {
		in.ClientRequestToken = aws.String(d.Token)
	}
	return in
}

// StartJob creates a deployment job of app on the environment's fleet and returns its ARN, or the service's
// error (a test of ConcurrentDeploymentException wants it).
func (e *Env) StartJob(app App, d Deployment) (job string, err error) {
	e.t.Helper()
	e.do(func() {
		ctx, cancel := e.callContext()
		defer cancel()
		var out *robomaker.CreateDeploymentJobOutput
		if out, err = e.rm.CreateDeploymentJob(ctx, e.jobInput(app, d)); err != nil {
			return
		}
		job = aws.ToString(out.Arn)
		e.log("created deployment job %s", job)
	})
	return job, err
}

// Deploy stores the fixture bundle, creates an application version from it and starts a deployment job of it
// on the environment's fleet; it returns the job's ARN.
func (e *Env) Deploy(bundle string, d Deployment) string {
	e.t.Helper()
	job, err := e.StartJob(e.CreateApplication(bundle), d)
	if err != nil {
		e.t.Fatalf("harness: create deployment job: %v", err)
	}
	return job
}

// Sync starts a SyncDeploymentJob on the environment's fleet and returns the job's ARN, or the service's error.
func (e *Env) Sync() (job string, err error) {
	e.t.Helper()
	e.do(func() {
		ctx, cancel := e.callContext()
		defer cancel()
		var out *robomaker.SyncDeploymentJobOutput
		if out, err = e.rm.SyncDeploymentJob(ctx, &robomaker.SyncDeploymentJobInput{Fleet: aws.String(e.fleetARN)}); err != nil {
			return
		}
		job = aws.ToString(out.Arn)
		e.log("created sync deployment job %s", job)
	})
	return job, err
}

// Cancel cancels a deployment job.
func (e *Env) Cancel(job string) (err error) {
	e.do(func() {
		ctx, cancel := e.callContext()
		defer cancel()
		if _, err = e.rm.CancelDeploymentJob(ctx, &robomaker.CancelDeploymentJobInput{Job: aws.String(job)}); err == nil {
			e.log("canceled deployment job %s", job)
		}
	})
	return err
}

// Job is a deployment job as DescribeDeploymentJob tells it, with the run's events about it.
type Job struct {
	ARN, ID       string
	Status        string
	FailureCode   string
	FailureReason string
	// Robots are the job's robots, by name.
	Robots []Robot
	// Timeline is every event of the job: its deployment's and executions', its robots' agent events, and
	// every fault event.
	Timeline []event.Event
}

// Robot is one robot's deployment in a job.
type Robot struct {
	Name          string
	Status        string
	FailureCode   string
	FailureReason string
	// Step is the last step the robot reached: the job's progressDetail, or, when the job gives none (a robot
	// that timed out), the last step its events report.
	Step string
	// Timeline is the job's timeline restricted to this robot (and the faults).
	Timeline []event.Event
}

// Robot returns the named robot of the job.
func (j Job) Robot(name string) (Robot, bool) {
	for _, r := range j.Robots {
		if r.Name == name {
			return r, true
		}
	}
	return Robot{}, false
}

// RobotNames returns the names of the job's robots, sorted.
func (j Job) RobotNames() []string {
	names := make([]string, len(j.Robots))
	for i, r := range j.Robots {
		names[i] = r.Name
	}
	return names
}

// Counts returns how many of the job's robots are in each status.
func (j Job) Counts() map[string]int {
	m := map[string]int{}
	for _, r := range j.Robots {
		m[r.Status]++
	}
	return m
}

// String is a one-line summary: the job's status and each robot's.
func (j Job) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "job %s %s", j.ID, j.Status)
	if j.FailureCode != "" {
		fmt.Fprintf(&b, "/%s", j.FailureCode)
	}
	for _, r := range j.Robots {
		fmt.Fprintf(&b, "; %s", r)
	}
	return b.String()
}

// String is "name status/code@step".
func (r Robot) String() string {
	s := r.Name + " " + r.Status
	if r.FailureCode != "" {
		s += "/" + r.FailureCode
	}
	if r.Step != "" {
		s += "@" + r.Step
	}
	return s
}

// JobID returns the job id at the end of a deployment job ARN.
func JobID(arn string) string { return arn[strings.LastIndexByte(arn, '/')+1:] }

// Describe describes a job through the SDK.
func (e *Env) Describe(job string) (j Job, err error) {
	e.do(func() { j, err = e.describe(job) })
	return j, err
}

func (e *Env) describe(job string) (Job, error) {
	ctx, cancel := e.callContext()
	defer cancel()
	out, err := e.rm.DescribeDeploymentJob(ctx, &robomaker.DescribeDeploymentJobInput{Job: aws.String(job)})
	if err != nil {
		return Job{}, err
	}
	id := JobID(job)
	j := Job{ARN: job, ID: id, Status: string(out.Status), FailureCode: string(out.FailureCode),
		FailureReason: aws.ToString(out.FailureReason)}
	j.Timeline = Filter(e.events.Events(), func(ev event.Event) bool {
		return ev.Deployment == id || Source(ev) == SourceFaults
	})
	for _, rd := range out.RobotDeploymentSummary {
		arn := aws.ToString(rd.Arn)
		parts := strings.Split(arn, "/")
		name := arn
		if len(parts) >= 2 {
			name = parts[1]
		}
		r := Robot{Name: name, Status: string(rd.Status), FailureCode: string(rd.FailureCode),
			FailureReason: aws.ToString(rd.FailureReason)}
		r.Timeline = Filter(j.Timeline, func(ev event.Event) bool { return ev.Device == name || ev.Device == "" })
		if rd.ProgressDetail != nil {
			r.Step = string(rd.ProgressDetail.CurrentProgress)
		}
		if r.Step == "" {
			for _, ev := range r.Timeline {
				if ev.Device == name && ev.Step != "" && (ev.Kind == event.ExecutionStep || ev.Kind == event.ExecutionState) {
					r.Step = ev.Step
				}
			}
		}
		j.Robots = append(j.Robots, r)
	}
	slices.SortFunc(j.Robots, func(a, b Robot) int { return strings.Compare(a.Name, b.Name) })
	return j, nil
}

// Job returns a function describing the job, for Eventually.
func (e *Env) Job(job string) func() (Job, error) {
	return func() (Job, error) { return e.Describe(job) }
}

// Robot returns a function describing one robot's deployment in the job, for Eventually.
func (e *Env) Robot(job, name string) func() (Robot, error) {
	return func() (Robot, error) {
		j, err := e.Describe(job)
		if err != nil {
			return Robot{}, err
		}
		r, ok := j.Robot(name)
		if !ok {
			return Robot{}, fmt.Errorf("robot %s is not in job %s", name, j.ID)
		}
		return r, nil
	}
}

// Settled reports whether the job is over and every robot in it too: the job's status is final and no robot
// is still deploying (robots deploying when a job fails or is canceled carry on to their own end).
func (e *Env) Settled(job string) (settled bool) {
	e.do(func() { settled = e.settled(job) })
	return settled
}

func (e *Env) settled(job string) bool {
	svc := e.Service()
	if svc == nil {
		return false
	}
	id := JobID(job)
	d, err := svc.Engine.Deployment(id)
	if err != nil || !d.Status.Terminal() {
		return false
	}
	xs, err := svc.Engine.Executions(id)
	if err != nil {
		return false
	}
	for _, x := range xs {
		if !x.Status.Terminal() {
			return false
		}
	}
	// The engine's state is visible a moment before its events are delivered: settled means the stream has them
	// too, so a timeline or outcome read now is complete.
	ended := map[string]bool{}
	depEnded := false
	for _, ev := range e.events.Events() {
		if ev.Deployment != id {
			continue
		}
		switch {
		case ev.Kind == event.ExecutionState && isTerminalExec(ev.To):
			ended[ev.Device] = true
		case ev.Kind == event.DeploymentState && engine.Status(ev.To).Terminal():
			depEnded = true
		}
	}
	if !depEnded {
		return false
	}
	for _, x := range xs {
		if !ended[x.Device] {
			return false
		}
	}
	return true
}

// WaitJob waits until the job has settled (see Settled) and returns it. A job that does not settle within the
// environment's wait fails the test with its timeline.
func (e *Env) WaitJob(job string) Job {
	e.t.Helper()
	var j Job
	var err, derr error
	e.do(func() {
		ctx, cancel := e.waitContext()
		defer cancel()
		err = e.events.Await(ctx, func() bool { return e.settled(job) })
		j, derr = e.describe(job)
	})
	var stall *clock.StallError
	var deadlock *clock.DeadlockError
	switch {
	case errors.As(err, &stall) || errors.As(err, &deadlock):
		infraFatal(e.t, "job %s: %v", JobID(job), err)
	case err != nil && derr != nil:
		e.t.Fatalf("job %s did not settle %s (%v), and cannot be described: %v", JobID(job), e.within(), err, derr)
	case err != nil:
		e.t.Fatalf("job did not settle %s (%v): %s\ntimeline:\n%s", e.within(), err, j, Timeline(j.Timeline))
	case derr != nil:
		infraFatal(e.t, "describe job %s: %v", JobID(job), derr)
	}
	return j
}

// within says how long a wait waits.
func (e *Env) within() string {
	if e.world != nil {
		return fmt.Sprintf("within %v of virtual time", e.cfg.wait)
	}
	return fmt.Sprintf("within %v", e.cfg.wait)
}

// WaitFor waits until the job, as described after an event, satisfies cond, and returns it. A job that does not
// within the environment's wait fails the test with its timeline.
func (e *Env) WaitFor(cond func(Job) bool, job string) Job {
	e.t.Helper()
	var last Job
	var err error
	e.do(func() {
		ctx, cancel := e.waitContext()
		defer cancel()
		err = e.events.Await(ctx, func() bool {
			j, err := e.describe(job)
			if err != nil {
				return false
			}
			last = j
			return cond(j)
		})
	})
	var stall *clock.StallError
	var deadlock *clock.DeadlockError
	switch {
	case errors.As(err, &stall) || errors.As(err, &deadlock):
		infraFatal(e.t, "job %s: %v", JobID(job), err)
	case err != nil:
		e.t.Fatalf("job never reached the condition %s (%v): %s\ntimeline:\n%s", e.within(), err, last, Timeline(last.Timeline))
	}
	return last
}

// Context returns the environment's context, which ends at cleanup.
func (e *Env) Context() context.Context { return e.ctx }
